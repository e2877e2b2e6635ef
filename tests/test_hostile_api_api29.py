"""A hostile pass on the API as a second tenant and an attacker (api29): idempotency keys across
tenants and given twice, request bodies parsed on the event loop, ledger numbers that are not
decimal digits, and console CSRF tokens beyond ASCII. Each case but the first failed before its
fix; what held is in docs/robustness.md."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from hostile_corpus import DESIGN_REQUEST
from straits.store import ledger
from straits.store.tokens import create_token
from test_api import Api, assert_problem, running_api, scenario_doc
from test_console import CSRF, Browser


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


RECORD = "/v1/check?record=true"


# --- idempotency keys are each tenant's own ---------------------------------------------------
def test_one_key_sent_at_once_by_two_tenants_records_once_for_each(api: Api) -> None:
    """Keys are unique per tenant: the same key sent at once by two tenants is one entry of
    each (numbered 1 in each view), every retry the entry of its own tenant; another request
    under a key only the other tenant used is recorded, not a 409 that would say it was used."""
    a, b = api.auth("alpha", "planner"), api.auth("beta", "planner")

    def send(h: dict[str, str]) -> Any:
        return api.client.post(RECORD, json=DESIGN_REQUEST, headers={**h, "Idempotency-Key": "k"})

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, [a, b] * 3))
    for r in answers:
        assert r.status_code == 200, r.text
        assert r.headers["x-straits-ledger-seq"] == "1"
    assert (
        sorted(r.headers.get("idempotent-replayed", "") for r in answers) == [""] * 2 + ["true"] * 4
    )
    assert ledger.count(api.store, "alpha") == ledger.count(api.store, "beta") == 1
    other = {**DESIGN_REQUEST, "regime": "ai-diffusion"}
    c = api.auth("gamma", "planner")
    r = api.client.post(RECORD, json=other, headers={**c, "Idempotency-Key": "k"})
    assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    assert r.headers["x-straits-ledger-seq"] == "1"


# --- a header that takes one value, given twice ---------------------------------------------
@pytest.mark.parametrize("keys", [("k1", "k2"), ("k1", "k1")])
def test_an_idempotency_key_given_twice_is_a_400(
    api: Api, example_path: Path, keys: tuple[str, str]
) -> None:
    """Two `Idempotency-Key` headers were read as the first: a check recorded under k1 was
    replayed to a request that also carried k2, and a plan was queued under one key of two. A
    request has one key; two are a 400 naming the header, nothing recorded or queued."""
    h = api.auth("alpha", "planner")
    first = api.client.post(RECORD, json=DESIGN_REQUEST, headers={**h, "Idempotency-Key": "k1"})
    assert first.status_code == 200
    both = httpx.Headers([*h.items(), ("Idempotency-Key", keys[0]), ("Idempotency-Key", keys[1])])
    r = api.client.post(RECORD, json=DESIGN_REQUEST, headers=both)
    assert assert_problem(r, 400)["path"] == "Idempotency-Key"
    assert ledger.count(api.store, "alpha") == 1
    doc = scenario_doc(example_path)
    planner = api.auth("hz-cloud", "planner").items()
    owner = httpx.Headers([*planner, ("Idempotency-Key", keys[0]), ("Idempotency-Key", keys[1])])
    plan = api.client.post("/v1/plans", params={"solver": "greedy"}, json=doc, headers=owner)
    assert assert_problem(plan, 400)["path"] == "Idempotency-Key"
    listed = api.client.get("/v1/plans", headers=api.auth("hz-cloud", "viewer"))
    assert listed.json() == []


# --- bodies parsed off the event loop -----------------------------------------------------------
def test_bodies_and_task_yaml_are_parsed_off_the_event_loop(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON bodies and the SkyPilot task YAML were parsed on the event loop: 2 MiB of
    `[{},{},...]` took over a second and a task YAML of 2 MiB seconds, during which no other
    request (another tenant's, `/healthz`) was answered. Both run in the thread pool now."""
    import straits.server.bodies as bodies
    import straits.server.skypilot_routes as sky
    from straits.admission import parse_user_request, task_of
    from straits.loading import parse_json

    on_loop: list[str] = []

    def watched(name: str, fn: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
                on_loop.append(name)
            except RuntimeError:
                pass
            return fn(*args, **kwargs)

        return call

    monkeypatch.setattr(bodies, "parse_json", watched("parse_json", parse_json))
    monkeypatch.setattr(sky, "parse_user_request", watched("request", parse_user_request))
    monkeypatch.setattr(sky, "task_of", watched("task_of", task_of))
    h = api.auth("alpha", "viewer")
    r = api.client.post("/v1/check", json=DESIGN_REQUEST, headers=h)
    assert r.status_code == 200
    task = "name: cpu-only\nresources:\n  cpus: 4\n"
    r = api.client.post("/v1/skypilot/policy", content=json.dumps({"task": task}), headers=h)
    assert r.status_code == 200, r.text
    assert on_loop == []


# --- ledger numbers are decimal digits --------------------------------------------------------
@pytest.mark.parametrize("written", ["1_0", "+1", "%201", "1.0", "1e0", "0x1"])
def test_a_ledger_number_that_is_not_decimal_digits_is_a_400(api: Api, written: str) -> None:
    """`GET /v1/ledger/entries/1_0` served entry 10, and `1.0`, `+1`, ` 1` entry 1: pydantic
    reads an integer leniently. A number is decimal digits; anything else is a 400 naming it."""
    h = api.auth("alpha", "planner")
    for _ in range(10):
        assert api.client.post(RECORD, json=DESIGN_REQUEST, headers=h).status_code == 200
    for path, name in (
        (f"/v1/ledger/entries/{written}", "seq"),
        (f"/v1/ledger/entries/{written}/receipt", "seq"),
        (f"/v1/ledger/entries?since={written}", "since"),
        (f"/v1/ledger/entries?limit={written}", "limit"),
        (f"/v1/ledger/consistency?first={written}&second=1", "first"),
        (f"/v1/ledger/checkpoint?since={written}", "since"),
    ):
        assert assert_problem(api.client.get(path, headers=h), 400)["path"] == name, path
    assert api.client.get("/v1/ledger/entries/10", headers=h).json()["seq"] == 10
    assert api.client.get("/v1/ledger/entries/-1", headers=h).status_code == 404


# --- console CSRF tokens beyond ASCII -----------------------------------------------------------
def test_a_csrf_token_beyond_ascii_is_a_403_not_a_500(console: tuple[object, Any]) -> None:
    """`hmac.compare_digest` of two strings raises TypeError when one holds a character beyond
    ASCII: a sign-in, sign-out or submit form posted with `csrf=é` was a 500 with an incident.
    It is the 403 of any wrong token; another tenant's token is refused alike."""
    app, store = console
    alpha = Browser(app, store)
    beta = Browser(app, store)
    page = alpha.client.get("/ui/login")
    assert CSRF.search(page.text) is not None
    token = create_token(store, "alpha", "planner")[0]
    r = alpha.client.post("/ui/login", data={"token": token, "csrf": "é"}, follow_redirects=False)
    assert r.status_code == 403
    alpha.sign_in(token)
    theirs = beta.sign_in(create_token(store, "beta", "planner")[0])
    for csrf in ("é", "ü" * 40, theirs):
        for path, form in (("/ui/submit", {"text": "name: x"}), ("/ui/logout", {})):
            r = alpha.client.post(path, data={"csrf": csrf, **form}, follow_redirects=False)
            assert r.status_code == 403, (path, csrf)
    assert alpha.client.get("/ui/", follow_redirects=False).status_code == 200


def test_a_content_type_given_twice_and_a_lenient_integer_are_400s(api: Api) -> None:
    """Two Content-Type headers (a singleton field, RFC 9110 8.3) were read as the first: one
    body was JSON to this server and YAML to anything that read the other. `?limit=1_0` on the
    plan list was a page of 10, `?seed=1_0` a plan seeded 10."""
    h = api.auth("alpha", "planner")
    body = json.dumps(DESIGN_REQUEST)
    two = httpx.Headers(
        [*h.items(), ("Content-Type", "application/json"), ("Content-Type", "application/yaml")]
    )
    r = api.client.post("/v1/check", content=body, headers=two)
    assert assert_problem(r, 400)["path"] == "Content-Type"
    r = api.client.post("/v1/check", content=body, headers={**h, "Content-Type": "text/yaml"})
    assert r.status_code == 200
    assert assert_problem(api.client.get("/v1/plans?limit=1_0", headers=h), 400)["path"] == "limit"
    r = api.client.post("/v1/plans?seed=1_0", json={}, headers=h)
    assert assert_problem(r, 400)["path"] == "seed"
    # and a decimal one: `?time_limit=1_0` planned for 10 s, `%205%20` for 5 (the CLI refuses)
    for written in ("1_0", "%205%20", "5%20", "nan", "0x10", "1e1_0"):
        r = api.client.post(f"/v1/plans?time_limit={written}", json={}, headers=h)
        assert assert_problem(r, 400)["path"] == "time_limit", written
    for written in ("5", "2.5", "1e1", ".5e1"):  # decimals as the CLI takes them: the body next
        r = api.client.post(f"/v1/plans?time_limit={written}", json={}, headers=h)
        assert assert_problem(r, 400)["path"] != "time_limit", written
    spec = api.client.get("/openapi.json").json()
    limit = next(p for p in spec["paths"]["/v1/plans"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["minimum"] == 1 and limit["schema"]["maximum"] == 1000
    assert "ge" not in limit["schema"] and "le" not in limit["schema"]
    post = spec["paths"]["/v1/plans"]["post"]["parameters"]
    seconds = next(p for p in post if p["name"] == "time_limit")["schema"]
    assert seconds["minimum"] == 0.5 and seconds["maximum"] == 3600
