"""SkyPilot's RESTful admin policy: ``admin_policy: https://HOST/v1/skypilot/policy?token=st_...``.

SkyPilot posts a UserRequest (the task YAML, its config) before every launch and every recovery
relaunch and sends no Authorization header, so this route also takes the token as a ``token``
query parameter. A lawful launch gets the request back unchanged; an unlawful one gets 400 with
the rule's citation, which SkyPilot shows the user as the rejection.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from straits.admission import admit_skypilot, parse_user_request, task_of
from straits.errors import InputError, NotFoundError
from straits.export.skypilot import ENV_PLAN, ENV_STAGE, ENV_WORKLOAD
from straits.model.scenario import Scenario
from straits.server.auth import caller, refuse, require
from straits.server.bodies import documented, json_body
from straits.server.ledger_routes import view_number
from straits.server.query import PlanningDate
from straits.store import owner
from straits.store.records import find_plan, record_admission
from straits.store.tokens import Principal

router = APIRouter(prefix="/v1")
_cache_lock = threading.Lock()


def _plan(request: Request, who: Principal, ref: str) -> tuple[Scenario, dict[str, Any]] | None:
    """The recorded plan ``ref`` if the caller's tenant may see it (finished plans never
    change, so they are cached)."""
    cache: dict[tuple[str | None, str], tuple[str, Scenario, dict[str, Any]]] = (
        request.app.state.admission_plans
    )
    scope = None if who.is_admin else who.tenant  # a prefix among the caller's plans only
    with _cache_lock:
        hit = cache.get((scope, ref))
    if hit is None:
        try:  # a tenant's: another tenant's plan, tampered or not, is not found
            rec = find_plan(request.app.state.store, ref, tenant=scope)
        except NotFoundError:
            if scope is not None and owner.any_plan(request.app.state.store, ref):
                refuse(request, 404, f"plan {ref} belongs to another tenant", who)
            return None
        except InputError:
            return None
        hit = (rec.tenant, rec.scenario, rec.plan)
        with _cache_lock:
            cache[(scope, ref)] = hit
    tenant, sc, plan = hit
    if not (who.is_admin or tenant == who.tenant):
        refuse(request, 404, f"plan {ref} belongs to another tenant", who)
        return None
    return sc, plan


@router.post(
    "/skypilot/policy",
    tags=["admission"],
    openapi_extra=documented(
        dict[str, Any], "SkyPilot's UserRequest (JSON, or a JSON string holding it)."
    ),
    responses={
        200: {
            "description": "The launch, unchanged: a JSON string holding SkyPilot's "
            "MutatedUserRequest.",
            "content": {"application/json": {"schema": {"type": "string"}}},
        },
        400: {
            "description": "A rejected launch (plain text, which SkyPilot shows its user), "
            "or a bad request (a problem).",
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
            },
        },
    },
)
async def skypilot_policy(
    request: Request,
    token: Annotated[
        str | None,
        Query(description="Bearer token, for SkyPilot, which sends no Authorization header."),
    ] = None,
    date: Annotated[
        PlanningDate | None,
        Query(description="Check as of this date (default: today, UTC)."),
    ] = None,
    record: Annotated[
        bool,
        Query(
            description="Append every launch of a planned stage and "
            "the answer to the ledger (planner role)."
        ),
    ] = False,
) -> Response:
    """Re-check a SkyPilot launch against the rules: unchanged if every candidate resource is
    lawful for the plan's stage today, 400 with the rule's citation otherwise."""
    who = await run_in_threadpool(caller, request, token)  # database work: off the loop
    if record:
        await run_in_threadpool(require, request, who, "planner", "record launches")
    user_request = await run_in_threadpool(
        parse_user_request, await json_body(request, "request body")
    )
    # the task YAML off the event loop: 2 MiB of it parse in seconds (api29)
    task = await run_in_threadpool(task_of, user_request)
    ref = str((task.get("envs") or {}).get(ENV_PLAN) or "")
    plan = await run_in_threadpool(_plan, request, who, ref) if ref else None
    when = date or request.app.state.settings.policy_date or dt.datetime.now(dt.UTC).date()

    def decide() -> Any:
        with request.app.state.rules_lock:
            return admit_skypilot(
                task,
                plan,
                request.app.state.rules,
                date=when,
                plan_ref=ref or None,
                contexts=request.app.state.admission_contexts,
            )

    verdict = await run_in_threadpool(decide)
    envs = task.get("envs") or {}
    if record and ref and verdict.regime is not None:
        inputs = {
            "plan_id": ref,
            "workload": envs.get(ENV_WORKLOAD),
            "stage": envs.get(ENV_STAGE),
            "request_name": user_request.get("request_name"),
            "user": user_request.get("user") or None,
            "task_name": task.get("name"),
            "candidates": [
                {"infra": c["infra"], "accelerator": c["accelerator"]} for c in verdict.checked
            ],
        }
        entry = await run_in_threadpool(
            lambda: record_admission(
                request.app.state.store,
                request.app.state.rules,
                inputs,
                verdict.to_json(),
                regime=str(verdict.regime),
                date=when,
                tenant=who.tenant,
                actor=who.actor,
            )
        )
        headers = {"X-Straits-Ledger-Seq": str(view_number(who, entry))}
    else:
        headers = {}
    if not verdict.allowed:
        return PlainTextResponse(
            f"Straits: launch rejected: {verdict.message}", status_code=400, headers=headers
        )
    # SkyPilot decodes response.json() as a JSON string holding the MutatedUserRequest
    body = json.dumps(
        {
            "task": user_request["task"],
            "skypilot_config": user_request.get("skypilot_config", "{}\n"),
        }
    )
    return JSONResponse(body, headers={**headers, "X-Straits-Admission": verdict.message[:200]})
