"""The audit ledger: tampering is named, concurrent appends keep one chain, a process killed
mid-append leaves no half entry; the CLI's ledger, --record and tokens commands."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from straits.loading import load_scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from straits.store import Store, ledger
from straits.store.ledger import GENESIS, Entry, append, canonical, digest, verify_chain
from straits.store.records import record_check, record_plan
from straits.store.tables import Base
from test_ledger_cli import straits
from test_rules_engine import DESIGN_REQUEST


def fill(store: Store, n: int = 5) -> None:
    for i in range(n):
        ledger.record(
            store,
            tenant="t" if i % 2 else "u",
            actor="test",
            kind="check",
            body={"i": i, "note": "ünïcode"},
        )


def sql(url: str, statement: str, **params: object) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def _swap(url: str, a: int, b: int) -> None:
    sql(url, "UPDATE ledger SET seq = 100 WHERE seq = :a", a=a)
    sql(url, "UPDATE ledger SET seq = :a WHERE seq = :b", a=a, b=b)
    sql(url, "UPDATE ledger SET seq = :b WHERE seq = 100", b=b)


# --- the chain -----------------------------------------------------------------------------------
def test_untouched_ledger_verifies(db_url: str) -> None:
    store = Store(db_url)
    assert ledger.verify(store).ok  # empty
    fill(store)
    v = ledger.verify(store)
    assert v.ok and v.entries == 5 and v.head_seq == 5
    chain = list(ledger.entries(store))
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5]
    assert chain[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert v.head_hash == chain[-1].hash


def _rehash(url: str, seq: int) -> None:
    """What a careful forger does: change entry ``seq`` and recompute its own hash."""
    store = Store(url)
    e = ledger.get_entry(store, seq)
    assert e is not None
    forged = Entry(**{**e.__dict__, "body": canonical({"i": 999})})
    sql(
        url,
        "UPDATE ledger SET body = :b, hash = :h WHERE seq = :s",
        b=forged.body,
        h=forged.expected_hash(),
        s=seq,
    )


TAMPERING: list[tuple[str, Callable[[str], None], int, str]] = [
    (
        "body changed",
        lambda u: sql(u, "UPDATE ledger SET body = :b WHERE seq = 3", b='{"i":7}'),
        3,
        "altered",
    ),
    (
        "tenant changed",
        lambda u: sql(u, "UPDATE ledger SET tenant = 'x' WHERE seq = 2"),
        2,
        "altered",
    ),
    (
        "time changed",
        lambda u: sql(u, "UPDATE ledger SET recorded_at = '2020-01-01' WHERE seq = 4"),
        4,
        "altered",
    ),
    ("entry deleted", lambda u: sql(u, "DELETE FROM ledger WHERE seq = 3"), 3, "removed"),
    ("last entry deleted", lambda u: sql(u, "DELETE FROM ledger WHERE seq = 5"), 5, "removed"),
    ("entries swapped", lambda u: _swap(u, 2, 3), 2, "altered"),
    ("altered and re-hashed", lambda u: _rehash(u, 2), 2, "re-hashed"),
    ("first entry replaced", lambda u: _rehash(u, 1), 1, "re-hashed"),
]


@pytest.mark.parametrize(
    ("what", "tamper", "first_bad", "word"), TAMPERING, ids=[t[0] for t in TAMPERING]
)
def test_tampering_is_found_and_named(
    db_url: str, what: str, tamper: Callable[[str], None], first_bad: int, word: str
) -> None:
    fill(Store(db_url))
    tamper(db_url)
    v = ledger.verify(Store(db_url))
    assert not v.ok, what
    assert v.first_bad == first_bad, v.problem
    assert word in (v.problem or ""), v.problem
    assert f"entr{'y' if word != 'removed' or first_bad != 5 else 'ies'} {first_bad}" in (
        v.problem or ""
    )


def test_ledger_verify_cli_names_the_entry(db_url: str) -> None:
    fill(Store(db_url))
    ok = straits("ledger", "verify", "--db", db_url)
    assert ok.returncode == 0 and "ledger verifies" in ok.stdout
    sql(db_url, "UPDATE ledger SET actor = 'mallory' WHERE seq = 4")
    bad = straits("ledger", "verify", "--db", db_url, "--json")
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["first_bad"] == 4
    human = straits("ledger", "verify", "--db", db_url)
    assert "entry 4" in " ".join(human.stdout.split())


def test_export_verifies_offline_and_catches_edits(db_url: str, tmp_path: Path) -> None:
    fill(Store(db_url))
    out = tmp_path / "ledger.jsonl"
    p = straits("ledger", "export", "--db", db_url, "-o", str(out))
    assert p.returncode == 0, p.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 5
    assert verify_chain(Entry.from_json(json.loads(x)) for x in lines).ok
    ok = straits("ledger", "verify", "--file", str(out), "--json")
    assert ok.returncode == 0, ok.stdout
    head = "{head_seq}:{head_hash}".format(**json.loads(ok.stdout))
    truncated = tmp_path / "short.jsonl"
    truncated.write_text("\n".join(lines[:4]) + "\n")
    assert straits("ledger", "verify", "--file", str(truncated)).returncode == 0  # no head
    cut = straits("ledger", "verify", "--file", str(truncated), "--head", head)
    assert cut.returncode == 1 and "removed from the end" in " ".join(cut.stdout.split())
    doc = json.loads(lines[1])
    doc["actor"] = "someone else"
    lines[1] = json.dumps(doc)
    out.write_text("\n".join(lines) + "\n")
    bad = straits("ledger", "verify", "--file", str(out), "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["first_bad"] == 2


# --- concurrency and crashes ---------------------------------------------------------------------
APPENDER = textwrap.dedent("""
    import sys
    from straits.store import Store, ledger
    store = Store(sys.argv[1])
    for i in range(int(sys.argv[3])):
        ledger.record(store, tenant=sys.argv[2], actor="proc", kind="check", body={"i": i})
""")


def test_concurrent_appends_from_processes_keep_one_chain(db_url: str) -> None:
    Store(db_url)  # migrated once; the processes below also race to open it
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, db_url, f"p{k}", "25"]) for k in range(4)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    store = Store(db_url)
    v = ledger.verify(store)
    assert v.ok, v.problem
    assert v.entries == 100
    assert {ledger.count(store, f"p{k}") for k in range(4)} == {25}


KILLED = textwrap.dedent("""
    import sys, time
    from straits.store import Store
    from straits.store.ledger import append
    store = Store(sys.argv[1])
    def hang(entry):
        print("appending", entry.seq, flush=True)
        time.sleep(120)
    with store.write() as s:
        append(s, tenant="t", actor="doomed", kind="check", body={"half": True},
               before_commit=hang)
""")


def test_a_process_killed_mid_append_leaves_no_half_entry(db_url: str) -> None:
    store = Store(db_url)
    fill(store, 3)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, db_url], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().split() == ["appending", "4"]  # written, not committed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    v = ledger.verify(store)
    assert v.ok and v.entries == 3
    assert not [e for e in ledger.entries(store) if e.actor == "doomed"]
    ledger.record(store, tenant="t", actor="after", kind="check", body={})  # lock released
    v = ledger.verify(store)
    assert v.ok and v.entries == 4


def test_a_failed_append_rolls_back_everything(db_url: str) -> None:
    store = Store(db_url)
    fill(store, 2)

    def boom(_: Entry) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError), store.write() as s:
        append(s, tenant="t", actor="x", kind="check", body={}, before_commit=boom)
    assert ledger.verify(store).entries == 2
    assert ledger.head(store) == (2, list(ledger.entries(store))[-1].hash)


# --- what is recorded ----------------------------------------------------------------------------
def test_recorded_check_holds_inputs_rules_and_answer(db_url: str, rules: RuleSet) -> None:
    from straits.api import check_json, parse_check_document

    store = Store(db_url)
    reqs, was_list = parse_check_document(DESIGN_REQUEST, "test")
    answer = check_json(rules, reqs, was_list)
    e = record_check(store, rules, reqs, answer, tenant="kunlun", actor="alice")
    body = e.content
    assert body["inputs_digest"] == digest(body["inputs"])
    assert body["result"] == answer
    assert body["rules"]["digest"] == rules.digest
    assert {p["name"] for p in body["rules"]["packs"]} == {p.name for p in rules.packs}
    assert all(p["version"] and len(p["digest"]) == 64 for p in body["rules"]["packs"])
    assert body["date"] == DESIGN_REQUEST["date"] and body["regime"] == "enacted"
    assert (e.tenant, e.actor, e.kind) == ("kunlun", "alice", "check")


def test_recorded_plan_points_to_its_stored_scenario(
    db_url: str, rules: RuleSet, example_path: Path
) -> None:
    store = Store(db_url)
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, solver="greedy")
    plan_id, e = record_plan(
        store, sc, plan, rules, {"solver": "greedy"}, tenant="hz-cloud", actor="bob"
    )
    body = e.content
    assert body["result"]["plan_id"] == plan_id
    assert body["result"]["plan"]["total_cost_usd"] == round(plan.total_cost_usd, 2)
    assert body["date"] == sc.date.isoformat()
    assert ledger.verify(store).ok
    sql(db_url, "UPDATE scenarios SET body = replace(body, 'hz-cloud', 'hz-c1oud')")
    v = ledger.verify(Store(db_url))
    assert not v.ok and v.first_bad == e.seq and "scenario" in (v.problem or "")


def test_cli_records_checks_and_plans(tmp_path: Path, example_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    p = straits(
        "check",
        "--json",
        "--record",
        "--tenant",
        "kunlun",
        "--db",
        db,
        stdin=json.dumps(DESIGN_REQUEST),
    )
    assert p.returncode == 0, p.stderr
    assert "ledger entry 1" in p.stderr
    q = straits(
        "plan",
        str(example_path),
        "--json",
        "--solver",
        "greedy",
        "--record",
        "--actor",
        "ci",
        "--db",
        db,
    )
    assert q.returncode == 0, q.stderr
    shown = straits("ledger", "show", "--db", db, "--json")
    entries = json.loads(shown.stdout)
    assert [(e["seq"], e["kind"], e["tenant"]) for e in entries] == [
        (1, "check", "kunlun"),
        (2, "plan", "hz-cloud"),
    ]
    assert entries[1]["actor"] == "ci"
    # the ledger holds the plan contract; the CLI prints it as a document (id, inputs, ...)
    from straits.plandoc import plan_body

    doc = json.loads(q.stdout)
    assert entries[1]["body"]["result"]["plan"] == plan_body(doc)
    assert entries[1]["body"]["result"]["plan_id"] == doc["id"]
    table = straits("ledger", "show", "--db", db)
    assert "plan" in table.stdout and "check" in table.stdout


# --- schema --------------------------------------------------------------------------------------
def test_migrations_create_exactly_the_models(db_url: str) -> None:
    store = Store(db_url)
    names = set(inspect(store.engine).get_table_names())
    assert set(Base.metadata.tables) <= names
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migration_0005_indexes_the_ledger_seq_columns(tmp_path: Path) -> None:
    """A database at 0004 with rows upgrades to the models' schema (the two indexes the verify
    joins use) and downgrades back without them."""
    from importlib import resources

    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("straits.store").joinpath("migrations"))
    )
    engine = create_engine(url)

    def to(revision: str, down: bool = False) -> set[str]:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)
        found = inspect(engine)
        return {str(i["name"]) for t in ("plans", "decisions") for i in found.get_indexes(t)}

    assert "ix_decisions_ledger_seq" not in to("0004")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO decisions (tenant, actor, request, answer, ledger_seq, created_at) "
            "VALUES ('t', 'a', '{}', '{}', 1, '2026-01-01')"
        )
    assert {"ix_decisions_ledger_seq", "ix_plans_ledger_seq"} <= to("head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert not {"ix_decisions_ledger_seq", "ix_plans_ledger_seq"} & to("0004", down=True)
    engine.dispose()


def test_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    p = straits("ledger", "verify", "--db", "nosuchdb://x")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "database URL" in p.stderr
    q = straits("ledger", "verify", "--db", f"sqlite:///{tmp_path}/missing/dir/x.db")
    assert q.returncode == 1 and "Traceback" not in q.stderr
    assert "cannot open the database" in q.stderr
