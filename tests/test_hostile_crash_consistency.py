"""The crash-consistency and concurrency pass atk52: a database file truncated to nothing
under the commands that read a log (docs/robustness.md, "Faults and operators")."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.store import Store, ledger
from test_ledger_cli import straits


def _log(path: Path, n: int = 3) -> str:
    db = f"sqlite:///{path}"
    store = Store(db)
    for i in range(n):
        ledger.record(store, tenant="a", actor="t", kind="check", body={"i": i})
    store.close()
    return db


# --- a database file truncated to 0 bytes ------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        ("ledger", "verify"),
        ("ledger", "verify", "--quick"),
        ("ledger", "verify", "--tenant", "a"),
        ("ledger", "export", "-o", "OUT"),
        ("ledger", "show"),
        ("ledger", "receipt", "1"),
        ("ledger", "checkpoint", "--key", "KEY"),
        ("impact", "--date", "2025-07-01"),
        ("tokens", "list"),
    ],
    ids=[
        "verify",
        "quick",
        "tenant",
        "export",
        "show",
        "receipt",
        "checkpoint",
        "impact",
        "tokens",
    ],
)
def test_reading_a_truncated_database_makes_no_log_of_it(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """A log truncated to 0 bytes (`> straits.db`, a failed copy) was migrated into a new,
    empty database: `ledger verify` said `ledger verifies: 0 entries`, exit 0, `ledger export`
    wrote an empty export that verified, and `ledger checkpoint` signed the empty log."""
    path = tmp_path / "l.db"
    _log(path)
    path.write_bytes(b"")
    assert straits("ledger", "keygen", "-o", str(tmp_path / "k")).returncode == 0
    places = {"OUT": str(tmp_path / "l.jsonl"), "KEY": str(tmp_path / "k")}
    r = straits(*(places.get(a, a) for a in command), "--db", f"sqlite:///{path}")
    assert r.returncode == 1 and "empty file" in r.stderr and not r.stdout
    assert path.stat().st_size == 0 and not (tmp_path / "l.jsonl").exists()


def test_an_empty_file_beside_its_write_ahead_log_is_read(tmp_path: Path) -> None:
    """A main file of 0 bytes whose pages are all in `-wal` is a database, not a truncated one:
    it is read (only the main file's emptiness with no `-wal` is refused)."""
    path = tmp_path / "l.db"
    db = _log(path)
    (tmp_path / "l.db-wal").write_bytes(b"x" * 32)
    path.write_bytes(b"")
    r = straits("ledger", "verify", "--db", db)
    assert "empty file" not in r.stderr


def test_recording_into_an_empty_file_still_makes_the_database(tmp_path: Path) -> None:
    """Commands that record make the database they are pointed at, an empty file too (as they
    make a missing one)."""
    path = tmp_path / "new.db"
    path.write_bytes(b"")
    store = Store(f"sqlite:///{path}")
    ledger.record(store, tenant="a", actor="t", kind="check", body={})
    store.close()
    r = straits("ledger", "verify", "--db", f"sqlite:///{path}", "--json")
    assert r.returncode == 0
