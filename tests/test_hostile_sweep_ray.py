"""``straits market sweep`` on Ray and local processes, attacked (the pass h3): ``RAY_ADDRESS``
in the environment (``ray job submit`` sets it for its entrypoint), SIGTERM to a sweep on a
local Ray, SIGKILL to a sweep on local processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

SWEEP = [sys.executable, "-m", "straits", "market", "sweep", "--runs", "2", "--firms", "5"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(extra)
    return env


def test_ray_address_in_the_environment_is_the_cluster_joined(tmp_path: Path) -> None:
    """``RAY_ADDRESS`` set and no ``--ray-address``: the sweep joins that cluster, as Ray
    does. It started a local Ray with ``num_cpus``, which ray.init refuses when RAY_ADDRESS
    names a cluster: a ValueError traceback, even with a live cluster there. Nothing listens
    at this one: exit 2 naming RAY_ADDRESS, before --out is touched."""
    pytest.importorskip("ray")
    out = tmp_path / "s"
    p = subprocess.run(
        [*SWEEP, "--backend", "ray", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(RAY_ADDRESS="127.0.0.1:1"),
    )
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert "RAY_ADDRESS" in p.stderr and "127.0.0.1:1" in p.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("value", "address"),
    [("", None), ("  ", None), ("local", None), ("head:6379", "head:6379")],
)
def test_ray_address_from_env(monkeypatch: pytest.MonkeyPatch, value: str, address: Any) -> None:
    from straits.market.sweep.runner import ray_address_from_env

    monkeypatch.setenv("RAY_ADDRESS", value)
    assert ray_address_from_env() == address


class _Stop(Exception):
    pass


def test_a_local_ray_is_started_whatever_ray_address_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local Ray a sweep starts is asked for by ``address="local"``: with an address of
    None, ray.init reads RAY_ADDRESS and joins (or fails to join) that cluster instead."""
    ray = pytest.importorskip("ray")
    from straits.market.sweep.runner import Simulation, on_ray

    seen: dict[str, Any] = {}

    def init(**kw: Any) -> None:
        seen.update(kw)
        raise _Stop

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(_Stop):
        on_ray(Simulation({}, "m", None, 0, 5), [], lambda i, r: None, 2, None)
    assert seen["address"] == "local" and seen["num_cpus"] == 2


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                out += [int(child), *_descendants(int(child))]
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("when", ["starting", "running"])
def test_sigterm_to_a_sweep_on_a_local_ray(tmp_path: Path, when: str) -> None:
    """SIGTERM to a sweep on the local Ray it started is exit 143, as on local processes
    (docs/market.md), with Ray's processes gone. It was exit 1 after a C++ stack dump on
    stderr once the runs had started (Ray's wait turned the handler's SystemExit(143) into
    SystemExit(1)), and exit 15 while Ray started (ray.init's own handler)."""
    pytest.importorskip("ray")
    out = tmp_path / "s"
    p = subprocess.Popen(
        [*SWEEP[:5], "--runs", "40", "--firms", "5", "--backend", "ray", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and p.poll() is None:
            if when == "starting" and (out / "sweep.json").exists():
                time.sleep(0.5)  # the sweep is in ray.init
                break
            kids = _descendants(p.pid)
            if when == "running" and any(_cmdline(k).startswith("ray::run_batch") for k in kids):
                break
            time.sleep(0.2)
        assert p.poll() is None, "the sweep ended before the signal"
        seen = _descendants(p.pid)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, err
    assert "Traceback" not in err and "SIGTERM received" not in err
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(k) for k in seen):
        time.sleep(0.2)
    left = [_cmdline(k) for k in seen if _alive(k)]
    for k in [k for k in seen if _alive(k)]:  # never leave them to the next test
        with contextlib.suppress(OSError):
            os.kill(k, signal.SIGKILL)
    assert not left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(2) is Linux's")
def test_sigkill_to_a_sweep_on_local_processes_takes_its_workers(tmp_path: Path) -> None:
    """``kill -9`` (the OOM killer, a scheduler's hard limit) to a sweep on local processes:
    its workers die with it. They finished their batch and waited on the pool's queue for
    ever, orphaned, about 170 MB each (SIGTERM and Ctrl-C were already handled)."""
    args = ["--runs", "40", "--firms", "5", "--backend", "processes", "--workers", "2"]
    p = subprocess.Popen(
        [*SWEEP[:5], *args, "--out", str(tmp_path / "s")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
            workers = [k for k in _descendants(p.pid) if "spawn_main" in _cmdline(k)]
        assert len(workers) == 2, "the workers did not start"
        time.sleep(1.0)  # past their initializer
    finally:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    left = [w for w in workers if _alive(w)]
    for w in left:  # never leave them to the next test
        with contextlib.suppress(OSError):
            os.kill(w, signal.SIGKILL)
    assert not left


@pytest.mark.parametrize("address", ["garbage", ":6379", "ray://:10001"])
def test_an_address_ray_cannot_use_writes_nothing(tmp_path: Path, address: str) -> None:
    """An address Ray refuses (malformed, no host) is exit 2 naming --ray-address with
    --out untouched. It wrote sweep.json and parts/ first, so the next sweep of another
    design into that --out was refused as "a different sweep"; with no host, Ray's own
    traceback ('Malformed host') came before the error."""
    pytest.importorskip("ray")
    out = tmp_path / "s"
    p = subprocess.run(
        [*SWEEP, "--backend", "ray", "--ray-address", address, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert p.returncode == 2, p.stderr
    assert "--ray-address" in p.stderr and "Traceback" not in p.stderr
    assert not out.exists()
