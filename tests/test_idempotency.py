"""A plan submission sent twice queues one plan: ``POST /v1/plans`` with an
``Idempotency-Key``, and the console's submit form posted to two server processes. Before, a
client that retried after losing the answer (a timeout, a dropped connection) queued and
recorded a second plan, and the console's guard against a double post lived in one process's
memory only."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from straits.errors import KeyReusedError
from straits.loading import load_scenario
from straits.server import create_app
from straits.store import Store, queue
from straits.store.tables import PlanRow
from straits.store.tokens import create_token
from test_api import scenario_doc
from test_console import Browser

GREEDY = {"solver": "greedy", "objective": None, "regime": None, "time_limit": 5.0, "seed": 0}


def _rows(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(PlanRow)) or 0)


def _api(store: Store) -> tuple[TestClient, dict[str, str], dict[str, str]]:
    api = TestClient(create_app(store))  # no lifespan: the plans stay queued
    mine = {"Authorization": f"Bearer {create_token(store, 'hz-cloud', 'planner')[0]}"}
    other = {"Authorization": f"Bearer {create_token(store, 'other', 'admin')[0]}"}
    return api, mine, other


def test_the_same_request_with_a_key_queues_one_plan(store: Store, example_path: Path) -> None:
    api, mine, other = _api(store)
    doc = scenario_doc(example_path)
    keyed = {**mine, "Idempotency-Key": "retry-1"}
    first = api.post("/v1/plans?solver=greedy", json=doc, headers=keyed)
    again = api.post("/v1/plans?solver=greedy", json=doc, headers=keyed)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert _rows(store) == 1
    # another request under the key is a conflict, naming the header; nothing is queued
    changed = api.post("/v1/plans?solver=greedy&seed=7", json=doc, headers=keyed)
    assert changed.status_code == 409, changed.text
    assert changed.headers["content-type"].startswith("application/problem+json")
    assert changed.json()["path"] == "Idempotency-Key"
    assert _rows(store) == 1
    # keys are a tenant's own: another tenant's same key is its own plan
    theirs = api.post(
        "/v1/plans?solver=greedy", json=doc, headers={**other, "Idempotency-Key": "retry-1"}
    )
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    # without a key, every request is a new plan
    for _ in range(2):
        assert api.post("/v1/plans?solver=greedy", json=doc, headers=mine).status_code == 202
    assert _rows(store) == 4


@pytest.mark.parametrize("key", ["", "has space", "é", "x" * 201, "tab\there"])
def test_a_key_that_is_not_printable_ascii_up_to_200_is_a_400(
    store: Store, example_path: Path, key: str
) -> None:
    api, mine, _ = _api(store)
    r = api.post(
        "/v1/plans",
        json=scenario_doc(example_path),
        headers={**mine, "Idempotency-Key": key.encode("utf-8")},
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _rows(store) == 0


def test_one_key_submitted_at_once_from_many_threads_queues_one_plan(
    store: Store, example_path: Path
) -> None:
    """The unique index decides between submissions that each found no earlier job."""
    sc = load_scenario(example_path)
    got: list[tuple[str, bool]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def submit() -> None:
        start.wait()
        try:
            got.append(
                queue.enqueue_once(
                    store,
                    sc,
                    GREEDY,
                    tenant="hz-cloud",
                    actor="test",
                    record=True,
                    rules_digest=None,
                    key="same",
                )
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert len({plan_id for plan_id, _ in got}) == 1
    assert sorted(replayed for _, replayed in got) == [False] + [True] * 5
    assert _rows(store) == 1
    with pytest.raises(KeyReusedError):
        queue.enqueue_once(
            store,
            sc,
            {**GREEDY, "seed": 1},
            tenant="hz-cloud",
            actor="test",
            record=True,
            rules_digest=None,
            key="same",
        )


FORM_ID = re.compile(r'name="form_id" value="([^"]+)"')


def test_a_form_posted_to_two_server_processes_makes_one_plan(
    store: Store, example_path: Path
) -> None:
    """Two server processes behind one console (here two apps on one database, each with
    its own memory of the forms it took): the second post of a form went to the other
    process, which did not know it, and queued a second plan."""
    token = create_token(store, "hz-cloud", "planner")[0]
    one, two = Browser(create_app(store), store), Browser(create_app(store), store)
    csrf_one, csrf_two = one.sign_in(token), two.sign_in(token)
    form_id = FORM_ID.search(one.client.get("/ui/submit").text)
    assert form_id is not None
    form: dict[str, Any] = {
        "form_id": form_id.group(1),
        "text": example_path.read_text(),
        "time_limit": "2",
    }
    posts = [
        b.client.post("/ui/submit", data={**form, "csrf": csrf}, follow_redirects=False)
        for b, csrf in ((one, csrf_one), (two, csrf_two))
    ]
    assert [r.status_code for r in posts] == [303, 303]
    assert posts[0].headers["location"] == posts[1].headers["location"]
    assert _rows(store) == 1


def test_a_replay_of_a_finished_plan_is_shown_as_its_entry_proves_it(
    store: Store, db_url: str, example_path: Path
) -> None:
    """A replay answers the job the key queued, in its state now: once done, that was the
    stored row as it was, its ``plans.result`` unproven (an altered copy served, 202, where
    GET answers 409) and ``ledger_seq`` the log's global number (telling a tenant how many
    entries other tenants recorded before it) (atk39)."""
    import time

    from straits.store import ledger
    from test_ledger_log import sql

    for i in range(3):  # another tenant's entries first: global and tenant numbers differ
        ledger.record(store, tenant="other", actor="t", kind="check", body={"i": i})
    mine = {"Authorization": f"Bearer {create_token(store, 'hz-cloud', 'planner')[0]}"}
    keyed = {**mine, "Idempotency-Key": "finished-1"}
    doc = scenario_doc(example_path)
    with TestClient(create_app(store)) as api:  # with its lifespan: the plan runs
        plan_id = api.post("/v1/plans?solver=greedy", json=doc, headers=keyed).json()["id"]
        deadline = time.monotonic() + 60
        while (job := api.get(f"/v1/plans/{plan_id}", headers=mine).json())["status"] != "done":
            assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.1)
        assert job["ledger_seq"] == 1  # the tenant's first entry (the log's fourth)
        again = api.post("/v1/plans?solver=greedy", json=doc, headers=keyed)
        assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
        assert again.json()["ledger_seq"] == 1
        assert again.json()["plan"] == job["plan"]
        sql(db_url, "UPDATE plans SET result = :r", r='{"status": "forged"}')
        forged = api.post("/v1/plans?solver=greedy", json=doc, headers=keyed)
        assert forged.status_code == 409, forged.text
        assert forged.json()["ledger_seq"] == 1
