"""A recorded plan's times (led50): no ledger entry records the queue's ``created_at``,
``started_at`` or ``finished_at``, so a row whose ``finished_at`` was edited to another valid
time was served beside the proven plan, and it verified. The one proven time, the entry's
``recorded_at``, is now what the API serves as a recorded plan's finished time, whatever the
row says."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.loading import load_scenario
from straits.plan import Plan, make_plan
from straits.rules import RuleSet
from straits.store import Store
from straits.store.records import record_plan
from test_ledger_log import sql


@pytest.fixture(scope="module")
def plan(rules: RuleSet, example_path: Path) -> Plan:
    return make_plan(load_scenario(example_path), rules=rules, solver="greedy")


def _console_shows_unproven(store: Store, plan_id: str) -> None:
    """The console's list marks the recorded plan unproven (no stored error) and its page is
    refused, as the API's 409."""
    from straits.errors import LedgerError
    from straits.store.tokens import Principal
    from straits.web import views

    who = Principal("x", "hz-cloud", "planner")
    (line,) = views.jobs(store, who)
    assert (line.error, line.summary) == (None, views.UNPROVEN)
    with pytest.raises(LedgerError):
        views.recorded_plan(store, who, plan_id)
    store.close()


def test_a_recorded_plans_finished_time_is_its_entrys(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token

    store = Store(db_url)
    plan_id, entry = record_plan(
        store, load_scenario(example_path), plan, rules, {"solver": "greedy"},
        tenant="hz-cloud", actor="t",
    )  # fmt: skip
    sql(db_url, "UPDATE plans SET finished_at=:t WHERE id=:i", i=plan_id, t="2021-03-04 05:06:07")
    store.close()
    store = Store(db_url)
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        for role in ("planner", "admin"):
            token = create_token(store, "hz-cloud", role)[0]
            auth = {"Authorization": f"Bearer {token}"}
            one = client.get(f"/v1/plans/{plan_id}", headers=auth)
            assert one.status_code == 200, one.text
            assert one.json()["finished_at"] == entry.recorded_at
            listed = client.get("/v1/plans", headers=auth)
            assert listed.status_code == 200, listed.text
            (item,) = [p for p in listed.json() if p["id"] == plan_id]
            assert item["finished_at"] == entry.recorded_at
    store.close()


def test_a_listed_plans_scenario_name_is_its_entrys(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path
) -> None:
    """``scenarios.name`` edited: `ledger verify` failed it, but `GET /v1/plans` and the
    console listed the plan under the edited name, 200, as proven."""
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token

    store = Store(db_url)
    plan_id, _ = record_plan(
        store, load_scenario(example_path), plan, rules, {"solver": "greedy"},
        tenant="hz-cloud", actor="t",
    )  # fmt: skip
    sql(db_url, "UPDATE scenarios SET name='approved-by-legal'")
    store.close()
    store = Store(db_url)
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        for role in ("planner", "admin"):
            token = create_token(store, "hz-cloud", role)[0]
            r = client.get("/v1/plans", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 409, r.text
            assert r.json()["type"] == "urn:straits:problem:conflict"
    _console_shows_unproven(store, plan_id)


def test_a_listed_recorded_plan_shows_no_stored_progress(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path
) -> None:
    """`GET /v1/plans/{id}` shows no progress for a recorded plan (hostile37), but the list
    served an edited one (a "best plan" of $1) beside it."""
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token

    store = Store(db_url)
    plan_id, _ = record_plan(
        store, load_scenario(example_path), plan, rules, {"solver": "greedy"},
        tenant="hz-cloud", actor="t",
    )  # fmt: skip
    sql(db_url, "UPDATE plans SET progress=:p", p='{"best":{"total_cost_usd":1}}')
    store.close()
    store = Store(db_url)
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        token = create_token(store, "hz-cloud", "planner")[0]
        r = client.get("/v1/plans", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        (item,) = [p for p in r.json() if p["id"] == plan_id]
        assert item["progress"] is None
    store.close()


@pytest.mark.parametrize("column", ["hash", "prev_hash"])
def test_a_proven_entrys_chain_hash_is_checked(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path, column: str
) -> None:
    """The chain hash is in no Merkle leaf: an edited one (or prev_hash) passed every proven
    read, and `straits report` and the API's report showed it as the plan's "Entry hash"."""
    from fastapi.testclient import TestClient

    from straits.errors import LedgerError
    from straits.server import create_app
    from straits.store import ledger
    from straits.store.proven import prove_entries, prove_entry
    from straits.store.records import find_plan
    from straits.store.tokens import create_token
    from test_ledger_log import fill

    store = Store(db_url)
    plan_id, entry = record_plan(
        store, load_scenario(example_path), plan, rules, {"solver": "greedy"},
        tenant="hz-cloud", actor="t",
    )  # fmt: skip
    fill(store, 2)
    sql(db_url, f"UPDATE ledger SET {column}=:h WHERE seq=:s", h="ab" * 32, s=entry.seq)
    store.close()
    store = Store(db_url)
    with pytest.raises(LedgerError):
        prove_entry(store, entry.seq)
    with pytest.raises(LedgerError):
        find_plan(store, plan_id)
    with pytest.raises(LedgerError):
        prove_entries(store, [ledger.get_entry(store, entry.seq)])  # type: ignore[list-item]
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        token = create_token(store, "hz-cloud", "planner")[0]
        r = client.get(f"/v1/plans/{plan_id}/report", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 409, r.status_code
    store.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE plans SET error='revoked by compliance: do not run'",
        "UPDATE plans SET error='revoked', status='failed'",
    ],
)
def test_the_consoles_line_of_a_recorded_plan_is_its_entrys(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path, statement: str
) -> None:
    """The console's plan list showed an edited error of a recorded plan (in red, before the
    "not proven" mark, which it hid), or its status edited to failed with no mark at all."""

    store = Store(db_url)
    plan_id, _ = record_plan(
        store, load_scenario(example_path), plan, rules, {"solver": "greedy"},
        tenant="hz-cloud", actor="t",
    )  # fmt: skip
    sql(db_url, statement)
    store.close()
    store = Store(db_url)
    _console_shows_unproven(store, plan_id)


def test_a_plan_recorded_by_the_cli_is_created_no_later_than_it_finished(
    db_url: str, rules: RuleSet, plan: Plan, example_path: Path
) -> None:
    """`straits plan --record` (record_plan): the row's created_at, the column's default taken
    at the flush after the append, was later than the entry's recorded_at, served as the
    plan's finished_at: the API said every such plan finished before it was created."""
    import datetime as dt

    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token

    store = Store(db_url)
    plan_id, _ = record_plan(
        store, load_scenario(example_path), plan, rules, {"solver": "greedy"},
        tenant="hz-cloud", actor="t",
    )  # fmt: skip
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        auth = {"Authorization": f"Bearer {create_token(store, 'hz-cloud', 'planner')[0]}"}
        one = client.get(f"/v1/plans/{plan_id}", headers=auth).json()
        (item,) = [p for p in client.get("/v1/plans", headers=auth).json() if p["id"] == plan_id]
    for job in (one, item):
        created = dt.datetime.fromisoformat(job["created_at"])
        assert created <= dt.datetime.fromisoformat(job["finished_at"]), job
    store.close()
