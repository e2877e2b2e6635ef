"""``straits market sweep``: design, resume, run on a backend, analyse, summarise."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from straits import jsonout
from straits.market.firms import check_firm_count
from straits.market.loading import MarketError, digest, range_params, read_raw_text, validate
from straits.market.outputs import parquet_bytes, write_bytes_atomically
from straits.market.sweep.analysis import PRIM_MIN_RUNS, prim, spearman
from straits.market.sweep.design import Design, grid, latin_hypercube
from straits.market.sweep.metrics import METRICS, window_outside
from straits.market.sweep.runner import (
    Batch,
    Simulation,
    inline,
    join_ray,
    on_ray,
    probe_ray,
    processes,
    ray_address_from_env,
    ray_available,
    write_part,
)

BACKENDS = ("auto", "ray", "processes", "inline")
MANIFEST = "sweep.json"


def _batches(design: Design, done: set[int], size: int) -> list[tuple[int, Batch]]:
    todo = [r for r in range(design.runs) if r not in done]
    out = []
    for i in range(0, len(todo), size):
        runs = todo[i : i + size]
        out.append((runs[0], [(r, design.point(r)) for r in runs]))
    return out


def _read_parts(parts: Path, design: Design) -> list[dict[str, Any]]:
    """The rows of the parts in ``parts``; a part that cannot be read, or holds a run the
    design does not have or at other parameter values (copied from another sweep, edited), is
    deleted and its runs are run again. Such rows were counted as runs of this sweep."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for f in sorted(parts.glob("part-*.parquet")):
        try:
            got = pq.read_table(f).to_pylist()
            if not all(_of_design(r, design) for r in got):
                raise ValueError(f"{f.name} holds runs of another design")
        except Exception:
            f.unlink(missing_ok=True)
            continue
        rows += got
    return rows


def _of_design(row: dict[str, Any], design: Design) -> bool:
    run = row.get("run")
    if not isinstance(run, int) or isinstance(run, bool) or not 0 <= run < design.runs:
        return False
    return all(row.get(f"param:{k}") == v for k, v in design.point(run).items())


def run_sweep(
    *,
    market_file: Path | None,
    runs: int,
    method: str,
    levels: int,
    params: list[str],
    out: Path,
    backend: str,
    ray_address: str | None,
    workers: int,
    firms: int,
    regime: str | None,
    seed: int,
    metric: str,
    threshold: float | None,
    fresh: bool,
    quiet: bool = False,
) -> dict[str, Any]:
    if method not in ("lhs", "grid"):
        raise MarketError(f"unknown method {method!r}", path="--method", expected="lhs or grid")
    if backend not in BACKENDS:
        raise MarketError(
            f"unknown backend {backend!r}", path="--backend", expected=" | ".join(BACKENDS)
        )
    if metric not in METRICS:
        raise MarketError(
            f"unknown metric {metric!r}", path="--metric", expected=", ".join(METRICS)
        )
    if regime is not None and regime not in ("enacted", "ai-diffusion"):
        raise MarketError(
            f"unknown regime {regime!r}", path="--regime", expected="enacted or ai-diffusion"
        )
    raw, label, text = read_raw_text(market_file)
    market = validate(raw, label, text)
    check_firm_count(market, firms)
    outside = window_outside(metric, market.start, market.end)
    if outside is not None:
        readable = [k for k in METRICS if window_outside(k, market.start, market.end) is None]
        raise MarketError(
            f"the metric {metric} reads {outside[0]} to {outside[1]}, and the market "
            f"simulates {market.start} to {market.end} only: every run would have no value",
            path="--metric",
            expected=", ".join(readable),
        )
    ranges = range_params(raw)
    if params:
        by_path = {p.path: p for p in ranges}
        unknown = [p for p in params if p not in by_path]
        if unknown:
            raise MarketError(
                f"not a parameter range: {unknown[0]!r}",
                path="--param",
                expected="a path listed by `straits market --list-params` with low/high",
            )
        ranges = [by_path[p] for p in dict.fromkeys(params)]
    design = latin_hypercube(ranges, runs, seed) if method == "lhs" else grid(ranges, levels)
    if backend == "auto":
        backend = "ray" if (ray_address or ray_available()) else "processes"
    if backend == "ray" and not ray_available():
        raise MarketError(
            "Ray is not installed",
            path="--backend",
            expected="pip install 'straits[market]', or --backend processes",
        )
    address_option = "--ray-address"
    if ray_address == "local":  # Ray's word for a new local Ray: the one a sweep starts
        ray_address = None
    elif backend == "ray" and not ray_address and ray_address_from_env():
        # the cluster Ray itself would join (`ray job submit` sets it): a local Ray started
        # with RAY_ADDRESS set was a ValueError traceback from ray.init
        ray_address, address_option = ray_address_from_env(), "RAY_ADDRESS"
    if backend == "ray" and ray_address:
        probe_ray(ray_address, address_option)  # at once, where Ray retries for minutes
    elif backend in ("processes", "ray"):
        # local processes (or a local Ray's): more than the CPUs never runs faster, and each
        # costs ~100 MB: --workers 512 on a small machine would take all its memory
        cpus = os.cpu_count() or 1
        if workers > cpus:
            if not quiet:
                from straits.cli.common import err_console

                err_console.print(
                    f"note: --workers {workers} is more than the {cpus} CPUs here; running {cpus}",
                    markup=False,
                )
            workers = cpus
    manifest = {
        "version": 1,
        "market": digest(raw),
        "method": method,
        "runs": design.runs,
        "levels": levels if method == "grid" else None,
        "seed": seed,
        "firms": firms,
        "regime": regime,
        "params": [p.to_json() for p in ranges],
    }
    _check_out(out)
    # the cluster joined before --out is touched: an address Ray cannot use ('auto' with no
    # cluster, a malformed one) wrote sweep.json first, and the next sweep of another design
    # into that --out was refused as "a different sweep"
    joined = join_ray(ray_address, address_option) if backend == "ray" and ray_address else False
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = _lock(out)
        try:
            return _run_in(
                out,
                manifest,
                design,
                Simulation(raw, label, regime, seed, firms),
                Backend(backend, ray_address, workers, address_option),
                Analysis(metric, threshold, method),
                fresh=fresh,
                quiet=quiet,
            )
        finally:
            os.close(lock)
    finally:
        if joined:
            import ray

            ray.shutdown()


LOCK = ".sweep.lock"


def _check_out(out: Path) -> None:
    """``out`` is a directory or nothing yet: a FIFO or /dev/full was called 'a file', a link
    to nothing 'cannot write: File exists'."""
    from straits.errors import InputError
    from straits.fileio import output_dir

    try:
        output_dir(out, option="--out")
    except InputError as exc:
        raise MarketError(
            exc.detail, path="--out", expected="a directory (created when missing)"
        ) from None


def _lock(out: Path) -> int:
    """Hold ``OUT/.sweep.lock`` (``flock``) while the sweep writes ``out``. Two sweeps in one
    directory mixed their parts: a second one with ``--fresh`` and other parameters deleted the
    first one's parts and manifest, the first went on writing its runs there, and the second
    read them as its own (same run numbers, other parameters) without a word."""
    import fcntl

    fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise MarketError(
            f"another sweep is writing {out}",
            path="--out",
            expected="another --out, or the same command once that sweep has finished",
        ) from None
    return fd


@dataclass(frozen=True)
class Backend:
    """Where the runs go: ``inline``, ``processes`` or ``ray`` (at ``address``, or a local Ray
    of ``workers`` CPUs)."""

    name: str
    address: str | None
    workers: int
    #: where ``address`` came from: ``--ray-address`` or ``RAY_ADDRESS``
    address_option: str = "--ray-address"


@dataclass(frozen=True)
class Analysis:
    """What the summary measures: the metric, its threshold for PRIM, and the design method."""

    metric: str
    threshold: float | None
    method: str


def _run_in(
    out: Path,
    manifest: dict[str, Any],
    design: Design,
    sim: Simulation,
    backend: Backend,
    analysis: Analysis,
    *,
    fresh: bool,
    quiet: bool,
) -> dict[str, Any]:
    parts = out / "parts"
    if fresh and out.exists():
        _discard_parts(parts)
        (out / MANIFEST).unlink(missing_ok=True)
    old = out / MANIFEST
    if _manifest_there(old):
        try:
            previous = json.loads(old.read_bytes())
        except (OSError, ValueError):
            previous = None
        if previous != manifest:
            raise MarketError(
                f"{out} holds a different sweep",
                path="--out",
                expected="the same market, design and options to resume, "
                "--fresh to discard it, or another --out",
            )
    parts.mkdir(parents=True, exist_ok=True)
    write_bytes_atomically(old, json.dumps(manifest, indent=2).encode())
    rows = _read_parts(parts, design)
    done_runs = {int(r["run"]) for r in rows}
    size = max(1, min(8, design.runs // (4 * max(backend.workers, 1)) or 1))
    jobs = _batches(design, done_runs, size)
    _execute(sim, jobs, backend, parts, design.runs - len(done_runs), quiet)
    rows = sorted(
        {int(r["run"]): r for r in _read_parts(parts, design)}.values(), key=lambda r: int(r["run"])
    )
    write_bytes_atomically(
        out / "runs.parquet", parquet_bytes(rows, {"straits.sweep": json.dumps(manifest)})
    )
    summary = _summarise(design, rows, analysis.metric, analysis.threshold)
    summary.update(
        {
            "out": str(out),
            "backend": backend.name,
            "workers": backend.workers,
            "method": analysis.method,
            "resumed_runs": len(done_runs),
            "firms": sim.firms,
            "seed": sim.seed,
            "regime": sim.regime or validate(sim.raw, sim.label).regime,
        }
    )
    write_bytes_atomically(out / "summary.json", jsonout.dumps(summary).encode())
    return summary


#: a manifest is a few KiB per swept parameter; a bigger file is not one a sweep wrote
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def _manifest_there(path: Path) -> bool:
    """Whether ``path`` holds a manifest to read: a regular file of at most
    ``MAX_MANIFEST_BYTES`` (None there: False). Anything else is refused naming --out: a FIFO
    hung the sweep forever, a link to /dev/zero was read until memory ran out."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise MarketError(f"cannot read {path}: {exc.strerror or exc}", path="--out") from None
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_MANIFEST_BYTES:
        what = "not a regular file" if not stat.S_ISREG(st.st_mode) else "too big"
        raise MarketError(
            f"{path} is {what}: not the manifest a sweep writes",
            path="--out",
            expected=f"a directory a sweep wrote (its {MANIFEST}: a file of at most "
            f"{MAX_MANIFEST_BYTES:,} bytes), --fresh to discard it, or another --out",
        )
    return True


def _discard_parts(parts: Path) -> None:
    """Delete what sweeps write in ``parts``: its parts and their temporary files. ``--fresh``
    removed the whole folder, so ``--out .`` deleted a ``parts`` folder of the user's."""
    if not parts.is_dir() or parts.is_symlink():
        return
    for f in [*parts.glob("part-*.parquet"), *parts.glob(".part-*.parquet.*.tmp")]:
        if f.is_file() and not f.is_symlink():
            f.unlink(missing_ok=True)


def _execute(
    sim: Simulation,
    jobs: list[tuple[int, Batch]],
    backend: Backend,
    parts: Path,
    todo: int,
    quiet: bool,
) -> None:
    if not jobs:
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from straits.cli.common import err_console

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=True,
    ) as progress:
        task = progress.add_task(f"sweep ({backend.name})", total=todo)

        def done(index: int, batch_rows: list[dict[str, Any]]) -> None:
            write_part(parts, index, batch_rows)
            progress.advance(task, len(batch_rows))

        if backend.name == "inline":
            inline(sim, jobs, done)
        elif backend.name == "processes":
            processes(sim, jobs, done, backend.workers)
        else:
            on_ray(sim, jobs, done, backend.workers, backend.address, backend.address_option)


def _summarise(
    design: Design, rows: list[dict[str, Any]], metric: str, threshold: float | None
) -> dict[str, Any]:
    params = list(design.params)
    x = np.array([[float(r[f"param:{p.path}"]) for p in params] for r in rows])
    y = np.array([np.nan if r[metric] is None else float(r[metric]) for r in rows])
    finite = y[np.isfinite(y)]
    stats = (
        {"min": float(finite.min()), "median": float(np.median(finite)), "max": float(finite.max())}
        if finite.size
        else {}
    )
    thr = threshold if threshold is not None else (stats.get("median") if stats else None)
    box = prim(params, x, y, thr) if thr is not None else None
    out = {
        "runs": len(rows),
        "metric": metric,
        "metric_stats": stats,
        "parameters": [p.to_json() for p in params],
        "sensitivity": spearman(params, x, y) if len(rows) > 2 else [],
        "prim": box,
    }
    if box is None:  # say why, rather than leave the scenario discovery out silently
        out["prim_note"] = (
            f"no run has a finite {metric}"
            if thr is None
            else f"PRIM needs at least {PRIM_MIN_RUNS} runs with a finite {metric} "
            f"({finite.size} here): use more --runs"
            if finite.size < PRIM_MIN_RUNS
            else f"no run has {metric} above {thr:,.4g}"
        )
    return out
