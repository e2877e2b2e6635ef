"""What a second tenant can still learn, and the console's event loop (api30).

Tenant ``beta`` asks about tenant ``hz-cloud``'s plan and ledger entry on every route that
takes an id (the routes read from the app, so a new one is covered) and in the plan documents
``POST /v1/exports`` and ``POST /v1/impact`` take: each answer must be the one for an id that
does not exist (status, content type, body with the id masked). Then the console's sign-in
and submit form must not run their blocking work on the event loop."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from straits.cli.plan_source import record
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.plandoc import from_store
from straits.rules import RuleSet
from straits.store import Store
from straits.store.tokens import create_token
from straits.web import session
from test_console import Browser
from test_hostile_export_plans import EXAMPLE

OWNER, OTHER = "hz-cloud", "beta"
#: a value for each path parameter a route may take: the owner's and one nobody has
#: (filled in by the fixture); a route with a parameter not named here fails the test
PATH_PARAMS = ("plan_id", "seq")
#: values for the query parameters a route requires
REQUIRED_QUERY = {"to": "slurm"}
SKIPPED = {"/static/{name}"}  # the console's files: no tenant's id


class Tenants:
    def __init__(self, app: object, store: Store, doc: dict[str, Any]) -> None:
        self.app, self.store, self.doc = app, store, doc
        self.token = create_token(store, OTHER, "planner")[0]
        self.browser = Browser(app, store)
        self.browser.sign_in(self.token)
        self.plan_id: str = doc["id"]
        # an id of the same shape nobody recorded, with another 6-character prefix
        missing = self.plan_id
        while missing[:6] == self.plan_id[:6]:
            missing = secrets.token_hex(len(self.plan_id) // 2)[: len(self.plan_id)]
        self.missing = missing

    def get(self, method: str, path: str, **kw: Any) -> Any:
        headers = {} if path.startswith("/ui") else {"Authorization": f"Bearer {self.token}"}
        return self.browser.client.request(
            method, path, headers=headers, follow_redirects=False, **kw
        )


@pytest.fixture
def tenants(console: tuple[object, Store], rules: RuleSet) -> Iterator[Tenants]:
    app, store = console
    sc = load_scenario(EXAMPLE)
    plan = make_plan(sc, rules=rules, solver="greedy")
    plan_id, _, _ = record(store, sc, plan, rules, {}, tenant=OWNER, actor="t")
    doc: dict[str, Any] = json.loads(json.dumps(from_store(store, plan_id).to_json()))
    yield Tenants(app, store, doc)


def _routes(app: Any) -> list[tuple[str, str, list[str]]]:
    """Every (method, path, required query parameters) of the app whose path takes a value."""
    out = []
    for r in app.routes:
        contexts = getattr(r, "effective_route_contexts", None)
        if callable(contexts):
            contexts = contexts()
        items = list(contexts) if contexts is not None else [r]
        for c in items:
            path = getattr(c, "path", "")
            if "{" not in path or path in SKIPPED:
                continue
            dependant = c.dependant
            required = [q.name for q in dependant.query_params if q.field_info.is_required()]
            for method in sorted(getattr(c, "methods", None) or ()):
                out.append((method, path, required))
                if method == "GET":
                    out.append(("HEAD", path, required))
    return out


def _masked(text: str, *ids: str) -> str:
    for i in sorted(ids, key=len, reverse=True):
        text = text.replace(i, "ID")
    return text


def test_every_route_that_takes_an_id_answers_another_tenants_as_a_missing_one(
    tenants: Tenants,
) -> None:
    """Another tenant's plan id (full, upper case, 6-character prefix) and ledger number on
    every route and console page that takes one: the same status, content type and body as
    for an id nobody recorded (only the id differs)."""
    routes = _routes(tenants.app)
    assert any(p == "/v1/plans/{plan_id}" for _, p, _ in routes)  # the list is the app's
    assert any(p.startswith("/ui/") for _, p, _ in routes)
    forms = [
        ({"plan_id": tenants.plan_id, "seq": "1"}, {"plan_id": tenants.missing, "seq": "999999"}),
        ({"plan_id": tenants.plan_id[:6]}, {"plan_id": tenants.missing[:6]}),
        ({"plan_id": tenants.plan_id.upper()}, {"plan_id": tenants.missing.upper()}),
    ]
    differ = []
    for method, path, required in routes:
        names = re.findall(r"\{(\w+)\}", path)
        assert set(names) <= set(PATH_PARAMS), f"{path}: give its parameters a value here"
        assert set(required) <= set(REQUIRED_QUERY), f"{path}: give {required} a value here"
        params = {q: REQUIRED_QUERY[q] for q in required}
        for theirs, nobodys in forms:
            if not set(names) <= set(theirs):
                continue
            a = tenants.get(method, path.format(**theirs), params=params)
            b = tenants.get(method, path.format(**nobodys), params=params)
            ids = (*theirs.values(), *nobodys.values())
            seen = (a.status_code, a.headers.get("content-type"), _masked(a.text, *ids))
            want = (b.status_code, b.headers.get("content-type"), _masked(b.text, *ids))
            if seen != want or a.status_code < 400:
                differ.append((method, path, theirs, seen[:2], want[:2]))
    assert differ == []


def _edited(doc: dict[str, Any], plan_id: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out.pop("digest")
    out["id"] = plan_id
    serve = next(a for a in out["assignments"] if a["stage"] == "serve-intl")
    serve["cost_usd"] += 1.0
    return out


def _export_answer(t: Tenants, doc: dict[str, Any]) -> tuple[int, str | None, str | None]:
    r = t.get("POST", "/v1/exports", params={"to": "slurm", "run": "true"}, json=doc)
    return r.status_code, r.headers.get("content-type"), r.headers.get("x-straits-plan-id")


def test_a_document_under_another_tenants_plan_id_is_answered_as_under_a_missing_one(
    tenants: Tenants,
) -> None:
    """`POST /v1/exports` of an edited plan keeping another tenant's plan id was a 400 ("a
    recorded plan has this id"), and of that tenant's plan whose stored row was altered a 409,
    where an id nobody recorded exports: an answer that said the id exists. Only the caller's
    tenant's plans are compared now; another's id exports as a missing one does, and
    `/v1/impact` answers both alike."""
    t = tenants
    theirs, nobodys = _edited(t.doc, t.plan_id), _edited(t.doc, t.missing)
    assert _export_answer(t, theirs) == (200, "application/gzip", t.plan_id)
    assert _export_answer(t, nobodys) == (200, "application/gzip", t.missing)
    with t.store.session() as s:  # the owner's stored copy altered: the owner's 409, not beta's
        s.execute(text("UPDATE plans SET result = 'not json' WHERE id = :i"), {"i": t.plan_id})
        s.commit()
    unedited = copy.deepcopy(t.doc)
    assert _export_answer(t, unedited)[0] == 200
    answers = []
    for doc in (theirs, nobodys):
        body = {"date": "2025-06-01", "replan": False, "documents": [doc]}
        r = t.get("POST", "/v1/impact", json=body)
        answers.append((r.status_code, _masked(r.text, t.plan_id, t.missing)))
    assert answers[0] == answers[1] and answers[0][0] == 200


# --- the console's blocking work off the event loop ---------------------------------------------
class Stalled:
    """A stand-in for blocking work (a slow token hash, a slow refusal write): the first call
    waits until the test releases it, and notes whether it was released or gave up."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.entered, self.release = threading.Event(), threading.Event()
        self.released: bool | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.released is None:
            self.entered.set()
            # bounded only so that a blocked loop fails the test instead of hanging it
            self.released = self.release.wait(timeout=5)
        return self.real(*args, **kwargs)


@pytest.mark.parametrize(
    ("stalls", "method", "path", "form"),
    [
        ("sign-in", "GET", "/ui/", None),
        ("sign-in", "POST", "/ui/submit", {"text": "name: x"}),
        ("sign-in", "GET", "/ui/no-such-page", None),
        ("refusal", "POST", "/ui/submit", {"text": "name: x", "csrf": "forged"}),
        ("refusal", "POST", "/v1/impact", {"date": "2025-06-01", "tenant": OWNER}),
    ],
    ids=["page", "submit", "error-page", "submit-refused", "impact-refused"],
)
def test_a_slow_sign_in_or_refusal_does_not_hold_up_healthz(
    tenants: Tenants,
    monkeypatch: pytest.MonkeyPatch,
    stalls: str,
    method: str,
    path: str,
    form: dict[str, str] | None,
) -> None:
    """The console's pages looked their session's token up, and its submit form logged a
    refusal, on the event loop: while one sign-in's hash or one refusal's write was slow, no
    other request of any tenant (`/healthz` either) was answered. `/healthz` must answer
    while the stand-in holds the work, and the test then releases it."""
    import straits.server.auth as auth
    from straits.store import audit, tokens

    t = tenants
    api = path.startswith("/v1")
    data = {"csrf": t.browser.csrf(), **(form or {})} if form and not api else None
    headers = {"Authorization": f"Bearer {t.token}"} if api else {}
    if stalls == "sign-in":
        stand_in = Stalled(tokens.authenticate)
        monkeypatch.setattr(session, "authenticate", stand_in)  # as session.current calls it
    else:
        stand_in = Stalled(audit.log_refusal)
        monkeypatch.setattr(auth, "log_refusal", stand_in)  # as auth.refuse calls it
    cookies = dict(t.browser.client.cookies.items())

    async def race() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=t.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(
            transport=transport, base_url="https://testserver", cookies=cookies
        ) as c:
            slow = asyncio.ensure_future(
                c.request(method, path, data=data, json=form if api else None, headers=headers)
            )
            await asyncio.to_thread(stand_in.entered.wait, 10)
            health = await c.get("/healthz")
            stand_in.release.set()
            return health.status_code, (await slow).status_code

    health, answer = asyncio.run(race())
    assert health == 200
    assert stand_in.released is True  # released by the test after /healthz, not timed out
    assert answer == {"/ui/": 200, "/ui/submit": 400, "/ui/no-such-page": 404}.get(
        path if stalls == "sign-in" else "", 403
    )
