"""A careless operator's market sweep: more local workers than CPUs (each a process of about
100 MB: --workers 512 would take a small machine's memory) runs as many as there are CPUs,
and says so. The market files a hostile user writes are in tests/hostile_corpus.py
(``market:*``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def test_more_workers_than_cpus_run_as_many_as_there_are_cpus(tmp_path: Path) -> None:
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "straits",
            "market",
            "sweep",
            "--runs",
            "2",
            "--firms",
            "5",
            "--backend",
            "processes",
            "--workers",
            "512",
            "--out",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["workers"] == min(512, os.cpu_count() or 1)
    assert summary["runs"] == 2
    if (os.cpu_count() or 1) < 512:
        assert "--workers 512" in p.stderr


SWEEP = [sys.executable, "-m", "straits", "market", "sweep", "--runs", "40", "--firms", "2"]


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_sigterm_mid_sweep_stops_the_workers(tmp_path: Path) -> None:
    """SIGTERM (kill, a scheduler's limit) to a sweep on local processes: exit 143 and its
    workers stop with it. They ran on, orphaned, holding its stdout and stderr open (a caller
    reading them waited forever), and no part is left half-written."""
    out = tmp_path / "s"
    workers: list[int] = []
    p = subprocess.Popen(
        [*SWEEP, "--backend", "processes", "--workers", "2", "--out", str(out), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_children(p.pid)) < 2 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
        time.sleep(1.0)  # the workers are importing or running a batch
        workers = _children(p.pid)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)  # EOF only once every worker is gone too
    finally:
        if p.poll() is None:
            p.kill()
        for child in workers:  # orphans, if the sweep left any
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
    assert p.returncode == 143, err
    assert "Traceback" not in err
    for w in workers:
        assert not Path(f"/proc/{w}").exists() or "Z" in _state(w)
    for part in (out / "parts").glob("part-*.parquet"):
        import pyarrow.parquet as pq

        assert pq.read_table(part).num_rows > 0


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"
