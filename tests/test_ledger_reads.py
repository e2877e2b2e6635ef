"""Reads of recorded plans and decisions are proven, on SQLite and PostgreSQL: an altered copy
of a plan (its result, tenant, entry number) or a decision is refused naming its entry, by every
read, export and impact; reads are anchored to the latest signed checkpoint, and a forged one
beyond the log is named as forged. Split from test_ledger_log.py, whose helpers it uses."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from straits.errors import LedgerError
from straits.loading import load_scenario
from straits.plan import Plan, make_plan
from straits.rules import RuleSet
from straits.store import Store, checkpoints
from straits.store.integrity import verify_store
from straits.store.keys import Keys
from straits.store.ledger import canonical
from straits.store.note import Checkpoint, Signer, sign_checkpoint
from straits.store.proven import prove_entry
from straits.store.records import (
    find_plan,
    get_plan,
    proven_job_json,
    record_check,
    record_plan,
)
from test_ledger_cli import straits
from test_ledger_log import ORIGIN, _rewrite_everything, fill, sql
from test_rules_engine import DESIGN_REQUEST


@pytest.fixture(scope="module")
def plan(rules: RuleSet, example_path: Path) -> Plan:
    return make_plan(load_scenario(example_path), rules=rules, solver="greedy")


# --- verified reads ------------------------------------------------------------------------------
def _recorded(db_url: str, rules: RuleSet, plan: Plan, example_path: Path) -> tuple[str, int]:
    store = Store(db_url)
    sc = load_scenario(example_path)
    fill(store, 2)
    plan_id, entry = record_plan(
        store, sc, plan, rules, {"solver": "greedy"}, tenant="hz-cloud", actor="t"
    )
    fill(store, 2)
    return plan_id, entry.seq


def _moved_clusters(url: str, plan_id: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        result = json.loads(
            conn.execute(text("SELECT result FROM plans WHERE id=:i"), {"i": plan_id}).scalar_one()
        )
        a = result["assignments"][0]
        a["site"], a["chips"] = "elsewhere", a["chips"] * 2
        conn.execute(
            text("UPDATE plans SET result=:r WHERE id=:i"), {"r": canonical(result), "i": plan_id}
        )
    engine.dispose()


PLAN_TAMPER: list[tuple[str, Callable[[str, str, int], None], str]] = [
    ("result altered", lambda u, p, s: _moved_clusters(u, p), "stored result differs"),
    (
        "tenant altered",
        lambda u, p, s: sql(u, "UPDATE plans SET tenant='rival' WHERE id=:i", i=p),
        "stored tenant",
    ),
    (
        "ledger_seq moved",
        lambda u, p, s: sql(u, "UPDATE plans SET ledger_seq=1 WHERE id=:i", i=p),
        "not a plan",
    ),
    (
        "entry body altered",
        lambda u, p, s: sql(
            u,
            "UPDATE ledger SET body=replace(body, :a, :b) WHERE seq=:s",
            s=s,
            a='"total_cost_usd":',
            b='"total_cost_usd":9',
        ),
        "Merkle leaf",
    ),
    (
        "options altered",
        lambda u, p, s: sql(
            u, "UPDATE plans SET options=:o WHERE id=:i", o='{"solver":"cpsat"}', i=p
        ),
        "stored options",
    ),
    (
        "status altered",
        lambda u, p, s: sql(u, "UPDATE plans SET status='failed', error='x' WHERE id=:i", i=p),
        "stored status",
    ),
    (
        "scenario altered",
        lambda u, p, s: sql(u, "UPDATE scenarios SET body=replace(body, 'hz-cloud', 'hz-c1oud')"),
        "scenario",
    ),
]


@pytest.mark.parametrize(("what", "tamper", "word"), PLAN_TAMPER, ids=[t[0] for t in PLAN_TAMPER])
def test_an_altered_plan_is_refused_naming_its_entry(
    db_url: str,
    rules: RuleSet,
    plan: Plan,
    example_path: Path,
    what: str,
    tamper: Callable[[str, str, int], None],
    word: str,
) -> None:
    plan_id, seq = _recorded(db_url, rules, plan, example_path)
    rec = find_plan(Store(db_url), plan_id)
    assert rec.plan == plan.to_json() and rec.ledger_seq == seq
    tamper(db_url, plan_id, seq)
    with pytest.raises(LedgerError) as err:
        find_plan(Store(db_url), plan_id)
    assert word in str(err.value)
    assert err.value.seq in (seq, 1)
    row = get_plan(Store(db_url), plan_id)  # the API's view of the job, whatever its state
    assert row is not None
    with pytest.raises(LedgerError):
        proven_job_json(Store(db_url), row, tenant_view=True)
    v = verify_store(Store(db_url), Keys())
    assert not v.ok and v.first_bad in (seq, 1), v.problem


def test_export_and_impact_refuse_an_altered_plan(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path, tmp_path: Path
) -> None:
    plan_id, seq = _recorded(db_url, rules, plan, example_path)
    _moved_clusters(db_url, plan_id)
    for args in (
        ("export", plan_id[:8], "--to", "skypilot", "-o", str(tmp_path / "out")),
        ("impact", "--plan", plan_id[:8], "--date", "2025-07-01", "--no-replan"),
    ):
        p = straits(*args, "--db", db_url)
        assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
        assert f"ledger entry {seq}" in " ".join(p.stderr.split())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("column", "value", "word"),
    [
        ("answer", '{"decision":"allow","requires":[],"reasons":[],"warnings":[]}', "answer"),
        ("request", '{"requests":[]}', "request"),
        ("tenant", "rival", "tenant"),
    ],
)
def test_an_altered_decision_is_found(
    db_url: str, rules: RuleSet, column: str, value: str, word: str
) -> None:
    from straits.api import check_json, parse_check_document

    store = Store(db_url)
    reqs, was_list = parse_check_document(DESIGN_REQUEST, "test")
    e = record_check(
        store, rules, reqs, check_json(rules, reqs, was_list), tenant="kunlun", actor="alice"
    )
    assert verify_store(store, Keys()).ok
    sql(db_url, f"UPDATE decisions SET {column} = :v", v=value)
    v = verify_store(Store(db_url), Keys())
    assert not v.ok and v.first_bad == e.seq and word in (v.problem or ""), v.problem


@pytest.mark.parametrize("decision_first", [True, False])
def test_with_plans_and_decisions_altered_the_first_entry_is_named(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path, decision_first: bool
) -> None:
    from straits.api import check_json, parse_check_document

    store = Store(db_url)
    reqs, was_list = parse_check_document(DESIGN_REQUEST, "test")

    def check() -> int:
        return record_check(
            store, rules, reqs, check_json(rules, reqs, was_list), tenant="kunlun", actor="alice"
        ).seq

    if decision_first:
        first = check()
        plan_id, _ = _recorded(db_url, rules, plan, example_path)
    else:
        plan_id, first = _recorded(db_url, rules, plan, example_path)
        check()
    _moved_clusters(db_url, plan_id)
    sql(db_url, "UPDATE decisions SET tenant = 'rival'")
    v = verify_store(Store(db_url), Keys())
    assert not v.ok and v.first_bad == first, (v.first_bad, v.problem)


def test_reads_are_anchored_to_the_signed_checkpoint(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path, keys: Keys
) -> None:
    plan_id, seq = _recorded(db_url, rules, plan, example_path)
    store = Store(db_url)
    assert keys.signer is not None
    checkpoints.issue(store, keys.signer)
    assert prove_entry(store, seq, keys).signed
    _rewrite_everything(db_url, 1)  # consistent chain and tree, but not what was signed
    with pytest.raises(LedgerError, match="rewritten"):
        prove_entry(Store(db_url), seq, keys)
    with pytest.raises(LedgerError):
        find_plan(Store(db_url), plan_id)  # configured keys come from the environment


def test_a_forged_checkpoint_beyond_the_log_is_named_as_forged(db_url: str, keys: Keys) -> None:
    """A row claiming a size the log never reached, signed by no trusted key, is reported as
    untrustworthy, not as entries removed from the log (which blamed the log's history)."""
    store = Store(db_url)
    fill(store, 3)
    assert keys.signer is not None
    checkpoints.issue(store, keys.signer)
    other = Signer.generate(ORIGIN)
    root = hashlib.sha256(b"x").digest()
    sql(
        db_url,
        "INSERT INTO ledger_checkpoints (size, root, origin, key_id, note, created_at) "
        "VALUES (1000000, :r, :o, :k, :n, '2026-12-01T00:00:00+00:00')",
        r=root.hex(),
        o=ORIGIN,
        k=f"{other.verifier.id:08x}",
        n=sign_checkpoint(Checkpoint(ORIGIN, 1000000, root), other),
    )
    with pytest.raises(LedgerError, match="not trustworthy"):
        checkpoints.issue(Store(db_url), keys.signer)
