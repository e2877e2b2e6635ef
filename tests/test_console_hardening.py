"""The web console against what a hostile user or a busy server does, through FastAPI's test
client: assets and API docs served locally and under the console's security headers, hostile
paths and queries refused (never a 500), comparisons beyond their slots told to wait, and what
FastAPI refuses under /ui answered as an HTML page. Split from test_console.py, whose Browser
and running console it uses."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from straits.store import Store
from straits.store.tokens import create_token
from test_console import Browser
from test_report import EXTERNAL, markup


def test_assets_and_api_docs_are_served_locally(console: tuple[object, Store]) -> None:
    app, store = console
    c = Browser(app, store).client
    for name in (
        "plotly.min.js",
        "geo.js",
        "console.js",
        "report.css",
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "redoc.standalone.js",
    ):
        r = c.get(f"/static/{name}")
        assert r.status_code == 200 and r.content, name
        assert (
            c.get(f"/static/{name}", headers={"If-None-Match": r.headers["etag"]}).status_code
            == 304
        )
    assert c.get("/static/../pyproject.toml").status_code == 404
    assert c.get("/static/nope.js").status_code == 404
    for page in ("/docs", "/redoc"):
        html = c.get(page).text
        assert not EXTERNAL.search(markup(html)), page
        assert "/static/" in html


def test_api_docs_carry_the_console_security_headers(console: tuple[object, Store]) -> None:
    """/docs and /redoc were served with no Content-Security-Policy (nor X-Frame-Options,
    nosniff): their inline script is allowed by its hash, nothing else inline, and ReDoc's
    logo from cdn.redoc.ly is refused by the browser (found by a hostile pass, atk10)."""
    import base64
    import hashlib

    app, store = console
    c = Browser(app, store).client
    for page in ("/docs", "/redoc"):
        r = c.get(page)
        csp = {
            name: value
            for name, _, value in (
                d.strip().partition(" ") for d in r.headers["content-security-policy"].split(";")
            )
        }
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'", page
        sources = csp["script-src"].split()
        assert "'unsafe-inline'" not in sources and "'unsafe-eval'" not in sources, page
        assert "https:" not in r.headers["content-security-policy"], page
        for body in re.findall(r"<script>(.*?)</script>", r.text, re.S):
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in sources, page
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"]


@pytest.mark.parametrize("who", ["planner", "admin"])
def test_hostile_console_requests_are_refused_not_crashed(
    console: tuple[object, Store], who: str
) -> None:
    """Numbers, paths and queries a hostile user types into the address bar: every answer is a
    4xx (an HTML page under /ui, problem+json elsewhere), never a 500. A receipt number past
    SQLite's 64-bit integers was a 500 (OverflowError), found by a hostile pass (atk10)."""
    app, store = console
    b = Browser(app, store)
    b.client = TestClient(
        app,  # type: ignore[arg-type]
        base_url="https://testserver",
        raise_server_exceptions=False,  # a 500 is an answer to check, not an exception
    )
    b.sign_in(create_token(store, "hz-cloud", who)[0])
    for path in (
        "/ui/ledger/9223372036854775808/receipt.json",
        "/ui/ledger/99999999999999999999999999/receipt.json",
        "/ui/ledger/-1/receipt.json",
        "/ui/ledger/0/receipt.json",
        "/ui/ledger?before=99999999999999999999",
        "/ui/plans/" + "a" * 5000,
        "/ui/plans/%00",
        "/ui/plans/%ff%fe",
        "/ui/plans/abc/whatif?i=999999999999",
        "/ui/plans/abc/whatif?date=99999-01-01",
        "/ui/rules?date=0001-01-01",
        "/ui/rules?date=9999-12-31",
        "/ui/rules?regime=%3Cscript%3E",
        "/static/..%2f..%2fpyproject.toml",
        "/static/%2e%2e%2fpyproject.toml",
    ):
        r = b.client.get(path)
        assert 200 <= r.status_code < 500, (path, r.status_code)
        if r.status_code >= 400:
            media = r.headers["content-type"].split(";")[0]
            assert media in ("text/html", "application/problem+json"), (path, media)
        assert "<script>" not in r.text, path


def test_comparisons_beyond_the_slots_are_told_to_wait(
    console: tuple[object, Store], demo_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each GET of /ui/plans/ID/compare plans the scenario twice (up to 10 s each) in the
    server's thread pool, outside the plan queue and its limits, for any signed-in role: a
    viewer reloading it in 40 tabs held every API thread (found by a hostile pass, atk10).
    Comparisons run in a few slots; one that finds none free is a 503 page with Retry-After."""
    import threading

    from straits.web import actions

    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(actions, "compare_slots", slots)
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = b.submit(demo_text)
    b.wait(plan_id)
    viewer = Browser(app, store)
    viewer.sign_in(create_token(store, "hz-cloud", "viewer")[0])
    assert slots.acquire(blocking=False)  # a comparison is running
    busy = viewer.client.get(f"/ui/plans/{plan_id}/compare")
    assert busy.status_code == 503 and busy.headers["content-type"].startswith("text/html")
    assert int(busy.headers["retry-after"]) > 0
    assert busy.headers["content-security-policy"]
    slots.release()
    assert viewer.client.get(f"/ui/plans/{plan_id}/compare").status_code == 200
    assert slots.acquire(blocking=False)  # the comparison gave its slot back


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/ui/no-such-page", 404),
        ("GET", "/ui/plans/x/no-such-view", 404),
        ("DELETE", "/ui/", 405),
        ("GET", "/ui/rules?regime=" + "x" * 41, 400),
        # an unknown regime listed the enacted rules, or checked the plan under its own
        # regime, as if the one asked for had been (found by the hostile pass atk23)
        ("GET", "/ui/rules?regime=ai-diffusio", 400),
        ("GET", "/ui/plans/x/whatif?regime=diffusion", 400),
    ],
)
def test_what_fastapi_refuses_under_ui_is_an_html_page(
    console: tuple[object, Store], method: str, path: str, status: int
) -> None:
    """A /ui path no page serves, a method a page does not take, a query value over its limit:
    refused before any page runs, they were the API's problem+json in the browser."""
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    r = b.client.request(method, path)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in r.headers
    api = b.client.request(method, path.replace("/ui/", "/v1/", 1))
    assert api.headers["content-type"].startswith("application/problem+json")
