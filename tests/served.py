"""`straits serve` in a process of its own, for the end-to-end tests that talk to a real
server (uvicorn on a free port)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(
    db: str,
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[str]:
    """``straits serve --db DB ARGS`` on a free port with ``env`` added to the environment, its
    output to ``log`` (else inherited); yields its URL once ``/healthz`` answers 200 (at most
    120 s; a server that exits first fails with its log), and stops it after."""
    port = free_port()
    out = open(log, "w") if log else None  # noqa: SIM115  (closed below)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "straits",
            "serve",
            "--port",
            str(port),
            "--db",
            db,
            "--log-level",
            "warning",
            *args,
        ],
        env={**os.environ, **(env or {})},
        stdout=out,
        stderr=out,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text() if log else "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if out is not None:
            out.close()


def hangup_by_default() -> None:
    """In a child (``preexec_fn``): SIGHUP's default action, whatever the tests were started
    with (under ``nohup`` the child would inherit it ignored, and a server or worker so started
    rightly stays up when its terminal closes: ``jobs.stop_signals``)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
