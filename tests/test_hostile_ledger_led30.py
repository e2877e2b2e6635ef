"""The ledger's trust left-outs closed by led30 (docs/robustness.md): a stored checkpoint's
``origin`` and ``key_id`` columns compared with its signed note; the newest checkpoint row
deleted, found through the signing key's own record of what it last signed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from straits.loading import load_scenario
from straits.plan import Plan, make_plan
from straits.rules import RuleSet
from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store, ledger
from straits.store.keys import Keys
from straits.store.note import Signer
from straits.store.records import record_plan
from straits.store.tokens import create_token
from test_ledger_cli import checkpointed_log, straits
from test_ledger_log import sql

SIGNER = Signer.generate("straits.test/led30")


def _append(db: str, n: int) -> None:
    store = Store(db)
    for i in range(n):
        ledger.record(store, tenant="a", actor="t", kind="check", body={"i": i})
    store.close()


@pytest.fixture
def keyed(tmp_path: Path, db_url: str) -> Iterator[tuple[str, Path, Path]]:
    """A log of 5 entries (SQLite, PostgreSQL) with a checkpoint at 5; the key, its .pub and
    its record."""
    yield checkpointed_log(db_url, tmp_path, SIGNER)


def _verify(*args: str) -> tuple[int, dict[str, object]]:
    r = straits("ledger", "verify", "-o", "json", *args)
    return r.returncode, json.loads(r.stdout)


COLUMN_EDITS = [
    ("origin", "UPDATE ledger_checkpoints SET origin = 'evil.example/log'"),
    ("key_id", "UPDATE ledger_checkpoints SET key_id = 'deadbeef'"),
    ("key_id", "UPDATE ledger_checkpoints SET key_id = ''"),
]


@pytest.mark.parametrize(("column", "statement"), COLUMN_EDITS)
@pytest.mark.parametrize("options", [(), ("--quick",)], ids=["full", "quick"])
@pytest.mark.parametrize("with_key", [True, False], ids=["pubkey", "no-key"])
def test_an_edited_origin_or_key_id_is_found(
    keyed: tuple[str, Path, Path],
    column: str,
    statement: str,
    options: tuple[str, ...],
    with_key: bool,
) -> None:
    db, _, pub = keyed
    sql(db, statement)
    rc, doc = _verify("--db", db, *(("--pubkey", str(pub)) if with_key else ()), *options)
    assert (rc, doc["ok"], doc["code"]) == (1, False, "checkpoint-untrusted")
    assert f"its {column} column" in str(doc["problem"])


def test_a_receipt_is_refused_over_an_edited_origin(keyed: tuple[str, Path, Path]) -> None:
    db, _, pub = keyed
    sql(db, COLUMN_EDITS[0][1])
    r = straits("ledger", "receipt", "1", "--db", db, "--pubkey", str(pub), "-o", "-")
    assert r.returncode == 1 and not r.stdout


def test_signing_refuses_a_log_whose_checkpoint_origin_was_edited(
    keyed: tuple[str, Path, Path],
) -> None:
    """Issuing reads the latest row's ``origin``; an edited one is refused, not re-signed."""
    db, key, _ = keyed
    _append(db, 1)
    sql(db, COLUMN_EDITS[0][1])
    r = straits("ledger", "checkpoint", "--db", db, "--key", str(key))
    assert r.returncode == 1 and "origin" in r.stderr


def _two_checkpoints(db: str, key: Path) -> None:
    _append(db, 2)
    assert straits("ledger", "checkpoint", "--db", db, "--key", str(key)).returncode == 0


def test_the_newest_checkpoint_deleted_is_found_with_the_signing_key(
    keyed: tuple[str, Path, Path],
) -> None:
    db, key, pub = keyed
    _two_checkpoints(db, key)
    sql(db, "DELETE FROM ledger_checkpoints WHERE size = 7")
    rc, doc = _verify("--db", db, "--key", str(key))
    assert (rc, doc["ok"], doc["code"]) == (1, False, "checkpoint-missing")
    # the public key alone cannot tell it from a log that never signed 7 (docs)
    assert _verify("--db", db, "--pubkey", str(pub))[0] == 0


def test_a_record_ahead_of_the_table_is_stored_again_by_the_next_checkpoint(
    keyed: tuple[str, Path, Path],
) -> None:
    """What verify tells the operator to do makes it verify again."""
    db, key, _ = keyed
    _two_checkpoints(db, key)
    sql(db, "DELETE FROM ledger_checkpoints WHERE size = 7")
    assert straits("ledger", "checkpoint", "--db", db, "--key", str(key)).returncode == 0
    rc, doc = _verify("--db", db, "--key", str(key))
    assert (rc, doc["ok"], doc["code"]) == (0, True, None)


def test_the_log_cut_below_the_record_is_tail_removed(keyed: tuple[str, Path, Path]) -> None:
    db, key, _ = keyed
    _two_checkpoints(db, key)
    for statement in (
        "DELETE FROM ledger_checkpoints WHERE size = 7",
        "DELETE FROM ledger WHERE seq > 5",
        "DELETE FROM ledger_nodes WHERE (level = 0 AND idx > 4) OR (level = 1 AND idx > 1) "
        "OR level > 2",
        "UPDATE ledger_head SET seq = 5, hash = (SELECT hash FROM ledger WHERE seq = 5)",
    ):
        sql(db, statement)
    rc, doc = _verify("--db", db, "--key", str(key))
    assert (rc, doc["ok"], doc["code"], doc["first_bad"]) == (1, False, "tail-removed", 6)


def test_an_unreadable_record_is_a_note_not_a_verdict(keyed: tuple[str, Path, Path]) -> None:
    db, key, _ = keyed
    before = _verify("--db", db, "--key", str(key))[1]["notes"]
    Path(os.environ["STRAITS_LEDGER_SIGNED"]).write_text("not a checkpoint\n")  # conftest
    rc, doc = _verify("--db", db, "--key", str(key))
    assert (rc, doc["ok"]) == (0, True)
    assert len(doc["notes"]) == len(before) + 1  # type: ignore[arg-type]


# --- the tampered-database pass: what it found -----------------------------------------------
@pytest.fixture(scope="module")
def plan(rules: RuleSet, example_path: Path) -> Plan:
    return make_plan(load_scenario(example_path), rules=rules, solver="greedy")


def test_a_plan_rows_actor_edited_is_found(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path
) -> None:
    """The plan row's actor is its entry's, as a decision row's is (it passed every check)."""
    store = Store(db_url)
    plan_id, entry = record_plan(
        store, load_scenario(example_path), plan, rules, {}, tenant="a", actor="alice"
    )
    store.close()
    sql(db_url, "UPDATE plans SET actor = 'mallory' WHERE id = :i", i=plan_id)
    rc, doc = _verify("--db", db_url)
    assert (rc, doc["ok"], doc["code"], doc["first_bad"]) == (1, False, "plan-row", entry.seq)
    rc, doc = _verify("--db", db_url, "--tenant", "a")
    assert (rc, doc["ok"], doc["code"]) == (1, False, "plan-row")


def test_the_quick_check_finds_the_latest_checkpoints_size_lowered(
    keyed: tuple[str, Path, Path],
) -> None:
    """Lowered below an older checkpoint's, the newest row was passed over by the quick check
    (it read the latest by size only; issuing reads by size and by row id)."""
    db, key, pub = keyed
    _two_checkpoints(db, key)
    sql(db, "UPDATE ledger_checkpoints SET size = 2 WHERE size = 7")
    rc, doc = _verify("--db", db, "--pubkey", str(pub), "--quick")
    assert (rc, doc["ok"], doc["code"]) == (1, False, "checkpoint-untrusted")


def test_a_server_with_the_key_finds_the_newest_checkpoint_deleted(
    keyed: tuple[str, Path, Path],
) -> None:
    """``GET /v1/ledger/verify`` (an admin's full check) reads the key's record as the CLI."""
    db, key, _ = keyed
    _two_checkpoints(db, key)
    sql(db, "DELETE FROM ledger_checkpoints WHERE size = 7")
    store = Store(db)
    admin, _ = create_token(store, "ops", "admin")
    app = create_app(store, settings=Settings())
    app.state.ledger_keys = Keys(SIGNER, (), Path(os.environ["STRAITS_LEDGER_SIGNED"]))
    with TestClient(app) as client:
        r = client.get("/v1/ledger/verify", headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200 and (r.json()["ok"], r.json()["code"]) == (
            False,
            "checkpoint-missing",
        )
    store.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_checkpoints SET size = x'ff00'",
        "UPDATE ledger_checkpoints SET created_at = 'garbage'",
        "UPDATE ledger_head SET seq = 'zz'",
    ],
    ids=["size", "created_at", "head"],
)
def test_the_quick_check_reports_a_value_of_another_type(
    keyed: tuple[str, Path, Path], statement: str
) -> None:
    """As the full check does (it printed an error line, with nothing on stdout for -o json)."""
    db, _, pub = keyed
    if not db.startswith("sqlite"):
        pytest.skip("only SQLite keeps a value of another type in a column")
    sql(db, statement)
    for options in ((), ("--quick",)):
        rc, doc = _verify("--db", db, "--pubkey", str(pub), *options)
        assert (rc, doc["ok"], doc["code"]) == (1, False, "value-altered"), options
