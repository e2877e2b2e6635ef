"""Running a sweep: batches of runs on Ray, local processes or inline, streamed to Parquet.

Every run is a pure function of (market, parameter values, regime, seed, firms): the same
values give the same metrics wherever they run, so the backends give identical tables. All runs
share the simulation seed (common random numbers: the firms are the same in every run, so the
differences between runs come from the parameters alone).

Results are streamed: each finished batch is written as ``parts/part-NNNNN.parquet`` (through a
temporary file and a rename, so an interrupted sweep leaves only whole parts), and a rerun with
the same ``sweep.json`` skips the runs already in the parts.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from straits.market.outputs import parquet_bytes, write_bytes_atomically
from straits.market.sweep.ray_token import join_refused, probe_token

Batch = list[tuple[int, dict[str, float]]]
#: object store of a local Ray started by a sweep (small: others share the machine)
RAY_OBJECT_STORE_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class Simulation:
    """What every run of a sweep shares: the market, its label for errors, the regime, the
    simulation seed and the number of firms. A run is a pure function of this and its values."""

    raw: dict[str, Any]
    label: str
    regime: str | None
    seed: int
    firms: int


def run_batch(sim: Simulation, batch: Batch) -> list[dict[str, Any]]:
    """Simulate each (run id, parameter values) of ``batch``; one row per run."""
    from straits.market.loading import validate, with_values
    from straits.market.simulation import simulate
    from straits.market.sweep.metrics import metrics

    rows = []
    for run, values in batch:
        m = validate(with_values(sim.raw, values, label=sim.label), sim.label)
        result = simulate(m, regime=sim.regime, seed=sim.seed, firms=sim.firms)
        row: dict[str, Any] = {"run": run, **{f"param:{k}": v for k, v in values.items()}}
        row.update(
            {
                k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in metrics(result).items()
            }
        )
        rows.append(row)
    return rows


def _warm(parent: int | None = None) -> None:
    """Load the rules and the estimator once per worker process, which dies with ``parent``
    (the sweep's process) where it can."""
    if parent is not None:
        _die_with(parent)
    from straits.rules import ruleset

    ruleset()


#: prctl(2) option: the signal a process gets when its parent dies (Linux)
PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """SIGKILL to this worker when the sweep's process dies, on Linux. A sweep killed by
    SIGKILL (``kill -9``, the OOM killer, a scheduler's hard limit) left its workers running,
    orphaned, for ever: each finished its batch and waited on the pool's queue, whose write
    end it holds itself (about 170 MB each)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the sweep died before prctl was in place
        os._exit(1)


def write_part(parts: Path, index: int, rows: list[dict[str, Any]]) -> None:
    write_bytes_atomically(
        parts / f"part-{index:05d}.parquet", parquet_bytes(rows, {"straits.sweep.part": str(index)})
    )


Job = tuple[int, Batch]
Done = Callable[[int, list[dict[str, Any]]], None]


def inline(sim: Simulation, jobs: list[Job], done: Done) -> None:
    for index, batch in jobs:
        done(index, run_batch(sim, batch))


def processes(sim: Simulation, jobs: list[Job], done: Done, workers: int) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_warm, initargs=(os.getpid(),)
    )
    try:
        with _terminated_as_exit():
            _feed(
                lambda batch: pool.submit(run_batch, sim, batch),
                jobs,
                done,
                2 * workers,
            )
    except BaseException:
        # Ctrl-C, SIGTERM or a failed batch: stop the workers now. The executor's own exit
        # waited for the batches in flight (a minute and more), and a SIGTERM killed only this
        # process: its workers ran on, orphaned, holding its stdout and stderr open.
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _feed(
    submit: Callable[[Batch], Future[list[dict[str, Any]]]],
    jobs: list[Job],
    done: Done,
    in_flight: int,
) -> None:
    """Keep ``in_flight`` batches submitted until every job is done, each reported as it
    finishes."""
    pending: dict[Future[list[dict[str, Any]]], int] = {}
    queue: Iterator[Job] = iter(jobs)
    for index, batch in queue:
        pending[submit(batch)] = index
        if len(pending) >= in_flight:
            break
    while pending:
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for fut in finished:
            done(pending.pop(fut), fut.result())
            nxt = next(queue, None)
            if nxt is not None:
                pending[submit(nxt[1])] = nxt[0]


@contextlib.contextmanager
def _terminated_as_exit() -> Iterator[None]:
    """SIGTERM (``kill``, a scheduler's time limit) raises SystemExit(143) here, as Ctrl-C
    raises KeyboardInterrupt, so the workers are stopped and nothing half-written is left."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    got: list[int] = []

    def _exit(signum: int, frame: Any) -> None:
        got.append(signum)
        raise SystemExit(128 + signum)

    before = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    except SystemExit:
        if got:  # Ray's wait turns the SystemExit a signal handler raises into SystemExit(1)
            raise SystemExit(128 + got[0]) from None
        raise
    finally:
        signal.signal(signal.SIGTERM, before)


def _stop(pool: ProcessPoolExecutor) -> None:
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(5)


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


#: seconds to wait for a Ray cluster's port to accept a connection
PROBE_SECONDS = 5.0


def probe_ray(address: str, option: str = "--ray-address") -> None:
    """Refuse an address nothing listens at, at once: Ray itself retries an unreachable GCS
    for minutes before it gives up (``127.0.0.1:1`` ran past 120 s). ``option`` is where the
    address came from (``--ray-address`` or ``RAY_ADDRESS``)."""
    import socket

    from straits.errors import InputError

    hostport = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = hostport.rstrip("/").rpartition(":")
    if not sep or not port.isdigit():
        return  # 'auto', a bare host: Ray resolves and reports those itself
    if not host.strip("[]"):  # Ray logged its own traceback ('Malformed host') before failing
        raise InputError(
            f"cannot join the Ray cluster at {address!r}: no host before :{port}",
            path=option,
            expected="the address of a running Ray cluster (ray://HOST:10001 or HOST:6379)",
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS):
            pass
    except (OSError, ValueError, OverflowError) as e:
        raise InputError(
            f"cannot join the Ray cluster at {address!r}: nothing answers at "
            f"{host}:{port} ({getattr(e, 'strerror', None) or e})",
            path=option,
            expected="the address of a running Ray cluster (ray://HOST:10001 or HOST:6379)",
        ) from None


def ray_address_from_env() -> str | None:
    """``RAY_ADDRESS``, which Ray reads as the cluster to join (``ray job submit`` sets it for
    its entrypoint), or None where it is unset, blank or ``local``."""
    import os

    address = os.environ.get("RAY_ADDRESS", "").strip()
    return address if address and address != "local" else None


def on_ray(
    sim: Simulation,
    jobs: list[Job],
    done: Done,
    workers: int,
    address: str | None,
    option: str = "--ray-address",
) -> None:
    import ray

    # SIGTERM is exit 143, as with local processes: ray.init's own handler is sys.exit(15)
    # (exit 15), and Ray's wait turned the SystemExit of any handler into exit 1
    with _ray_terminated_as_exit():
        started = _start_ray(ray, workers, address, option)
        try:
            with _terminated_as_exit():
                _feed_ray(ray, sim, jobs, done, workers)
        finally:
            if started:
                ray.shutdown()


def join_ray(address: str, option: str = "--ray-address") -> bool:
    """Join the Ray cluster at ``address`` now; whether it was joined here (False where Ray
    was already initialised), for the caller to shut down. A sweep run then on Ray uses it."""
    import ray

    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM) if main else None
    with _ray_terminated_as_exit():
        joined = _start_ray(ray, 1, address, option)
    if main and before is not None:  # not ray.init's sys.exit(15) until the sweep runs
        signal.signal(signal.SIGTERM, before)
    return joined


@contextlib.contextmanager
def _ray_terminated_as_exit() -> Iterator[None]:
    """The SystemExit(15) of ray.init's SIGTERM handler (in place while Ray starts, and until
    ``_terminated_as_exit`` takes over) is SystemExit(143)."""
    try:
        yield
    except SystemExit as e:
        if e.code == signal.SIGTERM:
            raise SystemExit(128 + signal.SIGTERM) from None
        raise


def _start_ray(ray: Any, workers: int, address: str | None, option: str) -> bool:
    """Join the cluster at ``address``, or start a local Ray of ``workers`` CPUs; whether a
    Ray was started or joined here (to shut down), False where one was already running."""
    if not ray.is_initialized():
        if address:
            probe_ray(address, option)
            probe_token(address, option)  # at once, where ray.init retries for 20 s
            auth = getattr(getattr(ray, "exceptions", None), "AuthenticationError", ValueError)
            try:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            except (ValueError, ConnectionError, RuntimeError, TimeoutError, auth) as e:
                # an unreachable cluster, a malformed address, Ray Client not installed, a
                # cluster that asks for a token
                raise join_refused(e, address, option) from None
        else:
            # "local": a new Ray of its own, whatever RAY_ADDRESS says (Ray reads it for an
            # address of None, and refused num_cpus: a ValueError traceback)
            ray.init(
                address="local",
                num_cpus=workers,
                object_store_memory=RAY_OBJECT_STORE_BYTES,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        return True
    return False


def _feed_ray(ray: Any, sim: Simulation, jobs: list[Job], done: Done, workers: int) -> None:
    """Keep ``2 * workers`` batches on Ray until every job is done, each reported as it
    finishes."""
    remote = ray.remote(num_cpus=1)(run_batch)
    sim_ref = ray.put(sim)  # the market once in the object store, not once per batch
    pending: dict[Any, int] = {}
    queue = iter(jobs)
    limit = 2 * max(workers, 1)
    for index, batch in queue:
        pending[remote.remote(sim_ref, batch)] = index
        if len(pending) >= limit:
            break
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            done(pending.pop(ref), ray.get(ref))
            nxt = next(queue, None)
            if nxt is not None:
                pending[remote.remote(sim_ref, nxt[1])] = nxt[0]
