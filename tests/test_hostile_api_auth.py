"""A hostile pass on the API as a multi-tenant service (atk14): the Allow header of every 405,
Authorization headers given twice, query parameters given twice, and the console's cookie of a
token that was revoked. Each case failed before its fix; what held is in docs/robustness.md."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from straits.server import create_app
from straits.store import Store
from straits.store.audit import refusals
from straits.store.tokens import create_token, revoke_token
from test_api import Api, assert_problem, running_api, scenario_doc, wait_done


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


# --- 405: Allow names every method the path takes --------------------------------------------
ALLOW = [
    # path, method, the methods the path takes
    ("/v1/plans/{id}", "PATCH", {"GET", "HEAD", "DELETE"}),
    ("/v1/plans/{id}", "POST", {"GET", "HEAD", "DELETE"}),
    ("/v1/plans", "PUT", {"GET", "HEAD", "POST"}),
    ("/v1/chips", "POST", {"GET", "HEAD"}),
    ("/v1/check", "GET", {"POST"}),
    ("/healthz", "DELETE", {"GET", "HEAD"}),
    ("/openapi.json", "DELETE", {"GET", "HEAD"}),
    ("/ui/", "POST", {"GET", "HEAD"}),
    ("/ui/submit", "PUT", {"GET", "HEAD", "POST"}),
]


@pytest.mark.parametrize(("path", "method", "allowed"), ALLOW)
def test_a_405_names_every_method_of_the_path(
    api: Api, path: str, method: str, allowed: set[str]
) -> None:
    """Allow named only the first route that matched the path: `PATCH /v1/plans/{id}` said
    `Allow: GET` though DELETE cancels a plan there, and GET routes left out HEAD, which every
    one of them answers (`server/head.py`; `/openapi.json` said `GET, HEAD`)."""
    r = api.client.request(
        method, path.replace("{id}", "0" * 32), headers=api.auth("hz-cloud", "planner")
    )
    assert r.status_code == 405
    if not path.startswith("/ui/"):
        assert_problem(r, 405)
    assert {m.strip() for m in r.headers["allow"].split(",")} == allowed


# --- Authorization given twice ----------------------------------------------------------------
def test_two_authorization_headers_are_refused_whichever_comes_first(api: Api) -> None:
    """Two Authorization headers were read as the first: a proxy that adds its own token
    after the client's (or a client that adds one after a proxy's) had the request run as
    whichever came first. A request has one (RFC 9110 11.6.2): two are a 401, logged."""
    good = f"Bearer {api.token('hz-cloud', 'viewer')}"
    other = f"Bearer {api.token('other', 'admin')}"
    for pair in ((good, other), (other, good), (good, good), (good, "")):
        headers = httpx.Headers([("Authorization", pair[0]), ("Authorization", pair[1])])
        r = api.client.get("/v1/chips", headers=headers)
        body = assert_problem(r, 401)
        assert "Authorization" in body["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert any("Authorization" in e.reason for e in refusals(api.store))
    one = api.client.get("/v1/chips", headers={"Authorization": good})
    assert one.status_code == 200


# --- query parameters given twice --------------------------------------------------------------
REPEATED = [
    # url, the parameter named
    ("/v1/plans?status=done&status=failed", "status"),
    ("/v1/plans?limit=1&limit=1000", "limit"),
    ("/v1/plans?tenant=hz-cloud&tenant=other", "tenant"),
    ("/v1/ledger/entries?since=1&since=5", "since"),
    ("/v1/ledger/verify?quick=true&quick=false", "quick"),
    ("/v1/ledger/consistency?first=0&second=0&second=0", "second"),
    ("/v1/rules?regime=enacted&regime=ai-diffusion", "regime"),
    ("/v1/plans/{id}/export?to=slurm&format=zip&format=tar", "format"),
]


@pytest.mark.parametrize(("url", "name"), REPEATED)
def test_a_query_parameter_given_twice_is_a_400_naming_it(api: Api, url: str, name: str) -> None:
    """A parameter that takes one value, given twice, was read as its last value: `status=done&
    status=failed` listed the failed plans only, to a client that meant either. Now a 400 whose
    `path` names the parameter; those that take a list (`pack`, `run`) still repeat."""
    r = api.client.get(url.replace("{id}", "0" * 32), headers=api.auth("hz-cloud", "viewer"))
    body = assert_problem(r, 400)
    assert body["path"] == name


def test_list_parameters_still_repeat_and_refusals_stay_401_first(api: Api) -> None:
    h = api.auth("hz-cloud", "viewer")
    assert api.client.get("/v1/rules?pack=us-ear&pack=eu-gdpr", headers=h).status_code == 200
    # no token: the 401 comes before any look at the query
    assert_problem(api.client.get("/v1/plans?status=done&status=failed"), 401)


def test_the_console_refuses_a_repeated_parameter_with_an_html_page(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    app = create_app(store)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as b:
        _sign_in(b, create_token(store, "hz-cloud", "viewer")[0])
        r = b.get("/ui/rules?regime=enacted&regime=ai-diffusion")
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("text/html")
        assert "regime" in r.text
        assert b.get("/ui/rules?regime=ai-diffusion").status_code == 200
    store.close()


# --- the console's cookie of a revoked token -------------------------------------------------
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _sign_in(b: TestClient, token: str) -> None:
    m = CSRF.search(b.get("/ui/login").text)
    assert m is not None
    r = b.post("/ui/login", data={"token": token, "csrf": m.group(1)}, follow_redirects=False)
    assert r.status_code == 303


def test_a_revoked_tokens_session_cookie_is_cleared(tmp_path: Path) -> None:
    """The console's cookie holds the bearer token. Once the token was revoked, every page
    sent the browser to sign in, and signing out did too, but nothing cleared the cookie: the
    browser kept the revoked secret for the rest of its 8 hours. Now the redirect to sign-in
    deletes a session cookie the server refused."""
    store = Store(f"sqlite:///{tmp_path / 'c.db'}")
    app = create_app(store)
    token, row = create_token(store, "hz-cloud", "viewer")
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as b:
        _sign_in(b, token)
        m = CSRF.search(b.get("/ui/").text)
        assert m is not None
        revoke_token(store, row.id)
        for method, path in (("GET", "/ui/"), ("GET", "/ui/plans/rows"), ("POST", "/ui/logout")):
            b.cookies.clear()
            r = b.request(
                method,
                path,
                data={"csrf": m.group(1)} if method == "POST" else None,
                headers={"Cookie": f"straits_session={token}"},
                follow_redirects=False,
            )
            assert r.status_code == 303 and r.headers["location"] == "/ui/login"
            cleared = [c for c in r.headers.get_list("set-cookie") if "straits_session=" in c]
            assert cleared and "Max-Age=0" in cleared[0], r.headers
        # a visitor with no cookie is sent to sign in without a Set-Cookie
        r = b.get("/ui/", follow_redirects=False)
        assert r.status_code == 303 and not r.headers.get_list("set-cookie")
    store.close()


def test_another_tenants_plan_is_404_on_every_route_and_page(api: Api, example_path: Path) -> None:
    """What held, kept as a test: another tenant's plan, by its id or a prefix, is a 404
    exactly as a missing one on every plan route, whatever that tenant's token's role."""
    h = api.auth("hz-cloud", "planner")
    r = api.client.post(
        "/v1/plans?solver=greedy&time_limit=2", json=scenario_doc(example_path), headers=h
    )
    plan_id = r.json()["id"]
    wait_done(api, plan_id, h)
    missing = "f" * 32
    for who in ("viewer", "planner"):
        o = api.auth("other", who)
        for ref in (plan_id, plan_id[:6], missing):
            for method, path in (
                ("GET", f"/v1/plans/{ref}"),
                ("GET", f"/v1/plans/{ref}/plan"),
                ("GET", f"/v1/plans/{ref}/report"),
                ("GET", f"/v1/plans/{ref}/export?to=slurm"),
            ):
                assert_problem(api.client.request(method, path, headers=o), 404)
            r = api.client.post(
                "/v1/impact", json={"date": "2026-01-01", "plans": [ref]}, headers=o
            )
            assert_problem(r, 404)
        d = api.client.delete(f"/v1/plans/{plan_id}", headers=o)
        assert_problem(d, 403 if who == "viewer" else 404)  # the role first, for any id


# --- the audit log ---------------------------------------------------------------------------
FORGED = "straits.audit: refused GET /v1/x -> 403 (forged) token=abc tenant=hz-cloud"


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        # a body over the limit: the path is the server's percent-decoded scope["path"]
        ("POST", "/x\n" + FORGED, [(b"content-length", b"999999999")]),
        ("POST", "/v1/check\r\n" + FORGED, [(b"content-length", b"999999999")]),
        # no token: the path as Starlette gives it (newlines dropped, other controls kept)
        ("GET", "/v1/plans/x\x1b[2K\x1b[1G" + FORGED.replace("/", "|"), []),
    ],
)
def test_a_request_path_cannot_forge_lines_of_the_audit_log(
    api: Api, caplog: pytest.LogCaptureFixture, method: str, path: str, headers: list[Any]
) -> None:
    """The audit log line of a refusal held the request's path as the client sent it,
    percent-decoded: `POST /x%0Astraits.audit: refused ...` with a Content-Length over the
    limit wrote a second, forged line into the audit log (and an ANSI escape rewrote the
    operator's terminal line). Now every character that is not printable is escaped."""
    app = api.client.app
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("192.0.2.1", 1),
        "server": ("testserver", 80),
        "scheme": "http",
        "root_path": "",
        "http_version": "1.1",
        "asgi": {"version": "3.0"},
    }
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    async def call() -> None:
        await app(scope, receive, send)

    # in a thread of its own: Playwright's sync API (the browser tests, earlier in the same
    # process) leaves an event loop running in this one, where asyncio.run refuses to start
    with caplog.at_level(logging.INFO, logger="straits"), ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, call()).result(timeout=60)
    assert sent[0]["status"] in (401, 413)
    lines = [r.getMessage() for r in caplog.records if r.name == "straits.audit"]
    assert lines, caplog.text
    for line in lines:
        assert "\n" not in line and "\r" not in line and "\x1b" not in line, line
    assert any("\\x0a" in line or "\\x1b" in line for line in lines), lines


# --- revocation while a request is in flight -----------------------------------------------
def test_a_token_revoked_while_it_is_read_is_not_trusted_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verified token is trusted for a second, and a revocation in this process clears that
    trust at once. But a request whose token was read from the database just before the
    revocation committed cached it afterwards: the revoked token was honoured for another
    second in the very process that revoked it. Now a read that a revocation overtook is not
    cached (and is asked again)."""
    from straits.errors import AuthError
    from straits.store import tokens

    store = Store(f"sqlite:///{tmp_path / 't.db'}")
    token, row = create_token(store, "hz-cloud", "viewer")
    read = tokens._authenticate
    raced: list[bool] = []

    def racing(store_: Store, token_: str | None) -> tokens.Principal:
        who = read(store_, token_)
        if not raced:  # the revocation lands between the read and the cache
            raced.append(True)
            revoke_token(store, row.id)
        return who

    monkeypatch.setattr(tokens, "_authenticate", racing)
    with contextlib.suppress(AuthError):  # in flight: either answer is right
        tokens.authenticate(store, token)
    with pytest.raises(AuthError, match="revoked"):
        tokens.authenticate(store, token)
    store.close()


# --- trailing slashes ------------------------------------------------------------------------
SLASHES = [
    # path, Location
    ("/v1/plans/?limit=5", "/v1/plans?limit=5"),
    ("/v1/chips/", "/v1/chips"),
    ("/ui/ledger/", "/ui/ledger"),
    ("/healthz/", "/healthz"),
    ("/v1/plans/abc/plan/", "/v1/plans/abc/plan"),
]


@pytest.mark.parametrize(("path", "location"), SLASHES)
def test_a_trailing_slash_redirects_on_this_host_whatever_the_host_header(
    api: Api, path: str, location: str
) -> None:
    """Starlette's redirect of a path with a trailing slash was absolute, built from the
    request's Host header: `Host: evil.example` on `GET /v1/plans/` answered `Location:
    http://evil.example/v1/plans` (a poisoned cache or proxy sends every client there, with
    whatever it sends). The redirect is relative now; a path no route takes is a 404 problem."""
    r = api.client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 307
    assert r.headers["location"] == location
    assert_problem(api.client.get("/v1/nothing/", follow_redirects=False), 404)
    r = api.client.get("http://testserver//evil.example/", follow_redirects=False)
    assert r.status_code == 404, r.headers  # never a Location to another host
