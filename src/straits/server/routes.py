"""The /v1 routes. Bodies and answers are the CLI's JSON contracts (docs/contracts.md)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from straits import api
from straits.errors import NotFoundError, RequestError
from straits.loading import parse_scenario, validate_as
from straits.model.request import CheckRequest, EstimateRequest
from straits.model.scenario import Scenario
from straits.model.types import Objective, Regime
from straits.server.auth import Caller, refuse, require
from straits.server.bodies import document_body, documented, json_body
from straits.server.listing import PlanFilter, link_next, list_plans, parse_instant, plan_row
from straits.store import ledger
from straits.store.records import (
    PLAN_STATES,
    create_plan,
    get_plan,
    plan_job_json,
    record_check,
)
from straits.store.tables import PlanRow
from straits.store.tokens import Principal

router = APIRouter(prefix="/v1")
BODY = "request body"


def _rules_call(request: Request, fn: Any, *args: Any) -> Any:
    with request.app.state.rules_lock:
        return fn(request.app.state.rules, *args)


@router.post("/check", tags=["rules"], openapi_extra=documented(
    CheckRequest | list[CheckRequest], "One check request, or a non-empty list of them."))
async def check(request: Request, response: Response, who: Caller,
                record: Annotated[bool, Query(description="Append the decision to the "
                                              "ledger (planner role).")] = False) -> Any:
    """Is an action lawful? Answers exactly as `straits check --json`."""
    data = await json_body(request, BODY)
    if record:
        require(request, who, "planner", "record decisions")
    limit = request.app.state.settings.max_check_requests
    if isinstance(data, list) and len(data) > limit:
        raise RequestError(f"{len(data)} requests in one call; at most {limit}", source=BODY)
    requests, was_list = api.parse_check_document(data, BODY)
    answer = await run_in_threadpool(_rules_call, request, api.check_json, requests, was_list)
    if record:
        entry = await run_in_threadpool(
            lambda: record_check(request.app.state.store, request.app.state.rules, requests,
                                 answer, tenant=who.tenant, actor=who.actor))
        response.headers["X-Straits-Ledger-Seq"] = str(entry.seq)
    return answer


@router.post("/estimate", tags=["estimate"], openapi_extra=documented(
    EstimateRequest, "A training or serving stage on a chip."))
async def estimate(request: Request, who: Caller) -> Any:
    """What a stage needs on a chip. Answers exactly as `straits estimate --json`."""
    data = await json_body(request, BODY)
    if not isinstance(data, dict):
        raise RequestError("expected a JSON object", source=BODY)
    req = validate_as(EstimateRequest, data, source=BODY, error=RequestError)
    return await run_in_threadpool(api.estimate_json, req)


@router.post("/plans", status_code=202, tags=["plans"], openapi_extra=documented(
    Scenario, "A scenario, as in a scenario file (docs/scenario-reference.md): JSON, or YAML "
    "with Content-Type application/yaml.", yaml=True))
async def submit_plan(
    request: Request, who: Caller,
    solver: Literal["cpsat", "greedy"] = "cpsat",
    objective: Objective | None = None,
    regime: Regime | None = None,
    time_limit: Annotated[float, Query(ge=0.5, le=3600)] = 20.0,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    record: Annotated[bool, Query(description="Append the plan to the ledger.")] = True,
) -> JSONResponse:
    """Plan a scenario in the background; poll `GET /v1/plans/{id}` for progress and the plan."""
    require(request, who, "planner", "submit plans")
    data = await document_body(request, BODY)
    sc = parse_scenario(data, source=BODY)
    settings = request.app.state.settings
    if len(sc.workloads) > settings.max_workloads:
        raise RequestError(f"{len(sc.workloads)} workloads; this server plans at most "
                           f"{settings.max_workloads} at once", source=BODY, path="workloads")
    if time_limit > settings.max_time_limit:
        raise RequestError(f"time_limit {time_limit:g} s is above this server's "
                           f"{settings.max_time_limit:g} s", path="time_limit")
    if not who.is_admin:
        others = sorted({w.tenant for w in sc.workloads} - {who.tenant})
        if others:
            raise refuse(request, 403, f"a token of tenant {who.tenant!r} cannot plan the "
                                       f"workloads of {', '.join(map(repr, others))}", who)
    options = {"solver": solver, "objective": objective, "regime": regime,
               "time_limit": time_limit, "seed": seed}
    store = request.app.state.store
    plan_id = await run_in_threadpool(
        lambda: create_plan(store, sc, options, tenant=who.tenant, actor=who.actor))
    request.app.state.runner.submit(plan_id, sc, options, record)
    row = await run_in_threadpool(get_plan, store, plan_id)
    assert row is not None
    return JSONResponse(plan_job_json(row), status_code=202,
                        headers={"Location": f"/v1/plans/{plan_id}"})


def _own_plan(request: Request, who: Principal, plan_id: str) -> PlanRow:
    """The plan ``plan_id`` (or a unique prefix of its id) if it is the caller's tenant's."""
    row = plan_row(request.app.state.store, plan_id)
    if row is not None and (who.is_admin or row.tenant == who.tenant):
        return row
    if row is not None:  # another tenant's: the same answer as a missing plan, but logged
        refuse(request, 404, f"plan {plan_id} belongs to another tenant", who)
    raise NotFoundError(f"no plan {plan_id!r}")


@router.get("/plans", tags=["plans"])
def plans(request: Request, response: Response, who: Caller,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100,
          cursor: Annotated[str | None, Query(max_length=500, description="From the Link "
                                              "header of the previous page.")] = None,
          status: Annotated[str | None, Query(description="queued | running | done | "
                                              "failed")] = None,
          scenario: Annotated[str | None, Query(max_length=200, description="The scenario's "
                                                "name.")] = None,
          tenant: Annotated[str | None, Query(max_length=100, description="Admins: one "
                                              "tenant's plans.")] = None,
          since: Annotated[str | None, Query(description="Made at or after (date or ISO "
                                             "time).")] = None,
          until: Annotated[str | None, Query(description="Made before (date or ISO "
                                             "time).")] = None) -> list[dict[str, Any]]:
    """Your tenant's plans, newest first (every tenant's for admins), without plan bodies,
    each with its scenario's name. Pages of `limit`: the next page's URL is in the `Link`
    header (`rel="next"`), absent on the last page."""
    if status is not None and status not in PLAN_STATES:
        raise RequestError(f"unknown status {status!r}", path="status",
                           expected=" | ".join(PLAN_STATES))
    if tenant is not None and not who.is_admin and tenant != who.tenant:
        raise refuse(request, 403, f"a token of tenant {who.tenant!r} cannot list the plans "
                                   f"of {tenant!r}", who)
    f = PlanFilter(tenant=tenant if who.is_admin else who.tenant, status=status,
                   scenario=scenario, since=parse_instant(since, "since"),
                   until=parse_instant(until, "until"))
    items, next_cursor = list_plans(request.app.state.store, f, limit, cursor)
    if next_cursor is not None:
        link_next(request, response, cursor=next_cursor)
    return items


@router.get("/plans/{plan_id}", tags=["plans"])
def plan_status(request: Request, plan_id: str, who: Caller) -> dict[str, Any]:
    """A plan's state (queued, running, done, failed), its progress and, once done, the plan."""
    return plan_job_json(_own_plan(request, who, plan_id))


@router.get("/plans/{plan_id}/plan", tags=["plans"])
def plan_result(request: Request, plan_id: str, who: Caller) -> Any:
    """The finished plan as a plan document, exactly as `straits plan --json` prints it (its
    id, digest, ledger entry and inputs included; 409 until it is done)."""
    row = _own_plan(request, who, plan_id)
    job = plan_job_json(row)
    if job["status"] != "done":
        return JSONResponse({"error": f"plan {plan_id} is {job['status']}",
                             "status": job["status"], "progress": job["progress"],
                             "detail": job["error"]}, status_code=409)
    return plan_document(request.app.state.store, row)


def plan_document(store: Any, row: PlanRow) -> dict[str, Any]:
    from straits.plandoc import make_document
    from straits.store.records import load_scenario_row

    return make_document(json.loads(row.result or "{}"),
                         load_scenario_row(store, row.scenario_digest),
                         json.loads(row.options or "{}"), plan_id=row.id,
                         ledger_seq=row.ledger_seq)


@router.get("/rules", tags=["rules"])
def rules(request: Request, who: Caller, date: dt.date | None = None,
          regime: Regime = "enacted",
          pack: Annotated[list[str] | None, Query()] = None) -> list[dict[str, Any]]:
    """The rules (those in force on `date` under `regime`), as `straits rules list --json`."""
    return list(_rules_call(request, api.rules_json, date, regime, pack))


@router.get("/chips", tags=["catalog"])
def chips(who: Caller) -> list[dict[str, Any]]:
    """The chip catalog with computed export figures, as `straits chips --json`."""
    return api.chips_json()


@router.get("/ledger/verify", tags=["ledger"])
def verify_ledger(request: Request, who: Caller) -> dict[str, Any]:
    """Walk the hash chain. Admins see where it breaks; others see whether it holds and how
    many entries are their tenant's."""
    store = request.app.state.store
    result = ledger.verify(store)
    if who.is_admin:
        return result.to_json()
    return {"ok": result.ok, "entries": ledger.count(store, who.tenant),
            "head_hash": result.head_hash if result.ok else None,
            "problem": None if result.ok else "the ledger failed verification; an admin "
                                              "token shows where"}


@router.get("/ledger/entries", tags=["ledger"])
def ledger_entries(request: Request, response: Response, who: Caller,
                   since: Annotated[int, Query(ge=1, le=2**53)] = 1,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                   tenant: Annotated[str | None, Query(max_length=100, description="Admins: "
                                                       "one tenant's entries.")] = None
                   ) -> list[dict[str, Any]]:
    """Ledger entries in order from `since` (your tenant's; every tenant's for admins), each
    with its stored fields so the hashes can be recomputed (`body`, the canonical JSON text)
    and `content`, the same body as a JSON object. The next page is in the `Link` header."""
    if tenant is not None and not who.is_admin and tenant != who.tenant:
        raise refuse(request, 403, f"a token of tenant {who.tenant!r} cannot read the entries "
                                   f"of {tenant!r}", who)
    scope = tenant if who.is_admin else who.tenant
    rows = list(ledger.entries(request.app.state.store, tenant=scope, since=since,
                               limit=limit + 1))
    if len(rows) > limit:
        rows = rows[:limit]
        link_next(request, response, since=rows[-1].seq + 1)
    return [{**e.to_json(), "content": e.content} for e in rows]


@router.get("/ledger/entries/{seq}", tags=["ledger"])
def ledger_entry(request: Request, seq: Annotated[int, Path(ge=1, le=2**53)],
                 who: Caller) -> dict[str, Any]:
    """One ledger entry with its stored fields and `content` (another tenant's answers 404,
    as a missing one does)."""
    e = ledger.get_entry(request.app.state.store, seq)
    if e is not None and (who.is_admin or e.tenant == who.tenant):
        return {**e.to_json(), "content": e.content}
    if e is not None:
        refuse(request, 404, f"ledger entry {seq} belongs to another tenant", who)
    raise NotFoundError(f"no ledger entry {seq}")
