"""The console's plan page kept per server process (srv32, ``web/plan_cache.py``): a repeat
view of a finished plan is served from the cache, only after the request's own access check,
under a key made of everything the page is made from, so another tenant gets the same 404 it
always got and a tampered row the error an uncached view gives."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from straits.errors import InputError
from straits.server.settings import Settings
from straits.store import Store
from straits.store.tokens import create_token
from straits.web.plan_cache import PlanPages
from test_console import Browser

GENERATED = re.compile(rb'(generated|csrf)[^>]*?"[^"]*"')


def _stable(body: bytes, plan_id: str) -> bytes:
    """A page without what differs at each request (its time, CSRF token) and the id."""
    return (
        GENERATED.sub(b"", body)
        .replace(plan_id.encode(), b"ID")
        .replace(plan_id[:12].encode(), b"ID")
    )


def _plan(app: Any, store: Store, demo_text: str) -> tuple[Browser, str]:
    owner = Browser(app, store)
    owner.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = owner.submit(demo_text)
    owner.wait(plan_id)
    return owner, plan_id


def _pages(app: Any) -> PlanPages:
    pages = app.state.plan_pages
    assert isinstance(pages, PlanPages)
    return pages


def test_a_repeat_view_is_served_from_the_cache(console: tuple[Any, Store], demo_text: str) -> None:
    app, store = console
    owner, plan_id = _plan(app, store, demo_text)
    first = owner.client.get(f"/ui/plans/{plan_id}")
    again = owner.client.get(f"/ui/plans/{plan_id}")
    assert first.status_code == again.status_code == 200
    assert (_pages(app).hits, len(_pages(app))) == (1, 1)
    assert _stable(first.content, plan_id) == _stable(again.content, plan_id)
    # an admin sees the global entry number: a page of its own, not the tenant's
    admin = Browser(app, store)
    admin.sign_in(create_token(store, "ops", "admin")[0])
    assert admin.client.get(f"/ui/plans/{plan_id}").status_code == 200
    assert (_pages(app).hits, len(_pages(app))) == (1, 2)


def test_another_tenant_gets_the_same_404_after_the_owner_viewed_it(
    console: tuple[Any, Store], demo_text: str
) -> None:
    app, store = console
    owner, plan_id = _plan(app, store, demo_text)
    nobodys = "f" * len(plan_id)
    beta = Browser(app, store)
    beta.sign_in(create_token(store, "beta", "planner")[0])
    before = [beta.client.get(f"/ui/plans/{i}") for i in (plan_id, nobodys)]
    assert owner.client.get(f"/ui/plans/{plan_id}").status_code == 200
    assert owner.client.get(f"/ui/plans/{plan_id}").status_code == 200  # now from the cache
    hits = _pages(app).hits
    after = [beta.client.get(f"/ui/plans/{i}") for i in (plan_id, nobodys)]
    for theirs, random in (before, after):
        assert theirs.status_code == random.status_code == 404
        assert _stable(theirs.content, plan_id) == _stable(random.content, nobodys)
    assert _stable(before[0].content, plan_id) == _stable(after[0].content, plan_id)
    assert _pages(app).hits == hits  # the cache was never read for beta


@pytest.mark.parametrize("table", ["plans", "ledger"])
def test_a_row_tampered_after_a_view_is_answered_as_uncached(
    console: tuple[Any, Store], demo_text: str, table: str
) -> None:
    app, store = console
    owner, plan_id = _plan(app, store, demo_text)
    assert owner.client.get(f"/ui/plans/{plan_id}").status_code == 200
    assert owner.client.get(f"/ui/plans/{plan_id}").status_code == 200
    engine = create_engine(store.url)
    with engine.begin() as conn:
        if table == "plans":  # the stored plan says it costs more than its entry records
            result = json.loads(conn.execute(text("SELECT result FROM plans")).scalar_one())
            result["total_cost_usd"] = 1e12
            conn.execute(text("UPDATE plans SET result = :r"), {"r": json.dumps(result)})
        else:  # the entry itself rewritten
            body = conn.execute(text("SELECT body FROM ledger WHERE kind = 'plan'")).scalar_one()
            conn.execute(
                text("UPDATE ledger SET body = :b WHERE kind = 'plan'"),
                {"b": body.replace('"total_cost_usd":', '"total_cost_usd":1', 1)},
            )
    engine.dispose()
    cached = owner.client.get(f"/ui/plans/{plan_id}")
    app.state.plan_pages = None  # as a server without the cache answers it
    uncached = owner.client.get(f"/ui/plans/{plan_id}")
    assert cached.status_code == uncached.status_code == 409
    assert _stable(cached.content, plan_id) == _stable(uncached.content, plan_id)


def test_the_cache_is_bounded_by_count_and_bytes() -> None:
    pages = PlanPages(pages=2, max_bytes=100)
    for key in "abc":
        pages.put(key, {"k": key}, 10)
    assert (len(pages), pages.get("a"), pages.get("c")) == (2, None, {"k": "c"})
    pages.get("b")  # b is now the most recently used: d drops c
    pages.put("d", {}, 10)
    assert (pages.get("c"), pages.get("b") is not None) == (None, True)
    pages.put("big", {}, 90)  # 10 + 90 = 100: fits, the older one goes
    assert (len(pages), pages.bytes) == (2, 100)
    pages.put("huge", {}, 101)  # over the whole budget: not kept, nothing dropped
    assert (pages.get("huge"), len(pages)) == (None, 2)
    none = PlanPages(pages=0)
    none.put("a", {}, 1)
    assert len(none) == 0


def test_the_cache_is_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRAITS_PLAN_PAGE_CACHE", "0")
    monkeypatch.setenv("STRAITS_PLAN_PAGE_CACHE_BYTES", "1048576")
    settings = Settings.from_env()
    assert (settings.plan_page_cache, settings.plan_page_cache_bytes) == (0, 1048576)
    monkeypatch.setenv("STRAITS_PLAN_PAGE_CACHE", "-1")
    with pytest.raises(InputError) as bad:
        Settings.from_env()
    assert bad.value.path == "STRAITS_PLAN_PAGE_CACHE"


def test_a_plan_page_of_an_unknown_id_is_404_and_nothing_kept(
    console: tuple[Any, Store], tmp_path: Path
) -> None:
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    assert b.client.get("/ui/plans/" + "0" * 32).status_code == 404
    assert (len(_pages(app)), _pages(app).hits) == (0, 0)
