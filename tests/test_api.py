"""The REST API: same JSON as the CLI, tokens and roles, tenant isolation, refusals logged,
size limits, background plans, no stack traces."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store, ledger
from straits.store.audit import refusals
from straits.store.tables import PlanRow, ScenarioRow
from straits.store.tokens import create_token, revoke_token
from test_cli import straits
from test_rules_engine import DESIGN_REQUEST

ESTIMATE: dict[str, Any] = {
    "model": {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32},
    "tokens": 1e11,
    "chip": "H100-SXM",
    "chips": 64,
}


class Api:
    def __init__(self, client: TestClient, store: Store) -> None:
        self.client, self.store = client, store
        self.tokens: dict[str, str] = {}

    def token(self, tenant: str, role: str) -> str:
        key = f"{tenant}/{role}"
        if key not in self.tokens:
            self.tokens[key] = create_token(self.store, tenant, role)[0]
        return self.tokens[key]

    def auth(self, tenant: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, role)}"}


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


def running_api(db_url: str) -> Iterator[Api]:
    """The API over ``db_url`` in a test client (64 KiB bodies, 30 s plans): the ``api``
    fixture's, for other modules' fixtures to yield from."""
    store = Store(db_url)
    app = create_app(store, settings=Settings(max_body_bytes=64 * 1024, max_time_limit=30))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store)
    store.close()


def scenario_doc(example_path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(example_path.read_text())
    out: dict[str, Any] = json.loads(json.dumps(doc, default=lambda o: o.isoformat()))
    return out


PROBLEM_KINDS = {
    400: "invalid-input",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
    409: "conflict",
    413: "body-too-large",
    415: "unsupported-encoding",
    500: "internal-error",
    503: "unavailable",
}


def assert_problem(r: Any, status: int) -> dict[str, Any]:
    """An RFC 9457 problem of ``status``: the shape every 4xx and 5xx answer has."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["type"] == f"urn:straits:problem:{PROBLEM_KINDS[status]}"
    assert body["status"] == status and body["title"] and body["detail"]
    assert {"instance", "path", "expected", "errors", "error"} <= set(body)
    return body


def wait_done(api: Api, plan_id: str, headers: dict[str, str], limit: float = 120) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        job = api.client.get(f"/v1/plans/{plan_id}", headers=headers).json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"plan {plan_id} did not finish: {job}")


# --- same answers as the CLI ---------------------------------------------------------------------
def test_check_answers_exactly_as_the_cli(api: Api) -> None:
    h = api.auth("kunlun", "viewer")
    for body in (DESIGN_REQUEST, [DESIGN_REQUEST, {**DESIGN_REQUEST, "regime": "ai-diffusion"}]):
        r = api.client.post("/v1/check", json=body, headers=h)
        assert r.status_code == 200, r.text
        cli = straits("check", "--json", stdin=json.dumps(body))
        assert r.json() == json.loads(cli.stdout)


def test_estimate_answers_exactly_as_the_cli(api: Api) -> None:
    r = api.client.post("/v1/estimate", json=ESTIMATE, headers=api.auth("a", "viewer"))
    assert r.status_code == 200, r.text
    assert r.json() == json.loads(straits("estimate", "--json", stdin=json.dumps(ESTIMATE)).stdout)


def test_chips_and_rules_match_the_cli(api: Api) -> None:
    h = api.auth("a", "viewer")
    assert api.client.get("/v1/chips", headers=h).json() == json.loads(
        straits("chips", "--json").stdout
    )
    r = api.client.get("/v1/rules", params={"date": "2025-04-10"}, headers=h)
    assert r.json() == json.loads(straits("rules", "list", "--date", "2025-04-10", "--json").stdout)


def test_bad_input_is_400_with_the_field_path(api: Api) -> None:
    h = api.auth("a", "viewer")
    r = api.client.post("/v1/check", json={**DESIGN_REQUEST, "action": "teleport"}, headers=h)
    assert r.status_code == 400
    assert r.json()["path"] == "action"
    r = api.client.post("/v1/check", content=b"{not json", headers=h)
    # read as YAML or JSON (the body may be either): a 400 problem
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/problem+json")
    r = api.client.post("/v1/check", json=[DESIGN_REQUEST, {"date": "x"}], headers=h)
    assert r.status_code == 400 and r.json()["path"].startswith("[1]")
    r = api.client.get("/v1/rules", params={"date": "yesterday"}, headers=h)
    assert r.status_code == 400 and "date" in r.json()["error"]
    # a misspelt pack answered 200 with no rule, as if none were in force (atk24)
    r = api.client.get("/v1/rules", params={"pack": ["us-ear", "us-eer"]}, headers=h)
    assert r.status_code == 400 and r.json()["path"] == "pack" and "'us-eer'" in r.json()["error"]


# --- tokens, roles, refusals ---------------------------------------------------------------------
def test_refusals_are_401_or_403_and_logged(api: Api) -> None:
    viewer = api.auth("a", "viewer")
    cases = [
        (api.client.get("/v1/chips"), 401),
        (api.client.get("/v1/chips", headers={"Authorization": "Bearer st_nope_nope"}), 401),
        (api.client.get("/v1/chips", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401),
        (api.client.get("/v1/chips", headers={"Authorization": "Bearer garbage"}), 401),
        (api.client.post("/v1/plans", json={}, headers=viewer), 403),
        (api.client.post("/v1/check?record=true", json=DESIGN_REQUEST, headers=viewer), 403),
    ]
    for response, status in cases:
        assert_problem(response, status)
    assert cases[0][0].headers["WWW-Authenticate"] == "Bearer"
    logged = [(r.status, r.path) for r in refusals(api.store)]
    assert sorted(s for s, _ in logged) == sorted(s for _, s in cases)
    assert all(isinstance(s, int) for s, _ in logged) and (403, "/v1/plans") in logged


def test_revoked_tokens_are_refused(api: Api) -> None:
    token, row = create_token(api.store, "a", "admin")
    h = {"Authorization": f"Bearer {token}"}
    assert api.client.get("/v1/chips", headers=h).status_code == 200
    revoke_token(api.store, row.id)
    r = api.client.get("/v1/chips", headers=h)
    assert r.status_code == 401 and "revoked" in r.json()["error"]


def test_public_routes_need_no_token(api: Api) -> None:
    assert api.client.get("/healthz").json()["status"] == "ok"
    spec = api.client.get("/openapi.json").json()
    assert {
        "/v1/check",
        "/v1/estimate",
        "/v1/plans",
        "/v1/plans/{plan_id}",
        "/v1/rules",
        "/v1/chips",
        "/v1/ledger/verify",
        "/healthz",
    } <= set(spec["paths"])
    assert spec["paths"]["/v1/check"]["post"]["security"] == [{"bearer": []}]
    assert "CheckRequest" in spec["components"]["schemas"]


def test_body_size_limit(api: Api) -> None:
    h = api.auth("a", "planner")
    big = {**DESIGN_REQUEST, "padding": "x" * 70_000}
    r = api.client.post("/v1/check", json=big, headers=h)
    assert r.status_code == 413 and "bytes" in r.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"a": "'
        for _ in range(20):
            yield b"y" * 8192
        yield b'"}'

    r = api.client.post("/v1/plans", content=chunks(), headers=h)
    assert r.status_code == 413
    assert [x.status for x in refusals(api.store)][:2] == [413, 413]


def test_internal_errors_carry_no_stack_trace(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from straits import api as python_api

    def broken() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(python_api, "chips_json", broken)
    r = api.client.get("/v1/chips", headers=api.auth("a", "viewer"))
    body = assert_problem(r, 500)
    assert body["incident"] and body["incident"] in body["detail"]
    assert "secret" not in r.text and "Traceback" not in r.text


# --- plans and tenants ---------------------------------------------------------------------------
def test_plans_run_in_the_background_and_are_recorded(api: Api, example_path: Path) -> None:
    h = api.auth("hz-cloud", "planner")
    r = api.client.post(
        "/v1/plans", params={"solver": "greedy"}, json=scenario_doc(example_path), headers=h
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["Location"] == f"/v1/plans/{job['id']}"
    assert job["status"] in ("queued", "running", "done")
    done = wait_done(api, job["id"], h)
    assert done["status"] == "done", done
    plan = api.client.get(f"/v1/plans/{job['id']}/plan", headers=h).json()
    cli = json.loads(straits("plan", str(example_path), "--json", "--solver", "greedy").stdout)
    # the same plan document but for the search's notes and timings (wall-clock seconds), its
    # id (recorded here, content id there), its digest (which covers the notes) and the
    # ledger entry
    own = {"notes", "timings", "id", "digest", "ledger_seq"}
    assert {k: v for k, v in plan.items() if k not in own} == {
        k: v for k, v in cli.items() if k not in own
    }
    assert plan["id"] == job["id"] and plan["ledger_seq"] == done["ledger_seq"]
    entry = ledger.get_entry(api.store, done["ledger_seq"])
    assert entry is not None and entry.tenant == "hz-cloud" and entry.kind == "plan"
    assert entry.content["result"]["plan"]["assignments"] == plan["assignments"]
    v = api.client.get("/v1/ledger/verify", headers=h).json()
    assert v["ok"] and v["entries"] == 1


def test_a_tenant_cannot_see_or_plan_for_another(api: Api, example_path: Path) -> None:
    owner, other = api.auth("hz-cloud", "planner"), api.auth("rival", "planner")
    admin = api.auth("platform", "admin")
    job = api.client.post(
        "/v1/plans",
        params={"solver": "greedy", "record": "false"},
        json=scenario_doc(example_path),
        headers=owner,
    ).json()
    wait_done(api, job["id"], owner)
    for path in (f"/v1/plans/{job['id']}", f"/v1/plans/{job['id']}/plan"):
        r = api.client.get(path, headers=other)
        assert r.status_code == 404 and job["id"] in r.json()["error"]
        assert api.client.get(path, headers=admin).status_code == 200
    assert any(x.status == 404 and x.tenant == "rival" for x in refusals(api.store))
    assert [p["id"] for p in api.client.get("/v1/plans", headers=owner).json()] == [job["id"]]
    assert api.client.get("/v1/plans", headers=other).json() == []
    r = api.client.post("/v1/plans", json=scenario_doc(example_path), headers=other)
    assert r.status_code == 403 and "hz-cloud" in r.json()["error"]
    missing = api.client.get("/v1/plans/nope", headers=owner)
    assert missing.status_code == 404


def test_ledger_entries_are_per_tenant(api: Api) -> None:
    a, b = api.auth("a", "planner"), api.auth("b", "planner")
    numbers = []
    for h in (a, b, a):
        r = api.client.post("/v1/check", params={"record": "true"}, json=DESIGN_REQUEST, headers=h)
        assert r.status_code == 200
        numbers.append(int(r.headers["X-Straits-Ledger-Seq"]))
    assert numbers == [1, 1, 2]  # each tenant's own numbering, never the global one
    seen_a = api.client.get("/v1/ledger/entries", headers=a).json()
    assert [(e["seq"], e["tenant"]) for e in seen_a] == [(1, "a"), (2, "a")]
    everything = api.client.get("/v1/ledger/entries", headers=api.auth("ops", "admin")).json()
    assert [e["seq"] for e in everything] == [1, 2, 3]
    assert api.client.get("/v1/ledger/verify", headers=b).json()["entries"] == 1


def test_a_failing_plan_reports_failed_not_500(api: Api, example_path: Path) -> None:
    h = api.auth("hz-cloud", "planner")
    doc = scenario_doc(example_path)
    doc["date"] = dt.date(2025, 6, 1).isoformat()
    r = api.client.post("/v1/plans", json={**doc, "sites": "not a list"}, headers=h)
    assert r.status_code == 400 and r.json()["path"] == "sites"
    r = api.client.post("/v1/plans", params={"time_limit": 999}, json=doc, headers=h)
    assert r.status_code == 400 and "time_limit" in r.json()["error"]


# a plan id prefix is resolved among the caller's tenant's plans only, so another tenant's plans
# never change the answer (a 400 'matches several plans' told a tenant how many plans others
# have, and where their ids lie)
def _bare_plans(api: Api, *rows: tuple[str, str]) -> None:
    with api.store.write(ledger=False) as s:
        s.add(ScenarioRow(digest="d" * 64, name="s", body="{}"))
        s.flush()
        for plan_id, tenant in rows:
            s.add(
                PlanRow(
                    id=plan_id,
                    tenant=tenant,
                    actor="t",
                    scenario_digest="d" * 64,
                    options="{}",
                    status="queued",
                    record=False,
                )
            )


@pytest.mark.parametrize(
    ("ref", "caller", "status", "found"),
    [
        ("abcd", "rival", 404, None),  # two of hz-cloud's plans share it: still "no plan"
        ("abcd", "hz-cloud", 400, None),  # its own two: ambiguous, as before
        ("beef", "rival", 200, "beef0002"),  # its own one, beside another tenant's
        ("beef", "hz-cloud", 200, "beef0001"),
        ("beef0002", "hz-cloud", 404, None),  # a whole id of another tenant's
        ("beef", "ops", 400, None),  # an admin sees every tenant's: ambiguous
    ],
)
def test_a_plan_prefix_is_resolved_among_the_callers_plans(
    api: Api, ref: str, caller: str, status: int, found: str | None
) -> None:
    _bare_plans(
        api,
        ("abcd0001", "hz-cloud"),
        ("abcd0002", "hz-cloud"),
        ("beef0001", "hz-cloud"),
        ("beef0002", "rival"),
    )
    role = "admin" if caller == "ops" else "viewer"
    r = api.client.get(f"/v1/plans/{ref}", headers=api.auth(caller, role))
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(
        "application/json" if status == 200 else "application/problem+json"
    )
    if found is not None:
        assert r.json()["id"] == found
