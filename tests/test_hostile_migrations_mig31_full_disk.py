"""The store on a file system that takes no more (mig31): ``RLIMIT_FSIZE`` in a child, a full
disk.

The recording commands and ``ledger export -o`` exit 1, nothing half-written, and the same
command works afterwards; ``ledger keygen`` leaves neither file when the disk takes the key but
not its ``.pub``, or when no file can grow; SQLite's ``disk I/O error`` is named by its cause;
an upgrade that needs room is refused whole and finished once there is room. The old
databases (the ``old`` fixture) and the process helpers are imported from
tests/test_hostile_migrations_mig31.py.

docs/robustness.md, "mig31".
"""

# ruff: noqa: F811 (the imported ``old`` fixture is the tests' parameter)

from __future__ import annotations

import json
import os
import resource
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from straits.store import Store, ledger
from test_hostile_migrations_mig31 import (
    EXAMPLES,
    _cli,
    _copy,
    _ran,
    _schema,
    _served,
    old,  # noqa: F401 (the fixture)
)

# --- a file system that takes no more ----------------------------------------------------------
#: the most bytes a child may write to one file: above SQLite's -shm (32 KiB), so the log opens,
#: below what a recorded check, a recorded plan or the export of the log needs
FSIZE = 40 * 1024


def _grown(old: dict[str, Path], tmp_path: Path) -> str:
    """The head database with 20 more entries (its export is over :data:`FSIZE`)."""
    db = _copy(old["head"], tmp_path / "f.db")
    url = f"sqlite:///{db}"
    store = Store(url)
    for i in range(20):
        ledger.record(
            store, tenant="alpha", actor="t", kind="check", body={"i": i, "pad": "x" * 2000}
        )
    store.close()
    return url


#: the corpus: commands that write, each under RLIMIT_FSIZE; OUT is the export's path
FULL_DISK = {
    "export": ("ledger", "export", "-o", "OUT"),
    "check": ("check", str(EXAMPLES / "request.json"), "--record", "--tenant", "gamma"),
    "plan": ("plan", str(EXAMPLES / "offshore-2025.yaml"), "--record", "--solver", "greedy"),
}


def _full_disk(old: dict[str, Path], tmp_path: Path, case: str) -> None:
    url = _grown(old, tmp_path)
    out = tmp_path / "out" / "ledger.jsonl"
    out.parent.mkdir()
    args = [str(out) if a == "OUT" else a for a in FULL_DISK[case]] + ["--db", url]
    entries = _served(url)[0]
    rc, err = _ran(_cli(*args, fsize=FSIZE))
    assert rc == 1, err[-600:]  # not killed by SIGXFSZ, not bad input
    assert "Traceback" not in err
    assert list(out.parent.iterdir()) == []  # no export, no temporary file left
    assert _served(url) == (entries, True)  # nothing half-written: the log as it was
    rc, err = _ran(_cli(*args))  # room again: the same command works
    assert rc == 0, err[-600:]
    served, ok = _served(url)
    assert ok and len(served) == len(entries) + (case != "export")
    if case == "export":
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert lines == served


def test_an_export_to_a_file_system_that_takes_no_more_is_exit_1_and_leaves_nothing(
    old: dict[str, Path], tmp_path: Path
) -> None:
    _full_disk(old, tmp_path, "export")


@pytest.mark.slow
@pytest.mark.parametrize("case", ["check", "plan"])
def test_recording_on_a_file_system_that_takes_no_more_is_exit_1_and_leaves_the_log(
    old: dict[str, Path], tmp_path: Path, case: str
) -> None:
    _full_disk(old, tmp_path, case)


def test_keygen_on_a_disk_that_takes_the_key_but_not_its_pub_leaves_neither(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk (measured on a tmpfs with 4 KiB free: the key fitted, its .pub did not)."""
    import errno

    from straits import fileio
    from test_ledger_cli import straits

    real = fileio.replace_file

    def full(path: Path, data: bytes, *args: Any, **kwargs: Any) -> None:
        if path.name.endswith(".pub"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, data, *args, **kwargs)

    key = tmp_path / "ledger.key"
    monkeypatch.setattr(fileio, "replace_file", full)
    assert straits("ledger", "keygen", "-o", str(key)).returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == []
    monkeypatch.setattr(fileio, "replace_file", real)
    assert straits("ledger", "keygen", "-o", str(key)).returncode == 0  # no --force needed
    assert key.exists() and key.with_name("ledger.key.pub").exists()


def test_keygen_where_no_file_can_grow_is_exit_1_and_leaves_nothing(tmp_path: Path) -> None:
    rc, err = _ran(_cli("ledger", "keygen", "-o", str(tmp_path / "ledger.key"), fsize=0))
    assert rc == 1 and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_a_file_sqlite_cannot_grow_is_named_by_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite says `disk I/O error` for a file it may not grow (EFBIG under ``ulimit -f``) and
    for a ``-shm`` it cannot make on a full disk (a tmpfs with 0 KiB free: `cannot open the
    database`): the error names the limit or the free space, not only the I/O error."""
    from types import SimpleNamespace

    from sqlalchemy.exc import OperationalError

    from straits.store.contention import holder_hint
    from straits.store.sqlite_file import unopened_hint

    db = str(tmp_path / "f.db")
    io_error = OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error"))
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert (unopened_hint(db), holder_hint(io_error, "sqlite")) == ("", "")
    monkeypatch.setattr(os, "statvfs", lambda _p: SimpleNamespace(f_bavail=3, f_frsize=4096))
    assert unopened_hint(db) != ""
    monkeypatch.undo()
    monkeypatch.setattr(resource, "getrlimit", lambda _r: (FSIZE, FSIZE))
    assert holder_hint(io_error, "sqlite") != "" and unopened_hint(db) != ""
    assert holder_hint(io_error, "postgresql") == ""
    assert holder_hint(locked, "sqlite") != holder_hint(io_error, "sqlite")


def test_an_upgrade_on_a_file_system_that_takes_no_more_is_exit_1_and_leaves_the_old_schema(
    old: dict[str, Path], tmp_path: Path
) -> None:
    """The upgrade's batch copies need room (its WAL grows past the limit): refused whole, then
    finished once there is room (by hand also on a tmpfs with 40 to 200 KiB free)."""
    db = _copy(old["0001"], tmp_path / "u.db")
    before = _schema(db)
    rc, err = _ran(_cli("ledger", "verify", "--db", f"sqlite:///{db}", fsize=64 * 1024))
    assert rc == 1 and "Traceback" not in err
    assert _schema(db) == before
    assert _served(f"sqlite:///{db}") == (_served(f"sqlite:///{old['head']}")[0], True)
    assert _schema(db) == _schema(old["head"])
