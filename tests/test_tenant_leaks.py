"""Another tenant's plan is a missing plan, whatever was done to the database.

A non-admin tenant asking for another tenant's plan id (whole or a prefix) on any route gets
exactly the 404 (or list) a plan that never existed gets, after each kind of tampering with the
plan's row or its ledger entry; the plan's owner and an admin get the 409 that says it was
altered. Table-driven: tampering x route x caller; statuses and problem types, not prose."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from straits.errors import NotFoundError
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store
from straits.store.keys import Keys
from straits.store.note import Signer
from straits.store.records import find_plan, record_plan
from test_api import Api

SIGNER = Signer.generate("straits.test/tenant-leaks")
MISSING = "0123456789abcdef0123456789abcdef"
CONFLICT = "urn:straits:problem:conflict"
_PLANS: dict[str, Any] = {}

# (name, SQL on plan :a (tenant a's) and its entry :seq, SQLite only, the owner still reads it)
TAMPERS = [
    ("none", [], False, True),
    ("plans.tenant", ["UPDATE plans SET tenant = 'b' WHERE id = :a"], False, False),
    ("plans.tenant-blob", ["UPDATE plans SET tenant = x'ff00' WHERE id = :a"], True, False),
    ("plans.result", ["UPDATE plans SET result = '{\"x\": 1}' WHERE id = :a"], False, False),
    ("plans.result-blob", ["UPDATE plans SET result = x'ff00' WHERE id = :a"], True, False),
    ("plans.created_at", ["UPDATE plans SET created_at = 'garbage' WHERE id = :a"], True, False),
    ("plans.ledger_seq-missing", ["UPDATE plans SET ledger_seq = 999 WHERE id = :a"], False, False),
    ("plans.ledger_seq-text", ["UPDATE plans SET ledger_seq = 'zz' WHERE id = :a"], True, False),
    ("plans.ledger_seq-null", ["UPDATE plans SET ledger_seq = NULL WHERE id = :a"], False, False),
    ("plans.ledger_seq-b", ["UPDATE plans SET ledger_seq = :bseq WHERE id = :a"], False, False),
    (
        "ledger.tenant",
        ["UPDATE ledger SET tenant = 'b', tenant_seq = 99 WHERE seq = :seq"],
        False,
        False,
    ),
    ("ledger.tenant-blob", ["UPDATE ledger SET tenant = x'ff00' WHERE seq = :seq"], True, False),
    (
        "ledger.payload",
        ["UPDATE ledger SET body = replace(body, '\"plan_id\"', '\"plan_jd\"') WHERE seq = :seq"],
        False,
        False,
    ),
    (
        "ledger.payload-site",
        ["UPDATE ledger SET body = replace(body, '\"site\"', '\"sitf\"') WHERE seq = :seq"],
        False,
        False,
    ),
]

ROUTES = [
    ("GET", "/v1/plans/{id}", None),
    ("GET", "/v1/plans/{id}/plan", None),
    ("GET", "/v1/plans/{id}/export?to=skypilot", None),
    ("GET", "/v1/plans/{id}/report", None),
    ("DELETE", "/v1/plans/{id}", None),
    ("GET", "/v1/plans/{prefix}", None),
    ("POST", "/v1/impact", lambda ref: {"date": "2025-06-01", "plans": [ref], "replan": False}),
    ("GET", "/ui/plans/{id}", None),
    ("GET", "/ui/plans/{id}/progress", None),
    ("GET", "/ui/plans/{id}/plan.json", None),
    ("GET", "/ui/plans/{id}/report.html", None),
    ("GET", "/ui/plans/{id}/compare", None),
    ("GET", "/ui/plans/{id}/whatif", None),
]


@pytest.fixture
def api(db_url: str, rules: RuleSet, example_path: Path) -> Iterator[tuple[Api, str, int, int]]:
    store = Store(db_url)
    if not _PLANS:
        sc = load_scenario(example_path)
        _PLANS["sc"], _PLANS["plan"] = sc, make_plan(sc, rules=rules, solver="greedy")
    sc, plan = _PLANS["sc"], _PLANS["plan"]
    record_plan(store, sc, plan, rules, {}, tenant="b", actor="t")  # b has a plan too
    a_id, entry = record_plan(store, sc, plan, rules, {}, tenant="a", actor="t")
    _, b_entry = record_plan(store, sc, plan, rules, {}, tenant="b", actor="t")
    app = create_app(store, settings=Settings(max_body_bytes=64 * 1024, max_time_limit=30))
    app.state.ledger_keys = Keys(SIGNER)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store), a_id, entry.seq, b_entry.seq
    store.close()


def _call(api: Api, who: str, method: str, route: str, body: Any, ref: str) -> Any:
    path = route.format(id=ref, prefix=ref[:8])
    tenant, role = ("ops", "admin") if who == "admin" else (who, "planner")
    if path.startswith("/ui/"):
        from straits.web.session import COOKIE

        api.client.cookies.set(COOKIE, api.token(tenant, role))
        try:
            return api.client.request(method, path)
        finally:
            api.client.cookies.clear()
    kw = {"json": body(ref)} if body else {}
    return api.client.request(method, path, headers=api.auth(tenant, role), **kw)


def _shape(r: Any, ref: str) -> tuple[int, str, str]:
    """Status, content type and body with the id (and its prefix) and a page's time (the
    console's footer says when it was made, to the second) written out of it."""
    out = r.text
    for s in (ref, ref[:8]):
        out = out.replace(s, "<id>")
    out = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d", "<time>", out)  # a page's footer
    return r.status_code, r.headers.get("content-type", ""), re.sub(r"\s+", " ", out)


def _type(r: Any) -> str | None:
    try:
        return str(r.json().get("type"))
    except (ValueError, AttributeError):
        return None


@pytest.mark.parametrize("tamper", TAMPERS, ids=[t[0] for t in TAMPERS])
def test_another_tenants_plan_is_a_missing_plan_whatever_was_tampered(
    api: tuple[Api, str, int, int], db_url: str, tamper: tuple[str, list[str], bool, bool]
) -> None:
    client, a_id, seq, b_seq = api
    name, statements, sqlite_only, readable = tamper
    if sqlite_only and not db_url.startswith("sqlite"):
        pytest.skip("only SQLite stores a value of another type in a column")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql), {"a": a_id, "seq": seq, "bseq": b_seq})
    engine.dispose()
    wrong = []
    for method, route, body in ROUTES:
        missing = _call(client, "b", method, route, body, MISSING)
        outsider = _call(client, "b", method, route, body, a_id)
        if _shape(outsider, a_id) != _shape(missing, MISSING):
            wrong.append((route, "b", outsider.status_code, outsider.text[:200]))
        if route.startswith("/ui/") or (method, route) == ("DELETE", "/v1/plans/{id}"):
            continue  # a page, and a finished plan's cancel (409 whatever its state)
        for who in ("a", "admin"):
            r = _call(client, who, method, route, body, a_id)
            expect = 200 if readable else 409
            if r.status_code != expect or (expect == 409 and _type(r) != CONFLICT):
                wrong.append((route, who, r.status_code, r.text[:200]))
    assert wrong == [], f"{name}: {wrong}"
    # the list: b's is what it was, never a 409 for a's plan
    r = client.client.get("/v1/plans", headers=client.auth("b", "planner"))
    assert r.status_code == 200 and a_id not in r.text
    # a's: its plan listed, or the page refused; never silently left out
    r = client.client.get("/v1/plans", headers=client.auth("a", "planner"))
    if r.status_code == 200:
        assert a_id in r.text, name
    else:
        assert (r.status_code, _type(r)) == (409, CONFLICT), (name, r.text[:200])
    # the console's list: b's never shows a's plan; a's shows it (marked unproven) or refuses
    for who in ("a", "b"):
        r = _call(client, who, "GET", "/ui/plans/rows", None, a_id)
        if who == "b":
            assert r.status_code == 200 and a_id not in r.text, name
        else:
            assert (r.status_code == 200 and a_id in r.text) or r.status_code == 409, name
    # the store's lookup by a tenant (SkyPilot's admission, impact): "no plan", never a 409
    for ref in (a_id, a_id[:8]):
        with pytest.raises(NotFoundError):
            find_plan(client.store, ref, tenant="b")
    # b's ledger routes (an entry moved into b's numbering included) never show a's plan id
    h = client.auth("b", "planner")
    r = client.client.get("/v1/ledger/entries", headers=h)
    assert r.status_code in (200, 409) and a_id not in r.text
    for n in (1, 2, 3, 99):
        for path in (f"/v1/ledger/entries/{n}", f"/v1/ledger/entries/{n}/receipt"):
            r = client.client.get(path, headers=h)
            assert a_id not in r.text, (path, r.status_code)


PREFIXED = {
    "b": ["abcd1111" + "0" * 24, "bcde2222"],
    "a": ["abcd3333" + "0" * 24, "abcd1111", "bcde2223"],
}
"""Plans whose ids share prefixes across tenants; a's ``abcd1111`` is a prefix of b's first."""


def _prefixed(db_url: str, rules: RuleSet, example_path: Path) -> Iterator[Api]:
    store = Store(db_url)
    if not _PLANS:
        sc = load_scenario(example_path)
        _PLANS["sc"], _PLANS["plan"] = sc, make_plan(sc, rules=rules, solver="greedy")
    for tenant, ids in PREFIXED.items():
        for plan_id in ids:
            record_plan(
                store,
                _PLANS["sc"],
                _PLANS["plan"],
                rules,
                {},
                tenant=tenant,
                actor="t",
                plan_id=plan_id,
            )
    app = create_app(store, settings=Settings(max_body_bytes=64 * 1024, max_time_limit=30))
    app.state.ledger_keys = Keys(SIGNER)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store)
    store.close()


prefixed = pytest.fixture(_prefixed)

# (b asks for, what b gets: its own plan's id, or the answer of this never-used reference)
# (b asks for, what b gets: its own plan's id, or the answer of this never-used reference)
PREFIX_CASES = [
    ("abcd", "abcd1111" + "0" * 24),  # a prefix of a's two plans too: b's own
    ("bcde222", "bcde2222"),  # and of a's bcde2223
    ("abcd1", "abcd1111" + "0" * 24),  # a's abcd1111 is a whole id, b's a prefix of it
    ("abcd1111", "abcd1111" + "0" * 24),  # a's whole id, a prefix of b's: b's plan
    ("bcde2223", "ffff2223"),  # a's whole id
    ("abcd3", "ffff3"),  # only a's: the answer of a prefix nobody's id has
    ("abcd3333" + "0" * 24, "ffff3333" + "0" * 24),
    ("abc", "fff"),  # under 4 characters: a whole id or nothing
    ("a", "f"),
    ("____", "zzzz"),  # LIKE's wildcards are characters here
    ("%%%%", "zzzz"),
    ("abc%", "zzzz"),
    ("ab_d", "zzzz"),
    ("ABCD", "ZZZZ"),  # ids are compared exactly (SQLite's LIKE ignored case)
    ("BCDE2222", "ZZZZ2222"),
]


@pytest.mark.parametrize(("ref", "same_as"), PREFIX_CASES)
def test_prefixes_never_reach_across_tenants(prefixed: Api, ref: str, same_as: str) -> None:
    h = prefixed.auth("b", "viewer")
    r = prefixed.client.get(f"/v1/plans/{ref}", headers=h)
    if same_as in PREFIXED["b"]:
        assert r.status_code == 200 and r.json()["id"] == same_as, r.text
        return
    other = prefixed.client.get(f"/v1/plans/{same_as}", headers=h)
    expected = other.text.replace(f"'{same_as}'", f"'{ref}'").replace(f"/{same_as}", f"/{ref}")
    assert (r.status_code, r.headers["content-type"], r.text) == (
        other.status_code,
        other.headers["content-type"],
        expected,
    )
    assert r.status_code == 404 and _type(r) == "urn:straits:problem:not-found"


def test_an_admin_sees_every_tenants_ambiguity(prefixed: Api) -> None:
    h = prefixed.auth("ops", "admin")
    r = prefixed.client.get("/v1/plans/abcd", headers=h)
    assert r.status_code == 400 and "several" in r.json()["detail"]
    assert prefixed.client.get("/v1/plans/abcd3", headers=h).status_code == 200
    # a's own two plans share abcd: ambiguous for a, whatever b has
    r = prefixed.client.get("/v1/plans/abcd", headers=prefixed.auth("a", "viewer"))
    assert r.status_code == 400 and _type(r) == "urn:straits:problem:invalid-input"


def test_a_plan_leaving_the_filter_mid_page_does_not_end_the_list(
    api: tuple[Api, str, int, int], db_url: str, rules: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tenant's page is read in two steps (its plans' ids, then their rows): a plan whose
    state changes between them leaves the page, and the next cursor used to be given only
    when the page was full, so the older plans were never listed (PostgreSQL reads each step
    in its own snapshot)."""
    from straits.server import listing

    client, *_ = api
    record_plan(client.store, _PLANS["sc"], _PLANS["plan"], rules, {}, tenant="b", actor="t")
    h = client.auth("b", "planner")
    every = [p["id"] for p in client.client.get("/v1/plans?status=done", headers=h).json()]
    assert len(every) == 3
    real = listing.owned_ids

    def then_changed(s: Any, q: Any, tenant: str, n: int) -> list[str]:
        ids = real(s, q, tenant, n)
        engine = create_engine(db_url)
        with engine.begin() as conn:  # the newest leaves status=done meanwhile
            conn.execute(text("UPDATE plans SET status = 'failed' WHERE id = :i"), {"i": ids[0]})
        engine.dispose()
        return ids

    monkeypatch.setattr(listing, "owned_ids", then_changed)
    r = client.client.get("/v1/plans?status=done&limit=1", headers=h)
    monkeypatch.setattr(listing, "owned_ids", real)
    seen = [p["id"] for p in r.json()]
    while "next" in r.links:
        r = client.client.get(r.links["next"]["url"], headers=h)
        seen += [p["id"] for p in r.json()]
    assert every[2] in seen  # the oldest is still reached
