"""``straits market sweep`` through the real CLI: resuming, a different sweep in the same
directory, grids and bad options, the backends' identical tables, a sweep killed mid-run,
the progress bar, an unreachable Ray cluster, --out and --threshold refused, PRIM's note,
flags the run does not read. The ``straits`` runner is tests/test_market_cli.py's."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from straits.market.sweep.cli import run_sweep
from test_market_cli import CLI, SMALL, straits


def _sweep(out: Path, backend: str, **kw: object) -> dict[str, Any]:
    args: dict[str, object] = {
        "market_file": None,
        "runs": 6,
        "method": "lhs",
        "levels": 2,
        "params": ["demand.shift_speed", "demand.growth_per_year", "prices.elasticity"],
        "out": out,
        "backend": backend,
        "ray_address": None,
        "workers": 2,
        "firms": 12,
        "regime": None,
        "seed": 3,
        "metric": "offshore_demand_after_h20",
        "threshold": None,
        "fresh": False,
        "quiet": True,
    }
    args.update(kw)
    return run_sweep(**args)  # type: ignore[arg-type]


def _table(out: Path) -> list[dict[str, object]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, object]] = pq.read_table(out / "runs.parquet").to_pylist()
    return rows


def test_sweep_inline_resumes(tmp_path: Path) -> None:
    a = tmp_path / "a"
    s = _sweep(a, "inline")
    assert s["runs"] == 6 and len(s["sensitivity"]) == 3
    first = _table(a)
    # an interrupted sweep: drop two parts, rerun, the same table comes back
    parts = sorted((a / "parts").glob("part-*.parquet"))
    for f in parts[:2]:
        f.unlink()
    s2 = _sweep(a, "inline")
    assert s2["resumed_runs"] < 6
    assert _table(a) == first
    # a damaged part (truncated, binary garbage) is not trusted: it is rerun
    part = sorted((a / "parts").glob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:40])
    _sweep(a, "inline")
    assert _table(a) == first


def test_sweep_refuses_a_different_sweep_in_the_same_directory(tmp_path: Path) -> None:
    from straits.market.loading import MarketError

    _sweep(tmp_path / "s", "inline", runs=3)
    with pytest.raises(MarketError, match="different sweep"):
        _sweep(tmp_path / "s", "inline", runs=4)
    _sweep(tmp_path / "s", "inline", runs=4, fresh=True)


def test_sweep_grid_and_bad_options(tmp_path: Path) -> None:
    from straits.market.loading import MarketError

    s = _sweep(tmp_path / "g", "inline", method="grid", levels=2, params=["demand.shift_speed"])
    assert s["runs"] == 2
    with pytest.raises(MarketError):
        _sweep(tmp_path / "x", "inline", params=["demand.nope"])
    with pytest.raises(MarketError):
        _sweep(tmp_path / "x", "inline", metric="nope")
    with pytest.raises(MarketError):
        _sweep(
            tmp_path / "x",
            "inline",
            method="grid",
            levels=20,
            params=[
                p
                for p in (
                    "demand.shift_speed",
                    "demand.growth_per_year",
                    "prices.elasticity",
                    "demand.domestic_premium",
                    "demand.wtp_usd_per_h100e_hour",
                )
            ],
        )


@pytest.mark.slow
def test_sweep_backends_give_identical_tables(tmp_path: Path) -> None:
    """One process, two local processes and a local Ray (started here: 2 CPUs, a 100 MB
    object store) run the same design to the same table."""
    _sweep(tmp_path / "i", "inline")
    _sweep(tmp_path / "p", "processes")
    assert _table(tmp_path / "p") == _table(tmp_path / "i")
    pytest.importorskip("ray")
    _sweep(tmp_path / "r", "ray")
    assert _table(tmp_path / "r") == _table(tmp_path / "p")


@pytest.mark.slow
def test_sweep_killed_mid_run_resumes_to_the_same_table(tmp_path: Path) -> None:
    import signal
    import time

    args = [
        "market",
        "sweep",
        "--runs",
        "12",
        "--firms",
        "12",
        "--backend",
        "inline",
        "--param",
        "demand.shift_speed",
        "--param",
        "prices.elasticity",
        "--seed",
        "5",
        "--json",
    ]
    clean = tmp_path / "clean"
    assert straits(*args, "--out", str(clean)).returncode == 0
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [*CLI, *args, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "parts").glob("part-*.parquet")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    p = straits(*args, "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert _table(out) == _table(clean)


def test_sweep_through_the_cli_with_its_progress_bar(tmp_path: Path) -> None:
    """The progress bar draws on the CLI's lazily made console (a defect once: the console
    proxy was not a context manager, and every sweep not run --quiet ended in a traceback)."""
    p = straits(
        "market",
        "sweep",
        "--runs",
        "2",
        "--firms",
        "5",
        "--backend",
        "inline",
        "--out",
        str(tmp_path / "s"),
    )
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert (tmp_path / "s" / "runs.parquet").exists()


def test_sweep_on_a_ray_cluster_it_cannot_join_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    p = straits(
        "market",
        "sweep",
        "--runs",
        "2",
        "--firms",
        "5",
        "--backend",
        "ray",
        "--ray-address",
        "ray://127.0.0.1:1",
        "--out",
        str(tmp_path / "s"),
    )
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "--ray-address" in p.stderr


def test_sweep_out_that_cannot_be_made_is_an_input_error(tmp_path: Path) -> None:
    p = straits(
        "market",
        "sweep",
        "--runs",
        "2",
        "--firms",
        "10",
        "--backend",
        "inline",
        "--out",
        "/proc/no-such-dir/sweep",
        cwd=tmp_path,
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert "Traceback" not in p.stderr and "--out" in p.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_sweep_threshold_is_a_finite_number(value: str, tmp_path: Path) -> None:
    """A NaN threshold ran the whole sweep and found no conditions, silently."""
    p = straits(
        "market",
        "sweep",
        "--runs",
        "2",
        "--firms",
        "10",
        "--backend",
        "inline",
        "--threshold",
        value,
        "--out",
        str(tmp_path / "s"),
        cwd=tmp_path,
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert "--threshold" in p.stderr and not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("ys", "threshold", "why"),
    [
        ([1.0, 2.0, 3.0, 4.0], None, "at least 5 runs"),
        ([1.0, 2.0, None, 4.0, 5.0], None, "(4 here)"),  # a failed run does not count
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 10.0, "above 10"),
        ([None, None], None, "no run has a finite"),
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], None, None),  # a box: no note
    ],
)
def test_sweep_says_why_prim_found_no_box(
    ys: list[float | None], threshold: float | None, why: str | None
) -> None:
    """A sweep too small for PRIM (or with no run above the threshold) says so, in the table
    and in --json (`prim_note`), instead of leaving the scenario discovery out silently."""
    import numpy as np

    from straits.market.loading import RangeParam
    from straits.market.sweep.cli import _summarise
    from straits.market.sweep.design import Design

    params = (RangeParam("demand.growth_per_year", 1.0, 3.0, "test", "M", True),)
    design = Design(params, np.linspace(1.0, 3.0, len(ys)).reshape(-1, 1))
    rows = [
        {"param:demand.growth_per_year": float(v), "m": y}
        for v, y in zip(design.values[:, 0], ys, strict=True)
    ]
    out = _summarise(design, rows, "m", threshold)
    assert (out["prim"] is None) == (why is not None)
    assert (why in out["prim_note"]) if why is not None else "prim_note" not in out


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--levels", "5"], "--levels"),  # lhs: no levels
        (["--backend", "inline", "--workers", "8"], "--workers"),
        (["--backend", "inline", "--ray-address", "127.0.0.1:1"], "--ray-address"),
        (["--backend", "processes", "--ray-address", "127.0.0.1:1"], "--ray-address"),
    ],
)
def test_sweep_flags_the_run_does_not_read_are_exit_2(
    args: list[str], flag: str, tmp_path: Path
) -> None:
    """They were accepted and ignored (a fresh-eye attack), as docs/cli.md says they are not."""
    out = tmp_path / "s"
    p = straits("market", "sweep", "--runs", "2", *SMALL, *args, "--out", str(out))
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith(f"error: {flag}") and not out.exists()
