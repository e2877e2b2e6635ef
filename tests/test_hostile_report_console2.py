"""The report and the console as a user and an attacker see them, a second pass (atk33):
the plan list past its first page, a form posted twice, and the report of degenerate plans.
(The first pass, atk23: test_hostile_console_errors.py, test_hostile_api_auth.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from straits.loading import load_scenario
from straits.rules import ruleset
from straits.server import create_app
from straits.store import Store, queue
from straits.store.tokens import create_token
from test_console import Browser

ROW = re.compile(r'<tr data-plan="([0-9a-f]+)"')
OLDER = re.compile(r'<a href="/ui/\?cursor=([^"]+)">Older plans</a>')


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    yield Store(f"sqlite:///{tmp_path / 'console.db'}")


def _queued(store: Store, example_path: Path, tenant: str, n: int) -> list[str]:
    sc = load_scenario(example_path)
    return [
        queue.enqueue(
            store,
            sc,
            {"solver": "greedy"},
            tenant=tenant,
            actor="test",
            record=False,
            rules_digest=ruleset().digest,
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("role", ["planner", "admin"])
def test_every_plan_is_reachable_from_the_plan_list(
    store: Store, example_path: Path, role: str
) -> None:
    """The list showed the newest 100 plans and nothing else: the 101st and older were
    reachable by id only, and the page did not say any were left out. It pages now (an
    "Older plans" link, the API's keyset cursor), each plan on exactly one page."""
    ids = _queued(store, example_path, "hz-cloud", 205)
    _queued(store, example_path, "other", 3)  # never in hz-cloud's pages
    app = create_app(store)  # no lifespan: the plans stay queued
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", role)[0])
    seen: list[str] = []
    pages = 0
    url = "/ui/"
    while True:
        r = b.client.get(url)
        assert r.status_code == 200
        pages += 1
        seen += ROW.findall(r.text)
        more = OLDER.search(r.text)
        if more is None:
            break
        url = f"/ui/?cursor={more.group(1)}"
        rows = b.client.get(f"/ui/plans/rows?cursor={more.group(1)}")
        assert rows.status_code == 200 and ROW.findall(rows.text)
    expected = 208 if role == "admin" else 205
    assert pages == 3
    assert len(seen) == len(set(seen)) == expected
    assert set(ids) <= set(seen)


@pytest.mark.parametrize("cursor", ["x", "W10", "WyJhIiwiYiJd", "a" * 401])
def test_a_forged_plan_list_cursor_is_a_400_page(store: Store, cursor: str) -> None:
    b = Browser(create_app(store), store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    for path in ("/ui/", "/ui/plans/rows"):
        r = b.client.get(path, params={"cursor": cursor})
        assert r.status_code in (400, 422), (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
