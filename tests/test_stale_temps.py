"""A temporary file left by a writer killed with SIGKILL is removed by the next write of the
same target (left64; robustness.md: "A `kill -9` mid-write leaves ... at worst a
`.NAME.*.tmp` beside it", for good). Only a temporary of that target's own pattern whose
writer is gone (its lock free) goes: one a live writer is writing stays and is renamed into
place whole, and files of other shapes are never touched (`straits.tempfiles`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from straits.fileio import write_output
from straits.market.outputs import write_bytes_atomically
from test_cli_conventions import run

#: a writer of the target in argv[1] that prints "writing" after its first 4 KiB, then waits
#: for a line on stdin (or its SIGKILL) before writing the rest
PAUSED_WRITER = """
import os, sys
from pathlib import Path
from straits import fileio
from straits.market import outputs
real = os.write
def paused(fd, data):
    n = real(fd, bytes(data[:4096]))
    if n:
        print("writing", flush=True)
        sys.stdin.readline()
        os.write = real
    return n
os.write = paused
if sys.argv[2] == "fileio":
    fileio.write_output(sys.argv[1], "live " * 100000)
else:
    outputs.write_bytes_atomically(Path(sys.argv[1]), b"live " * 100000)
"""

WRITERS: dict[str, Callable[[Path, str], object]] = {
    "fileio": lambda p, text: write_output(p, text),
    "market": lambda p, text: write_bytes_atomically(p, text.encode()),
}


def _paused(target: Path, kind: str) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", PAUSED_WRITER, str(target), kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "writing"
    return p


def _temps(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("kind", WRITERS)
def test_the_next_write_removes_a_killed_writers_temporary(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "t.txt"
    target.write_text("old contents")
    p = _paused(target, kind)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(30)
    assert target.read_text() == "old contents"
    assert len(_temps(tmp_path)) == 1  # what the kill left (c9dafbc: for good)
    WRITERS[kind](target, "new " * 1000)
    assert target.read_text() == "new " * 1000
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("kind", WRITERS)
def test_a_live_writers_temporary_is_left_to_it(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "t.txt"
    p = _paused(target, kind)
    try:
        (live,) = _temps(tmp_path)
        WRITERS[kind](target, "ours")
        assert _temps(tmp_path) == [live]  # still being written: not removed
        assert target.read_text() == "ours"
    finally:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
        assert p.wait(30) == 0
    assert target.read_text() == "live " * 100000  # renamed into place whole
    assert _temps(tmp_path) == []


def test_files_of_other_shapes_are_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    kept = [
        ".t.txt.notours.tmp",  # not 12 hex digits
        ".t.txt.0123456789ab.tmp.bak",
        ".u.txt.0123456789ab.tmp",  # another target's
        "t.txt.0123456789ab.tmp",  # not hidden
    ]
    for name in kept:
        (tmp_path / name).write_text("x")
    (tmp_path / ".t.txt.abcdefabcdef.tmp").symlink_to(tmp_path / "t.txt.0123456789ab.tmp")
    os.mkdir(tmp_path / ".t.txt.fedcbafedcba.tmp")
    stale = tmp_path / ".t.txt.aaaaaaaaaaaa.tmp"
    stale.write_text("half")
    write_output(target, "x")
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*kept, ".t.txt.abcdefabcdef.tmp", ".t.txt.fedcbafedcba.tmp", "t.txt"]
    )


@pytest.mark.parametrize("force", [False, True], ids=["new", "force"])
def test_keygen_removes_what_a_killed_keygen_left(tmp_path: Path, force: bool) -> None:
    """`ledger keygen` writes its key (and with --force its .pub) through the same locked
    temporaries; the ones a killed run left (their lock free) are removed."""
    key = tmp_path / "ledger.key"
    if force:
        assert run("ledger", "keygen", "-o", str(key)).returncode == 0
    left = [
        tmp_path / ".ledger.key.0123456789ab.tmp",
        tmp_path / ".ledger.key.pub.ba9876543210.tmp",
    ]
    for stale in left:
        stale.write_text("half")
    p = run("ledger", "keygen", "-o", str(key), *(["--force"] if force else []))
    assert p.returncode == 0, p.stderr
    assert _temps(tmp_path) == []
    assert key.read_text().startswith("PRIVATE+KEY+")


@pytest.fixture
def nfs_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    """``flock`` as the Linux NFS (and SMB) client gives it: emulated with a byte-range lock
    on the whole file, so an exclusive lock needs a descriptor open for writing (EBADF on one
    open read-only; flock(2), "NFS details"). Otherwise the kernel's own flock."""
    import errno
    import fcntl

    real = fcntl.flock

    def flock(fd: int, op: int) -> None:
        if op & fcntl.LOCK_EX and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        real(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)


@pytest.mark.usefixtures("nfs_locks")
def test_on_nfs_a_stale_temporary_is_removed_and_a_live_one_kept(tmp_path: Path) -> None:
    """A sweep's output folder on NFS, where kill -9 (preemption, the OOM killer) is common:
    the cleaner locked the temporary through a read-only descriptor, which NFS refuses for an
    exclusive lock, so nothing was ever removed there (9b3031a)."""
    target = tmp_path / "t.txt"
    p = _paused(target, "fileio")  # a live writer (its lock the kernel's own)
    stale = tmp_path / ".t.txt.aaaaaaaaaaaa.tmp"
    stale.write_text("half")  # after the live writer's own clean-up
    try:
        write_output(target, "ours")
        assert not stale.exists()
        assert len(_temps(tmp_path)) == 1  # the live writer's, still there
    finally:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
        assert p.wait(30) == 0
    assert target.read_text() == "live " * 100000 and _temps(tmp_path) == []


def test_a_read_only_stale_temporary_is_removed_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One this user may not open for writing (mode 0444; refused as for a user who is not
    root) is locked through a read-only descriptor, as before: still removed locally."""
    stale = tmp_path / ".t.txt.bbbbbbbbbbbb.tmp"
    stale.write_text("half")
    stale.chmod(0o444)
    real = os.open

    def refusing(path: object, flags: int, *args: int, **kw: object) -> int:
        if str(path) == str(stale) and flags & os.O_ACCMODE != os.O_RDONLY:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing)
    write_output(tmp_path / "t.txt", "x")
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("kind", WRITERS)
def test_a_name_of_250_bytes_is_written_and_its_temporaries_told_apart(
    tmp_path: Path, kind: str
) -> None:
    """left64b: a target of 238 to 255 bytes could not be written at all: its temporary,
    `.NAME.<12 hex>.tmp`, was past the file system's 255 bytes (ENAMETOOLONG). A long name's
    temporary is its name cut short with a digest of the whole, and the next write of a long
    name removes what a killed writer of that name left, not what one of a name sharing its
    first 240 bytes (or of a short name equal to its cut) left."""
    from straits import tempfiles

    stem = "x" + "é" * 119 + "y"  # 240 bytes; the cut at 220 falls inside an é
    ours, theirs = tmp_path / (stem + "a" * 10), tmp_path / (stem + "b" * 10)
    assert len(os.fsencode(ours.name)) == 250
    short = tmp_path / stem[:110]  # the long names' cut (219 bytes, whole characters)
    for target in (ours, theirs, short):
        tmp, fd = tempfiles.create(target, 0o644)
        os.close(fd)  # its writer gone: stale
        assert len(os.fsencode(tmp.name)) <= 255
    left = _temps(tmp_path)
    assert len(left) == 3
    WRITERS[kind](ours, "new")
    assert ours.read_text() == "new"
    assert len(_temps(tmp_path)) == 2  # only its own was removed
    WRITERS[kind](theirs, "theirs")
    WRITERS[kind](short, "short")
    assert _temps(tmp_path) == []
    assert theirs.read_text() == "theirs" and short.read_text() == "short"
