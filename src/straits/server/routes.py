"""The /v1 routes. Bodies and answers are the CLI's JSON contracts (docs/contracts.md)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from straits import api
from straits.errors import NotFoundError, RequestError
from straits.loading import parse_scenario, validate_as
from straits.model.request import CheckRequest, EstimateRequest
from straits.model.scenario import Scenario
from straits.model.types import Regime
from straits.plan.registry import DEFAULT_SOLVER, SOLVER_NAMES, check_solver, objective_help
from straits.plan.registry import objective as parse_objective
from straits.server.auth import Caller, refuse, require
from straits.server.bodies import documented, json_body
from straits.store import ledger
from straits.store.records import (
    create_plan,
    get_plan,
    list_plans,
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
    Scenario, "A scenario, as in a scenario file (docs/scenario-reference.md)."))
async def submit_plan(
    request: Request, who: Caller,
    solver: Annotated[str, Query(description=f"One of {', '.join(SOLVER_NAMES)}.",
                                 json_schema_extra={"enum": list(SOLVER_NAMES)})
                      ] = DEFAULT_SOLVER,
    objective: Annotated[str | None, Query(description=objective_help())] = None,
    regime: Regime | None = None,
    time_limit: Annotated[float, Query(ge=0.5, le=3600)] = 20.0,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    record: Annotated[bool, Query(description="Append the plan to the ledger.")] = True,
) -> JSONResponse:
    """Plan a scenario in the background; poll `GET /v1/plans/{id}` for progress and the plan."""
    require(request, who, "planner", "submit plans")
    solver = check_solver(solver)
    if objective is not None:
        objective = parse_objective(objective).name
    data = await json_body(request, BODY)
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
    row = get_plan(request.app.state.store, plan_id)
    if row is not None and (who.is_admin or row.tenant == who.tenant):
        return row
    if row is not None:  # another tenant's: the same answer as a missing plan, but logged
        refuse(request, 404, f"plan {plan_id} belongs to another tenant", who)
    raise NotFoundError(f"no plan {plan_id!r}")


@router.get("/plans", tags=["plans"])
def plans(request: Request, who: Caller,
          limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Your tenant's plans, newest first (every tenant's for admins), without plan bodies."""
    rows = list_plans(request.app.state.store, None if who.is_admin else who.tenant, limit)
    return [{k: v for k, v in plan_job_json(r).items() if k != "plan"} for r in rows]


@router.get("/plans/{plan_id}", tags=["plans"])
def plan_status(request: Request, plan_id: str, who: Caller) -> dict[str, Any]:
    """A plan's state (queued, running, done, failed), its progress and, once done, the plan."""
    return plan_job_json(_own_plan(request, who, plan_id))


@router.get("/plans/{plan_id}/plan", tags=["plans"])
def plan_result(request: Request, plan_id: str, who: Caller) -> Any:
    """The finished plan, exactly as `straits plan --json` prints it (409 until it is done)."""
    job = plan_job_json(_own_plan(request, who, plan_id))
    if job["status"] != "done":
        return JSONResponse({"error": f"plan {plan_id} is {job['status']}",
                             "status": job["status"], "progress": job["progress"],
                             "detail": job["error"]}, status_code=409)
    return job["plan"]


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
def ledger_entries(request: Request, who: Caller,
                   since: Annotated[int, Query(ge=1, le=2**53)] = 1,
                   limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Ledger entries in order from `since` (your tenant's; every tenant's for admins), each
    with its stored fields so the hashes can be recomputed."""
    tenant = None if who.is_admin else who.tenant
    return [e.to_json() for e in ledger.entries(request.app.state.store, tenant=tenant,
                                                since=since, limit=limit)]
