"""The /v1 routes. Bodies and answers are the CLI's JSON contracts (docs/contracts.md); errors
are RFC 9457 problem details (``straits.server.problems``). Database work and rule checks run in
the thread pool, never on the event loop."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
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
from straits.server.bodies import document_and_text, documented
from straits.server.ledger_routes import view_number
from straits.server.listing import (
    PlanFilter,
    link_next,
    list_plans,
    parse_instant,
    plan_row,
)
from straits.server.problems import problem
from straits.server.query import DECIMAL, DIGITS, IsoDate
from straits.server.schemas import (
    CheckAnswer,
    ChipInfo,
    EstimateAnswer,
    PlanDocument,
    PlanJob,
    PlanSummary,
    RuleInfo,
)
from straits.store import owner, queue
from straits.store.check_once import KEY_PATTERN, record_check_once
from straits.store.records import (
    PLAN_STATES,
    get_plan,
    plan_job_json,
    proven_job_json,
    tenant_numbers,
)
from straits.store.tables import MAX_TENANT, PlanRow
from straits.store.tokens import Principal

router = APIRouter(prefix="/v1")
BODY = "request body"


def _rules_call(request: Request, fn: Any, *args: Any) -> Any:
    with request.app.state.rules_lock:
        return fn(request.app.state.rules, *args)


@router.post(
    "/check",
    tags=["rules"],
    operation_id="check",
    openapi_extra=documented(
        CheckRequest | list[CheckRequest],
        "One check request, or a non-empty list of them: JSON, or YAML with Content-Type "
        "application/yaml (as `straits check` reads a file).",
        yaml=True,
    ),
    responses={200: {"model": CheckAnswer | list[CheckAnswer]}},
)
async def check(
    request: Request,
    response: Response,
    who: Caller,
    record: Annotated[
        bool, Query(description="Append the decision to the ledger (planner role).")
    ] = False,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=KEY_PATTERN,
            description="With `record=true`: printable ASCII up to 200 characters, new for each "
            "new request. The same requests recorded again with it (a retry after a lost answer) "
            "get the decision and ledger entry the first recorded (`Idempotent-Replayed: true`), "
            "not a second entry; other requests with it are a 409.",
        ),
    ] = None,
) -> Any:
    """Is an action lawful? Answers exactly as `straits check --json`."""
    # YAML too, as the CLI reads a request file (a YAML body was 'not valid JSON')
    data, text = await document_and_text(request, BODY)
    if idempotency_key is not None and not record:
        raise RequestError(
            "an Idempotency-Key keys a recorded check",
            path="Idempotency-Key",
            expected="record=true",
        )
    if record:
        await run_in_threadpool(require, request, who, "planner", "record decisions")
    limit = request.app.state.settings.max_check_requests
    if isinstance(data, list) and len(data) > limit:
        raise RequestError(f"{len(data)} requests in one call; at most {limit}", source=BODY)
    requests, was_list = await run_in_threadpool(api.parse_check_document, data, BODY, text)
    answer = await run_in_threadpool(_rules_call, request, api.check_json, requests, was_list)
    if record:
        done = await run_in_threadpool(
            lambda: record_check_once(
                request.app.state.store,
                request.app.state.rules,
                requests,
                answer,
                tenant=who.tenant,
                actor=who.actor,
                key=idempotency_key,
            )
        )
        response.headers["X-Straits-Ledger-Seq"] = str(view_number(who, done.entry))
        if done.replayed:  # the decision an earlier recording of the key recorded
            response.headers["Idempotent-Replayed"] = "true"
        return done.answer
    return answer


@router.post(
    "/estimate",
    tags=["estimate"],
    operation_id="estimate",
    openapi_extra=documented(
        EstimateRequest,
        "A training or serving stage on a chip: JSON, or YAML with Content-Type application/yaml.",
        yaml=True,
    ),
    responses={200: {"model": EstimateAnswer}},
)
async def estimate(request: Request, who: Caller) -> Any:
    """What a stage needs on a chip. Answers exactly as `straits estimate --json`."""
    data, text = await document_and_text(request, BODY)
    if not isinstance(data, dict):
        raise RequestError("expected a JSON object", source=BODY)
    req = await run_in_threadpool(
        lambda: validate_as(EstimateRequest, data, source=BODY, error=RequestError, text=text)
    )
    return await run_in_threadpool(api.estimate_json, req)


@router.post(
    "/plans",
    status_code=202,
    tags=["plans"],
    operation_id="submitPlan",
    openapi_extra=documented(
        Scenario,
        "A scenario, as in a scenario file "
        "(docs/scenario-reference.md): JSON, or YAML with "
        "Content-Type application/yaml.",
        yaml=True,
    ),
    responses={202: {"model": PlanJob, "description": "Queued; poll `Location`."}},
)
async def submit_plan(
    request: Request,
    who: Caller,
    solver: Annotated[
        str,
        Query(
            description=f"One of {', '.join(SOLVER_NAMES)}.",
            json_schema_extra={"enum": list(SOLVER_NAMES)},
        ),
    ] = DEFAULT_SOLVER,
    objective: Annotated[str | None, Query(max_length=200, description=objective_help())] = None,
    regime: Regime | None = None,
    time_limit: Annotated[float, Query(ge=0.5, le=3600), DECIMAL] = 20.0,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1), DIGITS] = 0,
    record: Annotated[bool, Query(description="Append the plan to the ledger.")] = True,
    risk: Annotated[
        Literal["p50", "p90"] | None,
        Query(
            description="Plan training stages on "
            "the estimate's central value or the high end of its 80% interval "
            "(overrides the scenario's `risk`)."
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Any printable ASCII up to 200 characters, new for each new request: "
            "the same request sent again with it (a retry after a lost answer) gets the job "
            "the first one queued (`Idempotent-Replayed: true`), not a second plan; another "
            "request with it is a 409.",
        ),
    ] = None,
) -> JSONResponse:
    """Queue a scenario for planning; poll `GET /v1/plans/{id}` for progress and the plan.
    Jobs live in the database: a worker that dies or a server that restarts resumes them, and
    `DELETE /v1/plans/{id}` cancels one."""
    await run_in_threadpool(require, request, who, "planner", "submit plans")
    solver = check_solver(solver)
    if objective is not None:
        objective = parse_objective(objective).name
    data, text = await document_and_text(request, BODY)
    sc = await run_in_threadpool(lambda: parse_scenario(data, source=BODY, text=text))
    if risk is not None:
        sc = sc.model_copy(update={"risk": risk})
    settings = request.app.state.settings
    if len(sc.workloads) > settings.max_workloads:
        raise RequestError(
            f"{len(sc.workloads)} workloads; this server plans at most "
            f"{settings.max_workloads} at once",
            source=BODY,
            path="workloads",
        )
    if time_limit > settings.max_time_limit:
        raise RequestError(
            f"time_limit {time_limit:g} s is above this server's {settings.max_time_limit:g} s",
            path="time_limit",
        )
    if not who.is_admin:
        others = sorted({w.tenant for w in sc.workloads} - {who.tenant})
        if others:
            raise await run_in_threadpool(
                refuse,
                request,
                403,
                f"a token of tenant {who.tenant!r} cannot plan the "
                f"workloads of {', '.join(map(repr, others))}",
                who,
            )
    options = {
        "solver": solver,
        "objective": objective,
        "regime": regime,
        "time_limit": time_limit,
        "seed": seed,
    }
    store = request.app.state.store
    digest = request.app.state.rules.digest

    def submit() -> tuple[dict[str, Any], bool]:
        plan_id, replayed = queue.enqueue_once(
            store,
            sc,
            options,
            tenant=who.tenant,
            actor=who.actor,
            record=record,
            rules_digest=digest,
            key=idempotency_key,
        )
        if not replayed:
            request.app.state.worker.wake()
        row = get_plan(store, plan_id)
        assert row is not None
        # a replay may answer a plan that has finished: as GET /v1/plans/{id} shows it, from
        # its proven entry and in the tenant's numbering (the row's result and global
        # ledger_seq were served as stored)
        return proven_job_json(store, row, tenant_view=not who.is_admin), replayed

    job, replayed = await run_in_threadpool(submit)
    headers = {"Location": f"/v1/plans/{job['id']}"}
    if replayed:  # the job an earlier submission of the key queued, in its state now
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(job, status_code=202, headers=headers)


def _own_plan(request: Request, who: Principal, plan_id: str) -> PlanRow:
    """The plan ``plan_id`` (or a unique prefix of its id) if it is the caller's tenant's.

    For a tenant, whose plan it is is decided first, from the raw stored values
    (``store.owner``): another tenant's plan, tampered or not, is the 404 of a missing id (and
    a prefix is resolved among the caller's own plans only), never a 409 that would say it
    exists. Only then is the owner's row read, so its owner (and an admin) gets the 409 that
    names what was altered."""
    store = request.app.state.store
    if who.is_admin:
        row = plan_row(store, plan_id)
        if row is None:
            raise NotFoundError(f"no plan {plan_id!r}")
        return row
    ids = owner.owned_plan_ids(store, plan_id, who.tenant)
    if len(ids) > 1:
        raise RequestError(
            f"plan id prefix {plan_id!r} matches several plans",
            path="plan_id",
            expected="a longer prefix",
        )
    found = get_plan(store, ids[0]) if ids else None  # the owner's: a LedgerError is a 409
    if found is not None:
        return found
    if owner.any_plan(store, plan_id):  # the same answer as a missing plan, but logged
        refuse(request, 404, f"plan {plan_id} belongs to another tenant", who)
    raise NotFoundError(f"no plan {plan_id!r}")


@router.get(
    "/plans",
    tags=["plans"],
    operation_id="listPlans",
    responses={200: {"model": list[PlanSummary]}},
)
def plans(
    request: Request,
    response: Response,
    who: Caller,
    limit: Annotated[int, Query(ge=1, le=1000), DIGITS] = 100,
    cursor: Annotated[
        str | None, Query(max_length=500, description="From the Link header of the previous page.")
    ] = None,
    status: Annotated[
        str | None,
        Query(
            max_length=20,
            description="queued | running | done | failed | cancelled",
            json_schema_extra={
                "anyOf": [{"type": "string", "enum": list(PLAN_STATES)}, {"type": "null"}]
            },
        ),
    ] = None,
    scenario: Annotated[
        str | None, Query(max_length=200, description="The scenario's name.")
    ] = None,
    tenant: Annotated[
        str | None, Query(max_length=MAX_TENANT, description="Admins: one tenant's plans.")
    ] = None,
    since: Annotated[
        str | None, Query(max_length=40, description="Made at or after (date or ISO time).")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="Made before (date or ISO time).")
    ] = None,
) -> list[dict[str, Any]]:
    """Your tenant's plans, newest first (every tenant's for admins), without plan bodies,
    each with its scenario's name. Pages of `limit`: the next page's URL is in the `Link`
    header (`rel="next"`), absent on the last page. A tenant sees its own ledger entry
    numbers, never the global ones."""
    if status is not None and status not in PLAN_STATES:
        raise RequestError(
            f"unknown status {status!r}", path="status", expected=" | ".join(PLAN_STATES)
        )
    if tenant is not None and not who.is_admin and tenant != who.tenant:
        raise refuse(
            request,
            403,
            f"a token of tenant {who.tenant!r} cannot list the plans of {tenant!r}",
            who,
        )
    f = PlanFilter(
        tenant=tenant if who.is_admin else who.tenant,
        status=status,
        scenario=scenario,
        since=parse_instant(since, "since"),
        until=parse_instant(until, "until"),
    )
    store = request.app.state.store
    items, next_cursor = list_plans(store, f, limit, cursor, request.app.state.ledger_keys)
    if not who.is_admin:
        numbers = tenant_numbers(store, [j["ledger_seq"] for j in items if j["ledger_seq"]])
        for j in items:
            j["ledger_seq"] = numbers.get(j["ledger_seq"]) if j["ledger_seq"] else None
    if next_cursor is not None:
        link_next(request, response, cursor=next_cursor)
    return items


@router.get(
    "/plans/{plan_id}", tags=["plans"], operation_id="getPlan", responses={200: {"model": PlanJob}}
)
def plan_status(request: Request, plan_id: str, who: Caller) -> dict[str, Any]:
    """A plan job's state (queued, running, done, failed, cancelled), attempts, progress, the
    reason it failed and, once done, the plan (a recorded plan as its ledger entry proves it;
    409 if the stored copy differs)."""
    return proven_job_json(
        request.app.state.store, _own_plan(request, who, plan_id), tenant_view=not who.is_admin
    )


@router.get(
    "/plans/{plan_id}/plan",
    tags=["plans"],
    operation_id="getPlanResult",
    responses={200: {"model": PlanDocument}},
)
def plan_result(request: Request, plan_id: str, who: Caller) -> Any:
    """The finished plan as a plan document, exactly as `straits plan --json` prints it (its
    id, digest, ledger entry and inputs included; a recorded plan as its ledger entry proves
    it, 409 if the stored copy differs; 409 until it is done)."""
    row = _own_plan(request, who, plan_id)
    # a finished plan's stored result is read below, once (web33); another's as before
    job = plan_job_json(row, with_plan=row.status != "done")
    if job["status"] != "done":
        return problem(
            409,
            f"plan {plan_id} is {job['status']}",
            instance=request.url.path,
            plan_status=job["status"],
            progress=job["progress"],
            reason=job["error"],
        )
    return plan_document(request.app.state.store, row, tenant_view=not who.is_admin)


def plan_document(store: Any, row: PlanRow, *, tenant_view: bool = False) -> dict[str, Any]:
    """A finished plan as a document: a recorded one read through the ledger's proof
    (``plandoc.from_store``, ``records.find_plan``); an unrecorded one (``record=false``) as
    stored, with nothing to prove it."""
    from straits.plandoc import from_store, make_document
    from straits.store.records import load_scenario_row, refuse_detached, stored_json

    refuse_detached(row)
    if row.ledger_seq is None:
        return make_document(
            stored_json(row, "result") or {},
            load_scenario_row(store, row.scenario_digest),
            stored_json(row, "options") or {},
            plan_id=row.id,
            ledger_seq=None,
        )
    doc = from_store(store, row.id).to_json()
    if tenant_view and doc.get("ledger_seq") is not None:
        doc["ledger_seq"] = tenant_numbers(store, [doc["ledger_seq"]]).get(doc["ledger_seq"])
    return doc


@router.delete(
    "/plans/{plan_id}",
    tags=["plans"],
    operation_id="cancelPlan",
    responses={
        200: {"model": PlanJob, "description": "Cancelled (it was queued)."},
        202: {
            "model": PlanJob,
            "description": "Its worker was asked to stop: it ends `cancelled` within seconds.",
        },
    },
)
def cancel_plan(request: Request, plan_id: str, who: Caller) -> JSONResponse:
    """Cancel a queued or running plan (planner role); 409 once it has finished."""
    require(request, who, "planner", "cancel plans")
    row = _own_plan(request, who, plan_id)
    if row.status in queue.FINISHED:
        return problem(
            409,
            f"plan {plan_id} already ended {row.status}",
            instance=request.url.path,
            plan_status=row.status,
        )
    # by the row's id: ``plan_id`` may be a prefix (cancelling by one was a 500: no job has
    # the prefix as its id)
    found = queue.cancel_job(request.app.state.store, row.id)
    after = get_plan(request.app.state.store, row.id)
    if found is None or after is None:  # removed meanwhile
        raise NotFoundError(f"no plan {plan_id!r}")
    before, status = found
    if before in queue.FINISHED:  # it ended since the read above: another request cancelled
        status = before  # it (both were answered 200), its worker finished or failed it
    if status not in ("done", "failed") and after.status in ("done", "failed"):
        # its worker finished it after the cancel was asked: answered as stored, that was a
        # done plan's unproven result and global ledger_seq (a tenant's view has neither)
        status = after.status
    if before in queue.FINISHED or status in ("done", "failed"):  # it ended meanwhile
        return problem(
            409,
            f"plan {plan_id} already ended {status}",
            instance=request.url.path,
            plan_status=status,
        )
    return JSONResponse(plan_job_json(after), status_code=202 if status == "running" else 200)


@router.get(
    "/rules", tags=["rules"], operation_id="listRules", responses={200: {"model": list[RuleInfo]}}
)
def rules(
    request: Request,
    who: Caller,
    date: IsoDate | None = None,
    regime: Regime = "enacted",
    pack: Annotated[list[str] | None, Query()] = None,
) -> list[dict[str, Any]]:
    """The rules (those in force on `date` under `regime`), as `straits rules list --json`."""
    return list(_rules_call(request, api.rules_json, date, regime, pack))


@router.get(
    "/chips", tags=["catalog"], operation_id="listChips", responses={200: {"model": list[ChipInfo]}}
)
def chips(who: Caller) -> list[dict[str, Any]]:
    """The chip catalog with computed export figures, as `straits chips --json`."""
    return api.chips_json()
