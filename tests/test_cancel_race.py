"""Two cancels of one queued plan at once (h50): each read the plan queued before either
cancelled it, and both were answered 200 "cancelled (it was queued)"; the second cancelled
nothing, and a cancel sent after the first ended is a 409."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from straits.server import create_app, routes
from straits.server.settings import Settings
from straits.store import Store, queue
from straits.store.records import get_plan
from test_api import Api, assert_problem, scenario_doc


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    store = Store(db_url)
    app = create_app(store, settings=Settings(plan_workers=0))  # the plan stays queued
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store)
    store.close()


def test_a_cancel_that_loses_the_race_to_another_is_a_409(
    api: Api, example_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = api.auth("hz-cloud", "planner")
    job = api.client.post("/v1/plans", json=scenario_doc(example_path), headers=owner).json()
    stale = get_plan(api.store, job["id"])  # what the second cancel read: queued
    assert stale is not None and stale.status == "queued"
    assert api.client.delete(f"/v1/plans/{job['id']}", headers=owner).status_code == 200
    monkeypatch.setattr(routes, "_own_plan", lambda request, who, plan_id: stale)
    p = assert_problem(api.client.delete(f"/v1/plans/{job['id']}", headers=owner), 409)
    assert p["plan_status"] == "cancelled"
    assert queue.cancel_job(api.store, job["id"]) == ("cancelled", "cancelled")


def test_a_queued_plan_cancelled_once_is_a_200(api: Api, example_path: Path) -> None:
    owner = api.auth("hz-cloud", "planner")
    job = api.client.post("/v1/plans", json=scenario_doc(example_path), headers=owner).json()
    r = api.client.delete(f"/v1/plans/{job['id']}", headers=owner)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert_problem(api.client.delete(f"/v1/plans/{job['id']}", headers=owner), 409)
