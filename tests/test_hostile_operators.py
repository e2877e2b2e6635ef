"""Faults and hostile operators: an altered or odd database (a hostile config file, environment
variables set to garbage, rule packs holding FIFOs and devices and key files that are pipes are
test_hostile_settings.py's). Every case ends in a clear error
(exit 2 for bad input, 1 for a database that cannot be used or a ledger that does not verify),
a 409 rather than a 500 on the API, and nothing half-written: never a traceback or a hang.
(docs/robustness.md, "Faults and operators".)"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from straits.errors import LedgerError, StraitsError
from straits.loading import load_scenario
from straits.store import Store, checkpoints
from straits.store import ledger as ledger_mod
from straits.store.keys import Keys
from straits.store.note import Signer
from straits.store.tables import AlteredRowError, PlanRow

ROOT = Path(__file__).resolve().parents[1]
REQUEST = (ROOT / "examples" / "request.json").read_text()
PACK = ROOT / "examples" / "rule-packs" / "h20-letter" / "after"


def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
    """The CLI in this process, as `straits.cli.main` runs it (a StraitsError that escapes a
    command is its exit status); any other exception escapes the test: a traceback."""
    import typer
    from click.testing import CliRunner

    from straits.cli import app
    from straits.cli.common import state

    state._config = None  # the config is read once per process: once per case here
    r = CliRunner(mix_stderr=False).invoke(typer.main.get_command(app), list(args), input=stdin)
    if isinstance(r.exception, StraitsError):
        return r.exception.exit_code, str(r.exception)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stderr


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Path]:
    """A SQLite ledger of three check entries."""
    path = tmp_path / "s.db"
    for _ in range(3):
        assert cli("check", "--record", "--db", f"sqlite:///{path}", stdin=REQUEST)[0] == 0
    yield path


def alter(path: Path, *statements: str) -> None:
    con = sqlite3.connect(path)
    for s in statements:
        con.execute(s)
    con.commit()
    con.close()


def entries(path: Path) -> int:
    con = sqlite3.connect(path)
    n = int(con.execute("SELECT count(*) FROM ledger").fetchone()[0])
    con.close()
    return n


# --- the database ---------------------------------------------------------------------------------
UNOPENABLE = [
    ("schema of a newer Straits", "UPDATE alembic_version SET version_num='0099'"),
    ("schema revision emptied", "UPDATE alembic_version SET version_num=''"),
    ("a table dropped", "DROP TABLE ledger_nodes"),
    ("the ledger dropped", "DROP TABLE ledger"),
]


@pytest.mark.parametrize("statement", [c[1] for c in UNOPENABLE], ids=[c[0] for c in UNOPENABLE])
@pytest.mark.parametrize("command", ["verify", "record"])
def test_a_database_this_straits_cannot_use_is_refused_at_open(
    recorded: Path, statement: str, command: str
) -> None:
    alter(recorded, statement)
    db = f"sqlite:///{recorded}"
    argv = (
        ("ledger", "verify", "--db", db)
        if command == "verify"
        else ("check", "--record", "--db", db)
    )
    code, err = cli(*argv, stdin=REQUEST)
    assert code == 1 and "cannot open the database" in err


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "junk.db"
    bad.write_bytes(bytes(range(256)) * 20)
    code, err = cli("ledger", "verify", "--db", f"sqlite:///{bad}")
    assert code == 1 and "cannot open the database" in err
    assert bad.read_bytes() == bytes(range(256)) * 20  # nothing written


HEADS = [
    ("head row deleted", "DELETE FROM ledger_head"),
    (
        "head rewound one entry",
        "UPDATE ledger_head SET seq=1, hash=(SELECT hash FROM ledger WHERE seq=1)",
    ),
    ("head advanced past the log", "UPDATE ledger_head SET seq=9"),
    ("head re-hashed", "UPDATE ledger_head SET hash='00'"),
    ("last entry deleted, head kept", "DELETE FROM ledger WHERE seq=3"),
]


@pytest.mark.parametrize("statement", [c[1] for c in HEADS], ids=[c[0] for c in HEADS])
def test_no_entry_is_appended_to_a_log_whose_head_was_altered(
    recorded: Path, statement: str
) -> None:
    alter(recorded, statement)
    before = entries(recorded)
    code, _ = cli("check", "--record", "--db", f"sqlite:///{recorded}", stdin=REQUEST)
    assert code == 1
    assert entries(recorded) == before
    assert cli("ledger", "verify", "--db", f"sqlite:///{recorded}")[0] == 1


def test_the_append_refuses_with_a_ledger_error_naming_the_last_entry(recorded: Path) -> None:
    alter(recorded, "UPDATE ledger_head SET hash='00'")
    with pytest.raises(LedgerError) as caught:
        ledger_mod.record(
            Store(f"sqlite:///{recorded}"), tenant="t", actor="a", kind="check", body={}
        )
    assert caught.value.seq == 3


@pytest.mark.parametrize("node", ["level=0 AND idx=0", "level=0 AND idx=2", "level=1 AND idx=0"])
def test_a_tree_node_that_is_not_a_hash_fails_verification(recorded: Path, node: str) -> None:
    alter(recorded, f"UPDATE ledger_nodes SET hash='zz' WHERE {node}")
    assert cli("ledger", "verify", "--db", f"sqlite:///{recorded}")[0] == 1


@pytest.mark.parametrize(
    "statement", ["DELETE FROM ledger_nodes", "UPDATE ledger_nodes SET hash=x'00'"]
)
def test_a_consistency_proof_from_a_damaged_tree_is_exit_1(
    recorded: Path, tmp_path: Path, statement: str
) -> None:
    """`ledger checkpoint --since` read the proof's nodes without catching their damage: a
    MissingNodeError traceback."""
    key, db = tmp_path / "k", f"sqlite:///{recorded}"
    assert cli("ledger", "keygen", "--origin", "straits.test/ops", "-o", str(key))[0] == 0
    assert cli("ledger", "checkpoint", "--key", str(key), "--db", db)[0] == 0
    alter(recorded, statement)
    code, err = cli("ledger", "checkpoint", "--key", str(key), "--db", db, "--since", "1")
    assert code == 1 and "Traceback" not in err, err


ALTERED_ROWS = [
    "UPDATE plans SET created_at='garbage'",
    "UPDATE plans SET finished_at='2025-13-45'",
    "UPDATE plans SET ledger_seq='one'",
    "UPDATE ledger SET tenant_seq='zz' WHERE seq=1",
    "UPDATE decisions SET created_at='x'",
    "UPDATE ledger_checkpoints SET created_at='x'",
    # SQLite keeps a BLOB in a TEXT column: bytes where Straits reads text (500s on every proven
    # read, the full verify, the receipt and the next append)
    "UPDATE ledger SET body=x'ff00' WHERE seq=1",
    "UPDATE ledger SET body=CAST(body AS BLOB) WHERE seq=2",
    "UPDATE ledger SET salt=x'00' WHERE seq=1",
    # TEXT that is not UTF-8 (SQLite keeps the bytes): the driver's decode failed the whole
    # read, taken for a database gone (503 with Retry-After; the CLI's 'unavailable')
    "UPDATE ledger SET body=CAST(x'7bff00' AS TEXT) WHERE seq=1",
    "UPDATE ledger SET actor=CAST(x'ff' AS TEXT) WHERE seq=2",
    "UPDATE plans SET status=CAST(x'c3' AS TEXT)",
    "UPDATE ledger_checkpoints SET note=CAST(x'ff' AS TEXT)",
    "UPDATE ledger_nodes SET hash=x'00ff' WHERE level=0 AND idx=0",
    # tree rows the proof routes need, gone or not hashes (500s on /checkpoint?since and
    # /consistency, which served the stored tree without catching its damage)
    "DELETE FROM ledger_nodes",
    "UPDATE ledger_nodes SET hash='zz'",
    # BLOBs in the rows beside the log (500s on the plan list, the plan, its cancel)
    "UPDATE plans SET status=x'ff'",
    "UPDATE plans SET error=x'ff'",
    "UPDATE scenarios SET name=x'ff'",
    "UPDATE decisions SET answer=x'ff'",
]


@pytest.mark.parametrize("statement", ALTERED_ROWS)
def test_a_stored_value_straits_never_writes_is_a_409_not_a_500(
    tmp_path: Path, example_path: Path, statement: str
) -> None:
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token

    db = tmp_path / "api.db"
    url = f"sqlite:///{db}"
    assert (
        cli(
            "plan", str(example_path), "--record", "--solver", "greedy", "--db", url, "-q", "--json"
        )[0]
        == 0
    )
    assert cli("check", "--record", "--db", url, stdin=REQUEST)[0] == 0
    signer = Signer.generate("straits.test/operators")
    checkpoints.issue(Store(url), signer)
    alter(db, statement)
    store = Store(url)
    tenant = sqlite3.connect(db).execute("SELECT tenant FROM plans").fetchone()[0]
    app = create_app(store)
    app.state.ledger_keys = Keys(signer)
    with TestClient(app, raise_server_exceptions=False) as client:
        plan_id = sqlite3.connect(db).execute("SELECT id FROM plans").fetchone()[0]
        for role_tenant, role in ((tenant, "admin"), (tenant, "planner")):
            h = {"Authorization": f"Bearer {create_token(store, role_tenant, role)[0]}"}
            for path in (
                f"/v1/plans/{plan_id}",
                f"/v1/plans/{plan_id}/plan",
                "/v1/plans",
                "/v1/ledger/entries",
                "/v1/ledger/entries/1",
                "/v1/ledger/entries/2",
                "/v1/ledger/entries/1/receipt",
                "/v1/ledger/verify",
                "/v1/ledger/verify?quick=true",
                "/v1/ledger/checkpoint?since=1",
                "/v1/ledger/consistency?first=1&second=2",
                "/v1/ledger/checkpoint?fresh=true",
            ):
                r = client.get(path, headers=h)
                assert r.status_code < 500, (role, path, r.status_code)
                if r.status_code >= 400:
                    assert r.headers["content-type"].startswith("application/problem+json")
            r = client.delete(f"/v1/plans/{plan_id}", headers=h)
            assert r.status_code < 500, (role, "DELETE", r.status_code)
            r = client.post("/v1/check?record=true", headers=h, content=REQUEST)
            assert r.status_code < 500, (role, r.status_code)
            if r.status_code >= 400:
                assert r.headers["content-type"].startswith("application/problem+json")
    store.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE tokens SET role='root'",
        "UPDATE tokens SET role=x'ff'",
        "UPDATE tokens SET secret_hash=CAST(secret_hash AS BLOB)",
        "UPDATE tokens SET tenant=x'ff'",
    ],
)
def test_a_token_row_straits_never_writes_is_a_401_not_a_500(
    tmp_path: Path, statement: str
) -> None:
    """A role no Straits writes failed ranking it against the route's role (ValueError, a
    500 on every planner route); a BLOB secret hash failed the constant-time compare."""
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token

    db = tmp_path / "t.db"
    store = Store(f"sqlite:///{db}")
    token = create_token(store, "t", "planner")[0]
    alter(db, statement)
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        h = {"Authorization": f"Bearer {token}"}
        for r in (
            client.get("/v1/plans", headers=h),
            client.post("/v1/check?record=true", headers=h, content=REQUEST),
            client.delete("/v1/plans/abcd", headers=h),
        ):
            assert r.status_code == 401, (r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    store.close()


def test_an_unreadable_job_is_failed_and_the_queue_moves_on(
    tmp_path: Path, example_path: Path
) -> None:
    """A queued job whose row holds a time no Straits writes was first in line forever: every
    claim raised on it, so no worker took the jobs behind it."""
    from straits.store import queue

    store = Store(f"sqlite:///{tmp_path / 'q.db'}")
    sc = load_scenario(example_path)
    policy = queue.QueuePolicy(lease_s=30, max_attempts=3, queue_timeout_s=3600)
    first = queue.enqueue(
        store, sc, {"solver": "greedy"}, tenant="t", actor="a", record=False, rules_digest=None
    )
    second = queue.enqueue(
        store,
        sc.model_copy(update={"name": "other"}),
        {"solver": "greedy"},
        tenant="t",
        actor="a",
        record=False,
        rules_digest=None,
    )
    running = queue.enqueue(
        store,
        sc.model_copy(update={"name": "third"}),
        {"solver": "greedy"},
        tenant="t",
        actor="a",
        record=False,
        rules_digest=None,
    )
    db = tmp_path / "q.db"
    alter(
        db,
        f"UPDATE plans SET attempts='x' WHERE id='{first}'",
        f"UPDATE plans SET status='running', lease_until='soon' WHERE id='{running}'",
    )
    claim = queue.claim(store, "w:1:x", None, policy)
    assert claim is not None and claim.plan_id == second
    reaped = queue.reap(store, policy)
    assert running in reaped.failed
    rows = dict(sqlite3.connect(db).execute("SELECT id, status FROM plans").fetchall())
    assert rows[first] == "failed" and rows[running] == "failed"
    # reading the row itself still says what is wrong
    with store.session() as s, pytest.raises(AlteredRowError):
        s.get(PlanRow, first)
