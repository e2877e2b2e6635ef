"""The API's export and impact routes for integrators: they answer as the CLI does, name a
missing mapping, refuse a document with a null figure, check impact changes one by one, and
answer 503 beyond their slots. Against SQLite and, when configured, PostgreSQL. Split from
test_api_documents.py, whose API fixture and helpers it uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.loading import load_scenario
from straits.rules import RuleSet
from test_api import Api, scenario_doc, wait_done
from test_api_documents import _files, running_documents_api
from test_cli_conventions import run

ROOT = Path(__file__).resolve().parents[1]
H20 = ROOT / "examples" / "h20-2025.yaml"


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_documents_api(db_url)


# --- export and impact ---------------------------------------------------------------------------
def _planned(api: Api, path: Path, tenant: str = "hz-cloud") -> dict[str, Any]:
    h = api.auth(tenant, "planner")
    job = api.client.post(
        "/v1/plans", params={"solver": "greedy"}, json=scenario_doc(path), headers=h
    ).json()
    assert wait_done(api, job["id"], h)["status"] == "done"
    doc: dict[str, Any] = api.client.get(f"/v1/plans/{job['id']}/plan", headers=h).json()
    return doc


def test_export_route_answers_as_the_cli(api: Api, example_path: Path, tmp_path: Path) -> None:
    doc = _planned(api, example_path)
    h = api.auth("hz-cloud", "viewer")
    r = api.client.get(
        f"/v1/plans/{doc['id']}/export", params={"to": ["slurm", "skypilot"]}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/gzip"
    assert f"straits-{doc['id'][:12]}.tar.gz" in r.headers["content-disposition"]
    files = _files(r.content)
    manifest = json.loads(files.pop("straits-export.json"))
    assert manifest["plan_id"] == doc["id"] and set(manifest["targets"]) == {"slurm", "skypilot"}
    f = tmp_path / "plan.json"
    f.write_text(json.dumps(doc))
    out = tmp_path / "cli"
    p = run("export", str(f), "--to", "slurm", "--to", "skypilot", "-o", str(out))
    assert p.returncode == 0, p.stderr
    # DIR/.straits-export.json and .lock are the directory's own bookkeeping (docs/exports.md)
    assert {
        str(x.relative_to(out)): x.read_text()
        for x in out.rglob("*")
        if x.is_file() and not x.name.startswith(".straits-export")
    } == files
    posted = api.client.post(
        "/v1/exports", params={"to": ["slurm", "skypilot"]}, json=doc, headers=h
    )
    assert posted.status_code == 200 and posted.content == r.content
    z = api.client.get(
        f"/v1/plans/{doc['id']}/export", params={"to": "slurm", "format": "zip"}, headers=h
    )
    assert z.status_code == 200 and z.content[:2] == b"PK"
    other = api.client.get(
        f"/v1/plans/{doc['id']}/export", params={"to": "slurm"}, headers=api.auth("rival", "viewer")
    )
    assert other.status_code == 404


def test_export_route_names_the_missing_mapping(
    api: Api, example_path: Path, tmp_path: Path
) -> None:
    raw = yaml.safe_load(example_path.read_text())
    for site in raw["sites"]:
        site.pop("targets", None)
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump(raw))
    doc = _planned(api, bare)
    r = api.client.get(
        f"/v1/plans/{doc['id']}/export",
        params={"to": "slurm"},
        headers=api.auth("hz-cloud", "viewer"),
    )
    assert r.status_code == 400 and r.json()["path"] == "targets"
    assert "sites[].targets.slurm" in r.json()["error"]
    bad = api.client.get(
        f"/v1/plans/{doc['id']}/export",
        params={"to": "nomad"},
        headers=api.auth("hz-cloud", "viewer"),
    )
    assert bad.status_code == 400 and bad.json()["path"] == "to"


def _recorded_before_the_letter(api: Api, rules_before_h20: RuleSet) -> dict[str, Any]:
    """The H20 plan of 2025-04-08 as recorded that day (conftest.H20_BEFORE): it buys H20s."""
    from straits.cli.plan_source import record
    from straits.plan import make_plan

    sc = load_scenario(H20)
    plan = make_plan(sc, rules=rules_before_h20, solver="greedy")
    pid, _, _ = record(api.store, sc, plan, rules_before_h20, {}, tenant="hz-cloud", actor="t")
    r = api.client.get(f"/v1/plans/{pid}/plan", headers=api.auth("hz-cloud", "viewer"))
    return r.json()  # type: ignore[no-any-return]


def test_impact_route_answers_as_the_cli(
    api: Api, tmp_path: Path, rules_before_h20: RuleSet
) -> None:
    doc = _recorded_before_the_letter(api, rules_before_h20)
    h = api.auth("hz-cloud", "viewer")
    body = {"date": "2025-04-10", "plans": [doc["id"][:10]], "replan": False}
    r = api.client.post("/v1/impact", json=body, headers=h)
    assert r.status_code == 200, r.text
    f = tmp_path / "h20.json"
    f.write_text(json.dumps(doc))
    cli = json.loads(
        run("impact", "--date", "2025-04-10", "--plan", str(f), "--no-replan", "--json").stdout
    )
    assert r.json() == cli and r.json()["plans"][0]["blocking"]
    by_doc = api.client.post(
        "/v1/impact", json={"date": "2025-04-10", "documents": [doc], "replan": False}, headers=h
    )
    assert by_doc.json() == cli
    default = api.client.post("/v1/impact", json={"date": "2025-04-10", "replan": False}, headers=h)
    assert default.json()["plans"][0]["plan_id"] == doc["id"]  # the tenant's recorded plans
    too_long = api.client.post(
        "/v1/impact", json={**body, "replan": True, "time_limit": 3600}, headers=h
    )
    assert too_long.status_code == 400 and too_long.json()["path"] == "time_limit"
    unknown = api.client.post("/v1/impact", json={**body, "dates": "x"}, headers=h)
    assert unknown.status_code == 400 and unknown.json()["path"] == "dates"
    rival = api.client.post("/v1/impact", json=body, headers=api.auth("rival", "viewer"))
    assert rival.status_code == 404


def test_impact_replans_beyond_the_slots_are_a_503(api: Api) -> None:
    """Each impact request with re-plans plans for up to the server's limit in its thread
    pool: 45 at once from one tenant held every thread, and another tenant's `GET /v1/chips`
    waited 141 s (atk65). Beyond REPLAN_SLOTS they are 503 with Retry-After; a re-check without
    re-plans is still answered."""
    from straits.server import plan_routes

    doc = _planned(api, H20)
    h = api.auth("hz-cloud", "viewer")
    body = {"date": "2025-04-10", "plans": [doc["id"]], "replan": True, "time_limit": 2}
    taken = 0
    try:
        while plan_routes.replan_slots.acquire(blocking=False):
            taken += 1
        assert taken == plan_routes.REPLAN_SLOTS
        busy = api.client.post("/v1/impact", json=body, headers=h)
        assert busy.status_code == 503, busy.text
        assert busy.headers["content-type"].startswith("application/problem+json")
        assert int(busy.headers["retry-after"]) >= 2
        quick = api.client.post("/v1/impact", json={**body, "replan": False}, headers=h)
        assert quick.status_code == 200, quick.text
    finally:
        for _ in range(taken):
            plan_routes.replan_slots.release()
    r = api.client.post("/v1/impact", json=body, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["plans"][0]["replan"] is not None
    # the slot is given back after each request, answered or refused
    assert all(plan_routes.replan_slots.acquire(blocking=False) for _ in range(taken))
    for _ in range(taken):
        plan_routes.replan_slots.release()


def test_exports_beyond_the_slots_are_a_503(api: Api, example_path: Path) -> None:
    """Each export re-checks every placement and its options (20-35 s and ~220 MB for 600
    workloads), for any role: 16 clients that hung up held 1.8 GB and both cores a minute
    after, 40 at once 9.5 GB (atk70). Beyond EXPORT_SLOTS both export routes are 503 with
    Retry-After; the slot is given back after each, and the rule sets lent to a burst are not
    all kept."""
    from straits.server import plan_routes

    doc = _planned(api, example_path)
    h = api.auth("hz-cloud", "viewer")
    recorded = f"/v1/plans/{doc['id']}/export"
    taken = 0
    try:
        while plan_routes.export_slots.acquire(blocking=False):
            taken += 1
        assert taken == plan_routes.EXPORT_SLOTS
        for busy in (
            api.client.get(recorded, params={"to": "slurm"}, headers=h),
            api.client.post("/v1/exports", params={"to": "slurm"}, json=doc, headers=h),
        ):
            assert busy.status_code == 503, busy.text
            assert busy.headers["content-type"].startswith("application/problem+json")
            assert int(busy.headers["retry-after"]) >= 1
    finally:
        for _ in range(taken):
            plan_routes.export_slots.release()
    assert api.client.get(recorded, params={"to": "slurm"}, headers=h).status_code == 200
    assert all(plan_routes.export_slots.acquire(blocking=False) for _ in range(taken))
    for _ in range(taken):
        plan_routes.export_slots.release()
    app: Any = api.client.app
    pool = app.state.rule_pool
    with ExitStack() as stack:
        request = type("R", (), {"app": app})()
        lent = [
            stack.enter_context(plan_routes.borrowed_rules(request))
            for _ in range(plan_routes.RULE_POOL_MAX + 3)
        ]
        assert len({id(rs) for rs in lent}) == len(lent)
    assert len(pool) == plan_routes.RULE_POOL_MAX


def test_a_document_with_a_null_figure_is_a_400(api: Api, example_path: Path) -> None:
    """An edited plan document (no id, no digest) whose assignment's cost is null: accepted by
    the checks (a figure could be null), then summed by the export (a 500, TypeError; found by
    the hostile pass atk23). A null where every plan writes a number is a 400 naming it."""
    doc = _planned(api, example_path)
    del doc["id"], doc["digest"]
    doc["assignments"][0]["cost_usd"] = None
    h = api.auth("hz-cloud", "viewer")
    for route, body in (
        ("/v1/exports?to=slurm", doc),
        ("/v1/impact", {"date": "2025-07-01", "documents": [doc], "replan": False}),
    ):
        r = api.client.post(route, json=body, headers=h)
        assert r.status_code == 400, (route, r.status_code, r.text[:300])
        assert "assignments[0].cost_usd" in r.json()["error"], route


def test_impact_changes_are_checked_one_by_one(api: Api) -> None:
    h = api.auth("hz-cloud", "viewer")
    good = {"site": "sg-jurong", "chip": "H100-SXM", "usd_per_chip_hour": 2.0, "source": "x"}
    body = {
        "date": "2025-06-01",
        "replan": False,
        "prices": [good, {**good, "usd_per_chip_hour": -1}, {"site": 5}],
    }
    r = api.client.post("/v1/impact", json=body, headers=h)
    assert r.status_code == 400 and r.json()["path"] == "prices[1].usd_per_chip_hour"
    many = api.client.post(
        "/v1/impact", json={**body, "prices": [{"x": i} for i in range(5000)]}, headers=h
    )
    assert many.status_code == 400 and many.json()["path"] == "prices"
