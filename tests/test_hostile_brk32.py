"""brk32: this session's new code under attack (docs/robustness.md, brk32).

Standard output that is a non-blocking pipe (a parent set ``O_NONBLOCK`` on it) with a slow
reader: a write the pipe has no room for yet is ``EAGAIN``. Written through the file descriptor
(``fileio.write_fully``), a JSON document or ``--help`` stopped at what the pipe held, exit 1
"Resource temporarily unavailable" (before that change: the rest dropped, exit 0). It waits
for room now: every byte, exit 0."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
F_SETPIPE_SZ = 1031  # Linux

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux pipes")


def _env(tmp_path: Path, unbuffered: bool) -> dict[str, str]:
    env = {
        "PYTHONPATH": str(ROOT / "src"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "STRAITS_DATABASE_URL": f"sqlite:///{tmp_path / 'straits.db'}",
    }
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    return env


def _slow_nonblocking(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, bytes, str]:
    """Run ``straits ARGS`` into a 4 KiB non-blocking pipe that is read only after the command
    has filled it, then a little at a time."""
    r, w = os.pipe()
    try:
        fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
        fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
        proc = subprocess.Popen(
            [sys.executable, "-m", "straits", *args],
            stdout=w,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        os.close(w)
        w = -1
        time.sleep(1.5)  # the pipe is full: the command's next write has no room
        data = b""
        while chunk := os.read(r, 1024):
            data += chunk
            time.sleep(0.001)
        _, err = proc.communicate(timeout=120)
        return proc.returncode, data, err.decode()
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("args", [["chips", "--json"], ["--help"]], ids=" ".join)
def test_a_nonblocking_stdout_gets_every_byte(
    args: list[str], unbuffered: bool, tmp_path: Path
) -> None:
    env = _env(tmp_path, unbuffered)
    want = subprocess.run(
        [sys.executable, "-m", "straits", *args],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=True,
    ).stdout
    assert len(want) > 4096  # more than the pipe holds
    code, got, err = _slow_nonblocking(args, env, tmp_path)
    assert (code, err) == (0, "")
    assert got == want
