"""A scenario submitted from the console: parsed and checked like ``POST /v1/plans``, then
queued in the same durable job queue (``store/queue.py``) for the same workers."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from straits.errors import InputError, RequestError
from straits.loading import parse_document, parse_scenario
from straits.model.types import Regime
from straits.store import queue
from straits.store.tokens import Principal


def options_of(request: Request, *, regime: str, objective: str, time_limit: str) -> dict[str, Any]:
    """The planner options of the form, checked as the API checks its query parameters."""
    if regime and regime not in get_args(Regime):
        raise RequestError(
            f"unknown regime {regime!r}", path="regime", expected=" | ".join(get_args(Regime))
        )
    if objective:
        from straits.plan.registry import objective as parse_objective

        parse_objective(objective, path="objective")  # a name or weighted sum it knows
    limit = request.app.state.settings.max_time_limit
    try:
        seconds = float(time_limit or 10)
    except ValueError:
        raise RequestError(
            f"{time_limit!r} is not a number",
            path="time_limit",
            expected=f"seconds, 1 to {limit:g}",
        ) from None
    if not 1 <= seconds <= limit:
        raise RequestError(
            f"{seconds:g} s is out of range", path="time_limit", expected=f"seconds, 1 to {limit:g}"
        )
    return {
        "solver": "auto",
        "objective": objective or None,
        "regime": regime or None,
        "time_limit": seconds,
        "seed": 0,
    }


async def submit_scenario(
    request: Request,
    who: Principal,
    text: str,
    *,
    source: str,
    regime: str,
    objective: str,
    time_limit: str,
    record: bool,
) -> str:
    """Queue ``text`` (a scenario in YAML or JSON) for planning; the new plan's id."""
    if not text.strip():
        raise InputError(
            "no scenario was given", source=source, expected="a scenario file, or its text pasted"
        )
    options = options_of(request, regime=regime, objective=objective, time_limit=time_limit)
    data = await run_in_threadpool(parse_document, text, source=source)
    sc = await run_in_threadpool(lambda: parse_scenario(data, source=source, text=text))
    settings = request.app.state.settings
    if len(sc.workloads) > settings.max_workloads:
        raise RequestError(
            f"{len(sc.workloads)} workloads; this server plans at most "
            f"{settings.max_workloads} at once",
            source=source,
            path="workloads",
        )
    if not who.is_admin:
        others = sorted({w.tenant for w in sc.workloads} - {who.tenant})
        if others:
            raise RequestError(
                f"a token of tenant {who.tenant!r} cannot plan the workloads "
                f"of {', '.join(map(repr, others))}",
                source=source,
                path="workloads[].tenant",
                expected=repr(who.tenant),
            )
    store = request.app.state.store
    digest = request.app.state.rules.digest
    plan_id: str = await run_in_threadpool(
        lambda: queue.enqueue(
            store,
            sc,
            options,
            tenant=who.tenant,
            actor=who.actor,
            record=record,
            rules_digest=digest,
        )
    )
    request.app.state.worker.wake()  # the same durable queue as POST /v1/plans
    return plan_id
