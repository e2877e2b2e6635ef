"""Tampering with the rows beside the log: a plan or decision row detached from its entry
(its ledger_seq cleared, the row deleted or renamed) is found by `ledger verify`; a plan marked
for recording but detached from its entry is refused by every read; and migration 0004 marks
plans finished unrecorded before 0003 as such, so they are not taken for detached ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from straits.errors import LedgerError, NotFoundError
from straits.loading import load_scenario
from straits.plan import Plan, make_plan
from straits.rules import RuleSet
from straits.server.routes import plan_document
from straits.store import Store
from straits.store.integrity import verify_store
from straits.store.keys import Keys
from straits.store.records import find_plan, get_plan, proven_job_json, record_plan
from test_ledger_log import fill, sql
from test_ledger_reads import _moved_clusters


@pytest.fixture(scope="module")
def plan(rules: RuleSet, example_path: Path) -> Plan:
    return make_plan(load_scenario(example_path), rules=rules, solver="greedy")


def _recorded(db_url: str, rules: RuleSet, plan: Plan, example_path: Path) -> tuple[str, int]:
    store = Store(db_url)
    fill(store, 2)
    plan_id, entry = record_plan(
        store,
        load_scenario(example_path),
        plan,
        rules,
        {"solver": "greedy"},
        tenant="hz-cloud",
        actor="t",
    )
    fill(store, 2)
    return plan_id, entry.seq


def _detach(u: str, p: str) -> None:
    _moved_clusters(u, p)
    sql(u, "UPDATE plans SET ledger_seq=NULL, record=:f WHERE id=:i", i=p, f=False)


DETACH: list[tuple[str, Callable[[str, str], None], bool]] = [
    # what, tamper, whether a read of the row is refused (record=false: nothing proves it, so
    # only `ledger verify` can tell)
    ("ledger_seq and record cleared, result altered", _detach, False),
    (
        "ledger_seq cleared",
        lambda u, p: sql(u, "UPDATE plans SET ledger_seq=NULL WHERE id=:i", i=p),
        True,
    ),
    ("row deleted", lambda u, p: sql(u, "DELETE FROM plans WHERE id=:i", i=p), False),
    ("plan id changed", lambda u, p: sql(u, "UPDATE plans SET id='f00d' WHERE id=:i", i=p), False),
]


@pytest.mark.parametrize(("what", "tamper", "refused"), DETACH, ids=[t[0] for t in DETACH])
def test_a_plan_detached_from_its_entry_is_found(
    db_url: str,
    rules: RuleSet,
    plan: Plan,
    example_path: Path,
    what: str,
    tamper: Callable[[str, str], None],
    refused: bool,
) -> None:
    plan_id, seq = _recorded(db_url, rules, plan, example_path)
    assert verify_store(Store(db_url), Keys()).ok
    tamper(db_url, plan_id)
    v = verify_store(Store(db_url), Keys())
    assert not v.ok and v.first_bad == seq, v.problem
    assert plan_id in (v.problem or "")
    if refused:
        store = Store(db_url)
        row = get_plan(store, plan_id)
        assert row is not None
        for read in (
            lambda: proven_job_json(store, row, tenant_view=True),
            lambda: plan_document(store, row),
            lambda: find_plan(store, plan_id),
        ):
            with pytest.raises(LedgerError, match=plan_id):
                read()


def test_plans_left_unrecorded_before_0003_stay_readable(tmp_path: Path) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("straits.store").joinpath("migrations"))
    )
    engine = create_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
    engine.dispose()
    sql(
        url,
        "INSERT INTO scenarios (digest, name, body, created_at) VALUES "
        "('d', 'n', '{}', '2026-01-01')",
    )
    for pid, status, attempts in (("old", "done", 0), ("new", "done", 1), ("q", "queued", 0)):
        sql(
            url,
            "INSERT INTO plans (id, tenant, actor, scenario_digest, options, status, "
            "created_at, result, attempts) VALUES (:i, 't', 'a', 'd', '{}', :s, "
            "'2026-01-01', '{}', :n)",
            i=pid,
            s=status,
            n=attempts,
        )
    store = Store(url)  # migrates to the head
    records = {p: bool(getattr(get_plan(store, p), "record", None)) for p in ("old", "new", "q")}
    assert records == {"old": False, "new": True, "q": True}


def test_the_log_never_signs_a_checkpoint_that_does_not_extend_its_last(db_url: str) -> None:
    """A rewrite of signed history, chain and tree made consistent again, then more entries:
    signing the new head would be the log's own signature on a fork."""
    from straits.store import checkpoints
    from straits.store.note import Signer
    from test_ledger_log import _rewrite_everything

    signer = Signer.generate("straits.test/ledger")
    store = Store(db_url)
    fill(store, 6)
    first = checkpoints.issue(store, signer)
    _rewrite_everything(db_url, 2)
    fill(Store(db_url), 3)
    with pytest.raises(LedgerError, match="rewritten"):
        checkpoints.issue(Store(db_url), signer)
    latest = checkpoints.latest(Store(db_url), Keys(signer))
    assert latest is not None and latest.note == first.note  # nothing new was signed


@pytest.mark.parametrize("recorded", [True, False])
@pytest.mark.parametrize(
    ("column", "value"), [("options", "{"), ("progress", "{"), ("result", "{"), ("options", "[1")]
)
def test_a_stored_column_that_is_not_json_is_a_409_not_a_500(
    db_url: str,
    rules: RuleSet,
    plan: Plan,
    example_path: Path,
    column: str,
    value: str,
    recorded: bool,
) -> None:
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token
    from straits.web.session import COOKIE

    plan_id, _ = _recorded(db_url, rules, plan, example_path)
    if not recorded:
        sql(db_url, "UPDATE plans SET ledger_seq=NULL, record=:f", f=False)
    sql(db_url, f"UPDATE plans SET {column}=:v", v=value)
    store = Store(db_url)
    token = create_token(store, "hz-cloud", "viewer")[0]
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        client.cookies.set(COOKIE, token)
        for path in (
            f"/v1/plans/{plan_id}",
            f"/v1/plans/{plan_id}/plan",
            "/v1/plans",
            f"/v1/plans/{plan_id}/report",
            "/ui/",
        ):
            r = client.get(path, headers={"Authorization": f"Bearer {token}"})
            # an unrecorded plan is reported as stored (the console shows it so)
            assert r.status_code in (200, 400, 409), (path, r.status_code, r.text[:300])
            if r.status_code != 200:  # the console's errors are pages, the API's problems
                kind = "text/html" if path.startswith("/ui/") else "application/problem+json"
                assert r.headers["content-type"].startswith(kind), (path, r.headers)
            if r.status_code == 409 and not path.startswith("/ui/"):
                assert r.json()["ledger_seq"] in (None, 1)


def test_an_unrecorded_plans_scenario_is_checked_against_its_digest(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path
) -> None:
    plan_id, _ = _recorded(db_url, rules, plan, example_path)
    sql(db_url, "UPDATE plans SET ledger_seq=NULL, record=:f", f=False)
    store = Store(db_url)
    row = get_plan(store, plan_id)
    assert row is not None
    assert plan_document(store, row)["id"] == plan_id
    sql(db_url, "UPDATE scenarios SET body=replace(body, 'hz-cloud', 'hz-c1oud')")
    with pytest.raises(LedgerError, match="scenario"):
        plan_document(Store(db_url), row)


@pytest.mark.parametrize(
    "tamper", ["UPDATE scenarios SET name='innocuous'", "UPDATE scenarios SET body='['"]
)
def test_a_renamed_or_unreadable_scenario_is_found(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path, tamper: str
) -> None:
    """The name column beside a scenario's body (what plan lists show and filter on) is
    checked against the body its digest covers; a body that is not JSON is reported, not a
    crash of the verification."""
    _, seq = _recorded(db_url, rules, plan, example_path)
    sql(db_url, tamper)
    v = verify_store(Store(db_url), Keys())
    assert not v.ok and v.first_bad == seq and "scenario" in (v.problem or ""), v.problem


@pytest.mark.parametrize("body", ["{", "[1,2]", '{"result": 5, "inputs": 3}'])
def test_a_rewritten_plan_body_straits_never_writes_is_reported_not_a_crash(
    db_url: str, body: str
) -> None:
    """The strongest forger without the key (chain and tree rewritten, no checkpoint) gives
    plan entry 3 a body Straits never writes: verify names it instead of raising."""
    from test_ledger_log import _rewrite_everything

    fill(Store(db_url), 5)
    sql(db_url, "UPDATE ledger SET kind='plan' WHERE seq=3")
    _rewrite_everything(db_url, 3, body=body)
    v = verify_store(Store(db_url), Keys())
    assert not v.ok and v.first_bad == 3, v.problem


@pytest.mark.parametrize("when", ["after the head is read", "during the walk"])
def test_an_append_during_a_full_verify_is_no_alarm(
    db_url: str, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """A live server appends while an admin verifies: the entries beyond the head the
    verification read are the next verification's, not 'altered' or 'removed'."""
    from straits.store import integrity, ledger

    store = Store(db_url)
    fill(store, 6)
    real_head, real_chain = integrity._head_in, integrity._chain

    def head_then_append(s: object) -> object:
        h = real_head(s)  # type: ignore[arg-type]
        if when == "after the head is read":
            fill(Store(db_url), 2)
        return h

    def chain_then_append(s: object) -> object:
        for i, e in enumerate(real_chain(s)):  # type: ignore[arg-type]
            if i == 2 and when == "during the walk":
                fill(Store(db_url), 2)
            yield e

    monkeypatch.setattr(integrity, "_head_in", head_then_append)
    monkeypatch.setattr(integrity, "_chain", chain_then_append)
    v = verify_store(store, Keys())
    assert v.ok, v.problem
    assert v.entries == 6 and ledger.count(store, None) == 8


MOVED = [
    # what is edited in the plan's row
    ("tenant moved to another", "UPDATE plans SET tenant='other' WHERE id=:i"),
    ("status edited", "UPDATE plans SET status='failed' WHERE id=:i"),
    ("options edited", 'UPDATE plans SET options=\'{"solver":"cpsat"}\' WHERE id=:i'),
]


@pytest.mark.parametrize(("what", "statement"), MOVED, ids=[m[0] for m in MOVED])
def test_a_listed_plan_is_its_entrys_not_its_rows(
    db_url: str,
    rules: RuleSet,
    plan: Plan,
    example_path: Path,
    what: str,
    statement: str,
) -> None:
    """The plan list read the plans table unproven: a row whose tenant was edited to
    another's showed in that tenant's list (its scenario, status and times), and an edited
    status or options were served as they were. Now a recorded plan is listed, and read, under
    the tenant its entry names only, and a page holding a row that differs from its entry is a
    409 naming the entry, in every list the plan is in (its owner's included, whatever
    tenant its row was edited to name)."""
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import Principal, create_token
    from straits.web import views

    plan_id, _ = _recorded(db_url, rules, plan, example_path)
    sql(db_url, statement, i=plan_id)
    store = Store(db_url)
    with TestClient(create_app(store), raise_server_exceptions=False) as client:

        def get(tenant: str, role: str, path: str) -> httpx.Response:
            token = create_token(store, tenant, role)[0]
            r: httpx.Response = client.get(path, headers={"Authorization": f"Bearer {token}"})
            return r

        other = get("other", "planner", "/v1/plans")
        assert other.status_code == 200 and plan_id not in other.text
        assert get("other", "planner", f"/v1/plans/{plan_id}").status_code == 404
        assert get("other", "planner", f"/v1/plans/{plan_id}/plan").status_code == 404
        with pytest.raises(NotFoundError):
            views.job(store, Principal("x", "other", "planner"), plan_id)
        listed = views.jobs(store, Principal("x", "other", "planner"))
        assert plan_id not in {j.id for j in listed}
        for tenant, role in (("hz-cloud", "admin"), ("hz-cloud", "planner")):
            r = get(tenant, role, "/v1/plans")
            # the owner's list too: the row stays its (store/owner.py), and differs from its
            # entry (it used to drop out of the owner's list silently)
            assert r.status_code == 409, (tenant, role, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["type"] == "urn:straits:problem:conflict", r.json()
    store.close()


@pytest.mark.parametrize(
    ("seq", "failing"),
    [(5, {"a", "b"}), (6, {"a", "b"}), (3, {"a", "b"})],
    ids=["a's last entry, inside the log", "the log's last entry (b's)", "a's middle entry"],
)
def test_a_deleted_entry_fails_every_tenant_it_may_have_belonged_to(
    db_url: str, seq: int, failing: set[str]
) -> None:
    """A tenant's verification counts the entries after its last one: an entry deleted that was
    a tenant's last leaves no gap in its numbering (before: 'ok' for that tenant). Whose a
    deleted entry was cannot be told, so every tenant whose last entry is before it fails,
    with no number; one whose entries come after it shows a gap, and the tenant of the entry
    right after it fails at that entry, whose prev_hash can no longer be held (led65)."""
    from straits.store import checkpoints
    from straits.store.note import Signer
    from straits.store.tenant_verify import verify_tenant

    signer = Signer.generate("straits.test/ledger")
    store = Store(db_url)
    fill(store, 6, ("a", "b"))  # a: 1, 3, 5 (its 1, 2, 3); b: 2, 4, 6
    checkpoints.issue(store, signer)
    assert all(verify_tenant(store, Keys(signer), t).ok for t in ("a", "b"))
    sql(db_url, "DELETE FROM ledger WHERE seq = :s", s=seq)
    for tenant in ("a", "b"):
        v = verify_tenant(Store(db_url), Keys(signer), tenant)
        assert v.ok is (tenant not in failing), (tenant, v)
        assert v.ok or (v.problem is not None and f"entry {seq}" not in v.problem)
    assert not verify_store(Store(db_url), Keys(signer)).ok  # the full check says where


# --- `plan --record` of a plan recorded before (atk39) -------------------------------------------
# A plan recorded again is not appended twice: the command said "already recorded (ledger entry
# N)" from the stored row, unproven, exit 0: "entry None" of a row detached from its entry, and
# whatever entry a moved ledger_seq named. The entry must prove it, or the command fails naming
# it.
AGAIN: list[tuple[str, str]] = [
    ("ledger_seq cleared", "UPDATE plans SET ledger_seq=NULL WHERE id=:i"),
    ("ledger_seq moved to a check entry", "UPDATE plans SET ledger_seq=1 WHERE id=:i"),
    ("result altered", "UPDATE plans SET result='{}' WHERE id=:i"),
    ("ledger_seq and record cleared", "UPDATE plans SET ledger_seq=NULL, record=:f WHERE id=:i"),
]


@pytest.mark.parametrize(("what", "statement"), AGAIN, ids=[a[0] for a in AGAIN])
def test_recording_a_plan_again_names_the_entry_that_proves_it(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path, what: str, statement: str
) -> None:
    from straits.cli.plan_source import record

    store = Store(db_url)
    fill(store, 2)
    sc = load_scenario(example_path)
    plan_id, seq, new = record(store, sc, plan, rules, {}, tenant="hz-cloud", actor="t")
    assert new and seq == 3
    assert record(store, sc, plan, rules, {}, tenant="hz-cloud", actor="t") == (plan_id, 3, False)
    sql(db_url, statement, i=plan_id, f=False)
    with pytest.raises(LedgerError):
        record(store, sc, plan, rules, {}, tenant="hz-cloud", actor="t")
    store.close()


# --- the recorded plans impact re-checks (atk39) --------------------------------------------------
# `impact` (and POST /v1/impact) without plans re-checks a tenant's recorded plans, which were
# chosen by the rows' tenant, status and ledger_seq: a plan whose row was moved to another
# tenant, marked failed, detached or deleted dropped out of its owner's impact without a word
# ("no recorded plans", exit 2). The log decides which plans are recorded and whose they are.
HIDDEN: list[tuple[str, str]] = [
    ("tenant moved", "UPDATE plans SET tenant='zz' WHERE id=:i"),
    ("status altered", "UPDATE plans SET status='failed' WHERE id=:i"),
    ("ledger_seq cleared", "UPDATE plans SET ledger_seq=NULL WHERE id=:i"),
    ("ledger_seq and record cleared", "UPDATE plans SET ledger_seq=NULL, record=:f WHERE id=:i"),
    ("row deleted", "DELETE FROM plans WHERE id=:i"),
]


@pytest.mark.parametrize(("what", "statement"), HIDDEN, ids=[h[0] for h in HIDDEN])
def test_a_recorded_plan_hidden_from_its_owner_is_refused_not_skipped(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path, what: str, statement: str
) -> None:
    from straits.store.records import recorded_plans

    plan_id, seq = _recorded(db_url, rules, plan, example_path)
    store = Store(db_url)
    assert [p.id for p in recorded_plans(store, tenant="hz-cloud")] == [plan_id]
    sql(db_url, statement, i=plan_id, f=False)
    for tenant in ("hz-cloud", None):
        with pytest.raises(LedgerError) as exc:
            recorded_plans(store, tenant=tenant, latest_per_scenario=True)
        assert exc.value.seq in (seq, None)
    assert recorded_plans(store, tenant="zz") == []  # never another tenant's
    store.close()


# --- a plan row marked for recording that no entry records (atk39) --------------------------------
# A row copied under another id (or inserted) with status done, record true and no ledger_seq
# is refused by every read ("`straits ledger verify` shows all that differs"), but the full
# and the tenant's verification passed it: they compared rows that point to entries, and
# entries with their rows.
COPY_AS_MADE_UP = (
    "INSERT INTO plans (id, tenant, actor, scenario_digest, options, status, result, record, "
    "attempts, cancel_requested, created_at) SELECT 'made-up-plan', tenant, actor, "
    "scenario_digest, options, status, result, record, attempts, cancel_requested, created_at "
    "FROM plans WHERE id = :i"
)


def test_a_made_up_plan_marked_for_recording_fails_verification(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path
) -> None:
    from straits.store.tenant_verify import verify_tenant

    plan_id, _ = _recorded(db_url, rules, plan, example_path)
    sql(db_url, COPY_AS_MADE_UP, i=plan_id)
    store = Store(db_url)
    with pytest.raises(LedgerError):
        find_plan(store, "made-up-plan")  # every read refuses it
    v = verify_store(store, Keys())
    assert (v.ok, v.code, v.first_bad) == (False, "plan-row", None)
    assert "made-up-plan" in (v.problem or "")
    t = verify_tenant(store, Keys(), "hz-cloud")
    assert (t.ok, t.code) == (False, "plan-row")
    assert verify_tenant(store, Keys(), "a").ok  # another tenant's check names none of it
    store.close()


#: a recorded plan's job fields edited to what no finished, recorded job holds (a fresh-eye
#: attack: `GET /v1/plans/{id}` showed them as they stood, and `ledger verify` passed them)
JOB_EDITS: list[tuple[str, str]] = [
    ("error", "UPDATE plans SET error='revoked by compliance: do not run' WHERE id=:i"),
    ("record", "UPDATE plans SET record=:f WHERE id=:i"),
    ("cancel", "UPDATE plans SET cancel_requested=:t WHERE id=:i"),
    ("finished_at", "UPDATE plans SET finished_at=NULL WHERE id=:i"),
]


@pytest.mark.parametrize(("what", "statement"), JOB_EDITS, ids=[j[0] for j in JOB_EDITS])
def test_a_recorded_plans_edited_job_fields_are_found_and_refused(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path, what: str, statement: str
) -> None:
    plan_id, seq = _recorded(db_url, rules, plan, example_path)
    sql(db_url, statement, i=plan_id, f=False, t=True)
    store = Store(db_url)
    v = verify_store(store, Keys())
    assert not v.ok and v.first_bad == seq, v.problem
    row = get_plan(store, plan_id)
    assert row is not None
    for read in (
        lambda: proven_job_json(store, row, tenant_view=True),
        lambda: find_plan(store, plan_id),
    ):
        with pytest.raises(LedgerError, match=plan_id):
            read()


def test_a_recorded_plans_progress_is_not_shown(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path
) -> None:
    """A finished job's progress is cleared; an edited one showed a "best plan" of $1."""
    plan_id, _ = _recorded(db_url, rules, plan, example_path)
    best = '{"best":{"total_cost_usd":1}}'
    sql(db_url, "UPDATE plans SET progress=:p WHERE id=:i", i=plan_id, p=best)
    store = Store(db_url)
    row = get_plan(store, plan_id)
    assert row is not None
    assert proven_job_json(store, row, tenant_view=True)["progress"] is None
