"""brk32: this session's new code under attack (docs/robustness.md, brk32).

Standard output that is a non-blocking pipe (a parent set ``O_NONBLOCK`` on it) with a slow
reader: a write the pipe has no room for yet is ``EAGAIN``. Written through the file descriptor
(``fileio.write_fully``), a JSON document or ``--help`` stopped at what the pipe held, exit 1
"Resource temporarily unavailable" (before that change: the rest dropped, exit 0). It waits
for room now: every byte, exit 0."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from straits.rules import RuleSet
from test_export_slurm import _export_ci
from test_slurm_status import _offline, _stages, qrow

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


def _queued(fd: int) -> int:
    """Bytes waiting in the pipe ``fd`` reads (``FIONREAD``)."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0])


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
        # until the pipe is full (the command's next write has no room) or the command ended
        deadline = time.monotonic() + 60
        while _queued(r) < 4096 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
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
@pytest.mark.parametrize("args", [["chips", "--json"], ["rules", "list"], ["--help"]], ids=" ".join)
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


def _status_bundle(rules: RuleSet, tmp_path: Path) -> tuple[dict[str, str], Path, list[str]]:
    """An exported CI bundle with the stand-ins of tests/test_slurm_status.py; the queue holds
    each stage's job (10, 11, ...) completed, with the plan's comment."""
    bundle, _ = _export_ci(tmp_path / "ci", rules, ["true"])
    files = {str(p.relative_to(bundle)): p.read_text() for p in bundle.rglob("*") if p.is_file()}
    env, folder = _offline(files, tmp_path)
    mark = (folder / "submit.sh").read_text().split("MARK=", 1)[1].split("\n", 1)[0]
    names = [e.split(":")[0] for e in _stages(folder)]
    rows = [qrow(i + 10, mark, "COMPLETED", "None", "node", n) for i, n in enumerate(names)]
    (tmp_path / "squeue.rows").write_text("\n".join(rows) + "\n")
    return env, folder, names


def _run_status(script: Path, env: dict[str, str]) -> tuple[int, list[list[str]], str]:
    p = subprocess.run(
        ["bash", str(script), "--tsv"], env=env, capture_output=True, text=True, timeout=60, cwd="/"
    )
    return p.returncode, [line.split("\t") for line in p.stdout.splitlines()], p.stderr


def test_status_reads_a_crlf_record_and_skips_a_job_line_without_an_id(
    rules: RuleSet, tmp_path: Path
) -> None:
    """A record with CRLF line ends (copied through Windows, an editor): each job id kept its
    CR, every stage was ``unknown`` with a CR in its jobs column, exit 4. A job line cut short
    (no id) was ``STATE: bad array subscript`` on stderr at each run."""
    env, folder, names = _status_bundle(rules, tmp_path)
    good = "run 1\n" + "".join(f"job {n} 1 1 {i + 10}\n" for i, n in enumerate(names)) + "done\n"
    record = folder / ".straits-submitted"
    for text in (good.replace("\n", "\r\n"), "run 1\njob\njob x 1 1\n" + good[6:]):
        record.write_bytes(text.encode())
        rc, table, err = _run_status(folder / "status.sh", env)
        assert (rc, err) == (0, "")
        assert [r[:4] for r in table[1:]] == [
            [n, "completed", "1/1", str(i + 10)] for i, n in enumerate(names)
        ]


def test_status_through_a_symlink_reads_the_record_beside_the_script(
    rules: RuleSet, tmp_path: Path
) -> None:
    """status.sh linked from another folder (``~/bin``) went to the link's folder, found no
    record there and fell back to the queue: a submit.sh that stopped was read as stages
    never seen in squeue. It reads the record beside the script it links to now."""
    env, folder, _ = _status_bundle(rules, tmp_path)
    (tmp_path / "squeue.rows").write_text("")
    (folder / ".straits-submitted").write_text("run 1\nstopped 1\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "status.sh").symlink_to(folder / "status.sh")
    direct = _run_status(folder / "status.sh", env)
    assert direct[0] == 1 and {r[1] for r in direct[1][1:]} == {"not-submitted"}
    assert _run_status(elsewhere / "status.sh", env) == direct
