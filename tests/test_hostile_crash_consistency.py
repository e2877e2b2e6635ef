"""The crash-consistency and concurrency pass atk52: a database file truncated to nothing
under the commands that read a log; a recorded plan's job set back to queued by hand; an
export cut after an entry (docs/robustness.md, "Faults and operators")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from queue_support import GREEDY, POLICY
from straits.loading import load_scenario
from straits.server import jobs
from straits.store import Store, ledger, queue
from straits.store.exported import NO_HEAD_NOTE
from straits.store.sqlite_file import unopened_hint
from straits.store.tables import LedgerRow, PlanRow
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


# --- a recorded plan's job set back to queued --------------------------------------------------
def _plan(store: Store, plan_id: str) -> tuple[str, int | None, int]:
    with store.session() as s:
        row = s.get(PlanRow, plan_id)
        assert row is not None
        entries = s.scalar(select(func.count()).select_from(LedgerRow))
        return row.status, row.ledger_seq, int(entries or 0)


def _run_until(store: Store, plan_id: str, status: str) -> None:
    w = jobs.Worker(store, slots=1, policy=POLICY, poll_s=0.1)
    w.start()
    try:
        deadline = time.monotonic() + 120
        while _plan(store, plan_id)[0] != status:
            assert time.monotonic() < deadline, _plan(store, plan_id)
            time.sleep(0.1)
    finally:
        w.stop()


def test_a_recorded_job_set_back_to_queued_is_not_recorded_twice(
    db_url: str, example_path: Path
) -> None:
    """`UPDATE plans SET status = 'queued'` of a done, recorded plan (a job 'retried' by hand):
    the next worker planned it again and appended a second ledger entry for the same plan id.
    It is failed now, with the reason, its entry and the log as they were."""
    store = Store(db_url)
    try:
        plan_id = queue.enqueue(
            store,
            load_scenario(example_path),
            GREEDY,
            tenant="a",
            actor="t",
            record=True,
            rules_digest=jobs.Worker(store, slots=1, policy=POLICY).rules_digest,
        )
        _run_until(store, plan_id, "done")
        _, seq, entries = _plan(store, plan_id)
        assert seq is not None and entries == 1
        engine = create_engine(store.url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE plans SET status = 'queued' WHERE id = :i"), {"i": plan_id})
        engine.dispose()
        _run_until(store, plan_id, "failed")
        assert _plan(store, plan_id) == ("failed", seq, 1)
        with store.session() as s:
            error = s.scalar(select(PlanRow.error).where(PlanRow.id == plan_id))
        assert error is not None and f"ledger entry {seq}" in error
    finally:
        store.close()


# --- an export cut after an entry ----------------------------------------------------------------
def test_an_export_verified_without_a_head_says_a_cut_one_verifies_too(tmp_path: Path) -> None:
    """An export cut after its second line (a `kill -9` of a copy, `head -n`) verified as
    `ledger verifies: 2 entries` with nothing said: only a head shows the cut. Without one the
    verification says so; with the log's checkpoint the cut export is `tail-removed`."""
    db = _log(tmp_path / "l.db", 4)
    out, cut = tmp_path / "l.jsonl", tmp_path / "cut.jsonl"
    key = tmp_path / "k"
    assert straits("ledger", "export", "--db", db, "-o", str(out)).returncode == 0
    assert straits("ledger", "keygen", "-o", str(key)).returncode == 0
    cp = straits("ledger", "checkpoint", "--db", db, "--key", str(key))
    assert cp.returncode == 0
    (tmp_path / "cp").write_text(cp.stdout)
    cut.write_text("".join(out.read_text().splitlines(keepends=True)[:2]))
    r = straits("ledger", "verify", "--file", str(cut), "--json")
    assert r.returncode == 0 and NO_HEAD_NOTE in json.loads(r.stdout)["notes"]
    r = straits(
        "ledger", "verify", "--file", str(cut), "--head", str(tmp_path / "cp"),
        "--pubkey", str(key) + ".pub", "--json",
    )  # fmt: skip
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == "tail-removed"
    r = straits(
        "ledger", "verify", "--file", str(out), "--head", str(tmp_path / "cp"),
        "--pubkey", str(key) + ".pub", "--json",
    )  # fmt: skip
    assert r.returncode == 0 and NO_HEAD_NOTE not in json.loads(r.stdout)["notes"]


# --- a database opened read-only ----------------------------------------------------------------
REQUEST = Path(__file__).parent.parent / "examples" / "request.json"


def test_mode_ro_opens_the_database_read_only(tmp_path: Path) -> None:
    """`sqlite:///PATH?mode=ro` (what the docs say to use as root): the driver ignored `mode`
    without `uri=true`, with a SAWarning on stderr, and `check --record` wrote entry 4 into the
    'read-only' database, exit 0."""
    path = tmp_path / "l.db"
    _log(path)
    before = path.read_bytes()
    r = straits("check", str(REQUEST), "--record", "--db", f"sqlite:///{path}?mode=ro")
    assert r.returncode == 1 and "readonly" in r.stderr and "SAWarning" not in r.stderr
    r = straits("ledger", "verify", "--db", f"sqlite:///{path}?mode=ro", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["entries"] == 3
    assert path.read_bytes() == before


def test_a_parameter_sqlite_does_not_read_is_refused(tmp_path: Path) -> None:
    """`?mod=ro` (a typo) was ignored with a warning: the database opened read-write."""
    path = tmp_path / "l.db"
    _log(path)
    r = straits("ledger", "verify", "--db", f"sqlite:///{path}?mod=ro")
    assert r.returncode == 2 and "'mod'" in r.stderr and not r.stdout


def test_a_folder_that_takes_no_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log on a read-only mount without its `-shm` (a snapshot, a copied backup) could not be
    opened even to read: `unable to open database file` of a file that is there. The error says
    why (a unit test: a read-only mount needs root to make)."""
    path = tmp_path / "l.db"
    _log(path)
    assert unopened_hint(str(path)) == ""
    (tmp_path / "l.db-shm").unlink(missing_ok=True)
    monkeypatch.setattr(os, "access", lambda *_a, **_k: False)
    hint = unopened_hint(f"file:{path}?mode=ro")
    assert str(tmp_path) in hint and "immutable=1" in hint
    (tmp_path / "l.db-shm").write_bytes(b"")
    assert unopened_hint(str(path)) == ""


# --- ledger keygen killed while writing the key ---------------------------------------------------
KILLED_MID_WRITE = """
import os, signal, sys
from pathlib import Path
import straits.fileio as fileio
from straits.store.keys import write_keys
from straits.store.note import Signer

real = fileio.write_all

def dying(fd, data):
    real(fd, data[:10])
    os.kill(os.getpid(), signal.SIGKILL)

fileio.write_all = dying
write_keys(Path(sys.argv[1]), Signer.generate("straits.test/killed"))
"""


def test_keygen_killed_while_writing_leaves_no_torn_key(tmp_path: Path) -> None:
    """The key was created at its name, then written: a `kill -9` in between left a key of 0
    or 10 bytes there ('not a signer key' to every command), and every later `keygen -o` was
    refused ('exists'). It is written whole under a temporary name and linked in place."""
    key = tmp_path / "ledger.key"
    src = str(Path(__file__).parent.parent / "src")
    r = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE, str(key)],
        env={**os.environ, "PYTHONPATH": src},
        capture_output=True,
        timeout=60,
    )
    assert r.returncode == -9
    assert not key.exists() and not (tmp_path / "ledger.key.pub").exists()
    assert straits("ledger", "keygen", "-o", str(key)).returncode == 0
    signed = straits("ledger", "checkpoint", "--db", _log(tmp_path / "l.db"), "--key", str(key))
    assert signed.returncode == 0
