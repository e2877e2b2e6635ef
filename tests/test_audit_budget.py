"""The audit budget (store/audit.py): a client's refusals past STRAITS_AUDIT_PER_MINUTE a minute
are counted, not stored one by one, and the count is kept as one summary row. Before, a client
without a token wrote an audit row (and took SQLite's write lock) for every request it sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store
from straits.store.audit import Budget, refusals
from test_api import Api


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# (refusals as (client, seconds later, status), per minute, max clients) -> (kept?, summaries due)
CASES = [
    (
        "within the budget",
        [("a", 0, 401), ("a", 1, 401)],
        2,
        10,
        [(True, []), (True, [])],
    ),
    (
        "past it: counted, then summarised when the client comes back after the minute",
        [("a", 0, 401), ("a", 1, 403), ("a", 2, 401), ("a", 61, 401)],
        1,
        10,
        [(True, []), (False, []), (False, []), (True, [("a", 2, 401)])],
    ),
    (
        "clients have budgets of their own",
        [("a", 0, 401), ("b", 0, 401), ("a", 1, 401), ("b", 1, 401)],
        1,
        10,
        [(True, []), (True, []), (False, []), (False, [])],
    ),
    (
        "a client forgotten with a count has it summarised",
        [("a", 0, 401), ("a", 0, 413), ("b", 1, 401), ("c", 2, 401)],
        1,
        2,
        [(True, []), (False, []), (True, []), (True, [("a", 1, 413)])],
    ),
    (
        "a minute without drops leaves nothing to summarise",
        [("a", 0, 401), ("a", 90, 401)],
        1,
        10,
        [(True, []), (True, [])],
    ),
]


@pytest.mark.parametrize(("what", "calls", "per_minute", "clients", "want"), CASES)
def test_the_budget_keeps_counts_and_summarises(
    what: str,
    calls: list[tuple[str, int, int]],
    per_minute: int,
    clients: int,
    want: list[tuple[bool, list[tuple[str, int, int]]]],
) -> None:
    clock = Clock()
    b = Budget(per_minute, max_clients=clients, clock=clock)
    start = clock.now
    got = []
    for client, later, status in calls:
        clock.now = start + later
        got.append(b.admit(client, status))
    assert got == want


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    store = Store(db_url)
    settings = Settings(max_body_bytes=1024, audit_per_minute=5)
    with TestClient(create_app(store, settings=settings), raise_server_exceptions=False) as client:
        yield Api(client, store)
    store.close()


def test_a_client_without_a_token_writes_its_budget_and_one_summary(api: Api) -> None:
    clock = Clock()
    app: Any = api.client.app
    app.state.audit_budget = Budget(5, clock=clock)  # the app's, on a clock of the test's
    for _ in range(40):
        assert api.client.get("/v1/plans").status_code == 401
    assert len(refusals(api.store)) == 5  # not 40
    clock.now += 61
    assert api.client.get("/v1/chips").status_code == 401
    rows = refusals(api.store)
    assert len(rows) == 7  # the summary of the 35, then this refusal
    summary = rows[1]
    assert (summary.status, summary.path, summary.client) == (401, "-", "testclient")
    assert summary.reason.startswith("35 more refusals")
    assert rows[0].path == "/v1/chips"
    # refused or not stored, every request is still answered, and a token still works
    assert api.client.get("/v1/plans", headers=api.auth("a", "viewer")).status_code == 200


def test_bodies_over_the_limit_are_kept_within_the_budget(api: Api) -> None:
    for _ in range(12):
        r = api.client.post("/v1/check", content=b"x" * 4096, headers=api.auth("a", "viewer"))
        assert r.status_code == 413
    assert [x.status for x in refusals(api.store)] == [413] * 5


@pytest.mark.parametrize("value", ["lots", "0", "-1", "1e12"])
def test_a_garbage_budget_in_the_environment_names_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    from straits.errors import InputError

    monkeypatch.setenv("STRAITS_AUDIT_PER_MINUTE", value)
    with pytest.raises(InputError, match="STRAITS_AUDIT_PER_MINUTE"):
        Settings.from_env()
