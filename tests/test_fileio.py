"""Safe writes (`straits.fileio.write_output`, behind every `-o`): `-` is stdout, a directory
gets the default name, only regular files are replaced (atomically, keeping their mode), new
files follow the umask, links, FIFOs, devices and sockets are refused, and a failure or a
kill -9 mid-write leaves the old file whole."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from straits.errors import InputError, OutputError
from straits.fileio import output_path, write_output
from test_cli import straits


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_dash_and_none_mean_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert write_output("-", "to stdout\n") is None
    assert write_output(None, "also\n") is None
    assert capsys.readouterr().out == "to stdout\nalso\n"
    assert output_path("-") is None


@pytest.mark.parametrize(
    ("mask", "executable", "expected"),
    [
        (0o022, False, 0o644),
        (0o077, False, 0o600),
        (0o002, False, 0o664),
        (0o022, True, 0o755),
        (0o027, True, 0o750),
    ],
)
def test_new_files_follow_the_umask(
    tmp_path: Path, mask: int, executable: bool, expected: int
) -> None:
    old = os.umask(mask)
    try:
        out = write_output(tmp_path / "new.txt", "x", executable=executable)
    finally:
        os.umask(old)
    assert out is not None and mode(out) == expected


def test_a_regular_file_is_replaced_keeping_its_mode(tmp_path: Path, umask: None) -> None:
    target = tmp_path / "kept.json"
    target.write_text("old")
    target.chmod(0o640)
    write_output(target, "new")
    assert target.read_text() == "new" and mode(target) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["kept.json"]  # no temporary file left


def test_a_directory_gets_the_default_name(tmp_path: Path, umask: None) -> None:
    out = write_output(tmp_path, "x", default_name="ledger.jsonl")
    assert out == tmp_path / "ledger.jsonl" and out.read_text() == "x"
    with pytest.raises(InputError, match="is a directory"):
        write_output(tmp_path, "x")
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match="is a directory"):  # the default name is a directory
        write_output(tmp_path, "x", default_name="sub")


def test_links_fifos_devices_and_sockets_are_never_replaced(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "link"
    link.symlink_to(victim)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    cases = [
        (link, "symbolic link"),
        (dangling, "symbolic link"),
        (fifo, "FIFO"),
        (Path("/dev/null"), "character device"),
        (sock_path, "socket"),
    ]
    try:
        for path, kind in cases:
            with pytest.raises(InputError, match=kind) as exc:
                write_output(path, "clobber")
            assert exc.value.path == "-o"
    finally:
        server.close()
    assert victim.read_text() == "precious" and link.is_symlink() and fifo.is_fifo()
    assert not (tmp_path / "nowhere").exists()


def test_a_failed_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "t.txt"
    target.write_text("old contents")
    real = os.write
    calls = {"n": 0}

    def disk_full(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(28, "No space left on device")
        return real(fd, bytes(data[:10]))

    monkeypatch.setattr(os, "write", disk_full)
    with pytest.raises(OutputError):  # exit 1: the disk, not the command line (mig31)
        write_output(target, "new contents that do not fit")
    monkeypatch.undo()
    assert target.read_text() == "old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]


KILLED_WRITER = """
import os, sys, time
from straits import fileio
real = os.write
def slow(fd, data):
    n = real(fd, bytes(data[:4096]))
    print("writing", flush=True)
    time.sleep(60)
    return n
os.write = slow
fileio.write_output(sys.argv[1], "new " * 100000)
"""


def test_kill_9_mid_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "t.txt"
    target.write_text("old contents")
    p = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "writing"
    os.kill(p.pid, signal.SIGKILL)
    p.wait(30)
    assert target.read_text() == "old contents"  # at worst a .t.txt.*.tmp beside it


def test_the_cli_writes_through_the_same_rules(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    assert (
        straits(
            "check",
            "--json",
            "--record",
            "--db",
            db,
            stdin='{"date": "2025-06-01", "action": "train", "tenant": {"hq": "SG"}, '
            '"site": {"country": "SG", "operator_hq": "SG"}, '
            '"chip": "H100-SXM"}',
        ).returncode
        == 0
    )
    to_stdout = straits("ledger", "export", "--db", db, "-o", "-")
    assert to_stdout.returncode == 0 and to_stdout.stdout.count("\n") == 1
    assert straits("ledger", "export", "--db", db, "-o", str(tmp_path)).returncode == 0
    assert (tmp_path / "ledger.jsonl").read_text() == to_stdout.stdout
    (tmp_path / "link").symlink_to(tmp_path / "ledger.jsonl")
    refused = straits("ledger", "export", "--db", db, "-o", str(tmp_path / "link"))
    assert refused.returncode == 2 and "symbolic link" in refused.stderr
    dev = straits("scenario", "generate", "-o", "/dev/full")
    assert dev.returncode == 2 and "character device" in dev.stderr


@pytest.mark.parametrize("target", ["", " ", "\t"])
def test_an_empty_path_is_refused_not_the_current_directory(
    tmp_path: Path, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o "$UNSET"` must not write into wherever the command runs."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as e:
        write_output(target, "x", default_name="out.json")
    assert e.value.path == "-o"
    assert list(tmp_path.iterdir()) == []
    p = straits("ledger", "export", "--db", f"sqlite:///{tmp_path / 'l.db'}", "-o", target)
    assert p.returncode == 2 and not (tmp_path / "ledger.jsonl").exists()


def test_export_into_something_not_a_directory_is_refused_naming_it(tmp_path: Path) -> None:
    """`export -o DIR` writes files into a directory: a file, link to a file, dangling link,
    FIFO or device there is refused at once, by its kind (not `[Errno 17] File exists`)."""
    from straits.fileio import output_dir

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "link").symlink_to(victim)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dirlink").symlink_to(tmp_path / "dir")
    os.mkfifo(tmp_path / "fifo")
    cases = [
        (victim, "a file"),
        (tmp_path / "link", "a file"),
        (tmp_path / "dangling", "symbolic link to nothing"),
        (tmp_path / "fifo", "FIFO"),
        (Path("/dev/null"), "character device"),
    ]
    for path, kind in cases:
        with pytest.raises(InputError, match=kind) as exc:
            output_dir(path)
        assert exc.value.path == "-o"
    for ok in (tmp_path / "dir", tmp_path / "dirlink", tmp_path / "new"):
        assert output_dir(ok) == ok
    p = straits("export", str(tmp_path / "nothing.json"), "--to", "slurm", "-o", str(victim))
    assert p.returncode == 2 and "a file, not a directory" in p.stderr
    assert victim.read_text() == "precious" and not (tmp_path / "nowhere").exists()


def test_an_unwritable_place_is_refused_before_the_work(tmp_path: Path) -> None:
    """A path under a regular file, or in a directory this process may not write, is refused
    by ``output_path`` (which every command calls before it works), not after a long run."""
    from straits.fileio import output_path

    afile = tmp_path / "afile"
    afile.write_text("x")
    for target in (afile / "out.json", afile / "deeper" / "out.json"):
        with pytest.raises(InputError, match=r"(?i)not a directory") as exc:
            output_path(target, option="--out")
        assert exc.value.path == "--out"
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match="symbolic link to nothing") as exc:
        output_path(tmp_path / "dangling" / "sub" / "o.json", option="-o")
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(InputError) as exc:  # ENAMETOOLONG: an error, not a traceback
        output_path(tmp_path / ("a" * 300 + ".json"), option="-o")
    assert exc.value.path == "-o"
    # missing parents are fine: they are created on write
    assert output_path(tmp_path / "new" / "dir" / "o.json") == tmp_path / "new" / "dir" / "o.json"
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.geteuid() != 0:  # root may write anywhere: the check cannot refuse it
            with pytest.raises(InputError, match="permission denied") as exc:
                output_path(locked / "o.json")
            assert exc.value.path == "-o"
    finally:
        locked.chmod(0o700)


def test_market_refuses_an_unwritable_output_without_simulating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`straits market -o` into a place it cannot write exits 2 before the simulation."""
    from typer.testing import CliRunner

    import straits.market.simulation as simulation
    from straits.cli import app

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("simulated before refusing the output")

    monkeypatch.setattr(simulation, "simulate", boom)
    afile = tmp_path / "afile"
    afile.write_text("x")
    r = CliRunner().invoke(app, ["market", "-o", str(afile / "m.json")])
    assert r.exit_code == 2, r.output
    assert "-o" in r.output and "not a directory" in r.output.lower()
