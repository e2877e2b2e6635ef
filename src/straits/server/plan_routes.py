"""Routes that take a plan: its export (an archive of the schedulers' files) and its impact
(what a rule, price or capacity change does to it). A plan is a recorded id in the URL, or a
plan document in the body (JSON or YAML), as the CLI's `export` and `impact` take them.

Rule sets are not shared between threads (their caches are not thread-safe): each request
borrows one from a small pool, so a long re-plan does not hold up `/v1/check`.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from straits import api, archive
from straits.errors import BusyError, InputError, LedgerError, NotReadyError, RequestError
from straits.loading import validate_as
from straits.model.types import Regime
from straits.plandoc import PlanDocument, from_store, read_document
from straits.rules import RuleSet
from straits.server.auth import Caller, refuse
from straits.server.bodies import document_and_text, document_body, documented
from straits.server.problems import openapi_responses as problems_doc
from straits.server.query import PlanningDate
from straits.store import owner
from straits.store.records import recorded_plans
from straits.store.tokens import Principal

router = APIRouter(prefix="/v1")
if TYPE_CHECKING:
    from straits.impact import Overrides

M = TypeVar("M", bound=BaseModel)
BODY = "request body"
MAX_IMPACT_PLANS = 50
#: price or capacity changes in one /v1/impact request
MAX_CHANGES = 1000
_pool_lock = threading.Lock()
#: impact requests with re-plans one server process runs at once: each plans for up to the
#: server's time limit in the API's thread pool, outside the plan queue, for any role that may
#: read plans; 45 at once held every thread, and another tenant's `GET /v1/chips` waited 141 s
#: (atk65). More get 503 with Retry-After, as full verifications and comparisons do
REPLAN_SLOTS = 2
replan_slots = threading.BoundedSemaphore(REPLAN_SLOTS)
#: exports one server process renders at once (POST /v1/exports, GET /v1/plans/{id}/export):
#: each re-checks every placement and its failover options, 20-35 s of CPU and ~220 MB for a
#: plan of 600 workloads, for any role; 16 clients that hung up held 1.8 GB and both cores for
#: a minute after, and 40 at once 9.5 GB (atk70). More get 503 with Retry-After
EXPORT_SLOTS = 2
export_slots = threading.BoundedSemaphore(EXPORT_SLOTS)
#: rule sets kept for reuse between requests (more are made for a burst, then let go)
RULE_POOL_MAX = 4
EXPORT_RETRY_S = 10


@contextmanager
def borrowed_rules(request: Request) -> Iterator[RuleSet]:
    """A rule set of this server's packs for one request's thread: the packs it read at start
    (``app.state.rules``), as every other route and the plan workers use them. The pool read
    the pack files again for each new set, so a pack edited on disk while the server ran made
    export and impact decide under other rules than /v1/check and the plans they were given."""
    pool: list[RuleSet] = request.app.state.rule_pool
    with _pool_lock:
        rs = pool.pop() if pool else None
    if rs is None:
        loaded: RuleSet = request.app.state.rules
        rs = RuleSet(list(loaded.packs))  # packs are read-only: a set's own caches are not
    try:
        yield rs
    finally:
        with _pool_lock:
            if len(pool) < RULE_POOL_MAX:
                pool.append(rs)


def _own_document(request: Request, who: Principal, ref: str) -> PlanDocument:
    """The finished plan ``ref`` (an id, or a unique prefix) if it is the caller's tenant's:
    another tenant's answers 404 as a missing one does, and is logged."""
    from straits.server.routes import _own_plan

    row = _own_plan(request, who, ref)  # another tenant's: 404, logged
    if row.status != "done" or not row.result:
        raise NotReadyError(row.id, row.status, path="plan_id")
    return from_store(request.app.state.store, row.id)


def _archive_response(
    doc: PlanDocument,
    request: Request,
    to: list[str],
    fmt: str,
    run: list[str] | None,
    image: str | None,
    ordered: bool,
) -> Response:
    if not export_slots.acquire(blocking=False):
        raise BusyError(
            f"{EXPORT_SLOTS} exports are being rendered; try again shortly",
            retry_after=EXPORT_RETRY_S,
        )
    try:
        with borrowed_rules(request) as rs:
            inp, results, files = api.export_files(
                doc.scenario,
                doc.plan,
                rs,
                plan_id=doc.id,
                to=to,
                run=run,
                image=image,
                ordered=ordered,
            )
    finally:
        export_slots.release()
    summary = api.export_summary(doc.id, archive.MANIFEST, inp, results)
    files = {**files, archive.MANIFEST: json.dumps(summary, indent=2) + "\n"}
    root = f"straits-{doc.id[:12]}"
    data = archive.build(files, fmt, root=root)  # type: ignore[arg-type]
    name = f"{root}.{fmt}"
    return Response(
        data,
        media_type=archive.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Straits-Plan-Id": doc.id,
        },
    )


ARCHIVE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The files of every target (and straits-export.json, the summary) in one "
        "archive under the folder straits-<plan id>.",
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}}
            for t in archive.MEDIA_TYPES.values()
        },
    }
}
ToQuery = Annotated[
    list[str],
    Query(
        description="skypilot | kubernetes | karmada | slurm | all (repeatable)",
        # the spec names the targets the server takes (it said any string: a client generated
        # from it sent '' and got a 400 the spec did not foresee)
        json_schema_extra={
            "items": {
                "type": "string",
                "enum": ["skypilot", "kubernetes", "karmada", "slurm", "all"],
            }
        },
    ),
]
FormatQuery = Annotated[str, Query(pattern="^(tar\\.gz|zip|tar)$")]
RunQuery = Annotated[
    list[str] | None,
    Query(
        max_length=4096,
        description="What the stages run (repeatable), as `straits export --run`: "
        "CMD, or KEY=CMD for a stage kind, a stage id or WORKLOAD/STAGE",
    ),
]


@router.get(
    "/plans/{plan_id}/export", tags=["plans"], response_class=Response, responses=ARCHIVE_RESPONSES
)
async def export_recorded(
    request: Request,
    plan_id: str,
    who: Caller,
    to: ToQuery,
    format: FormatQuery = "tar.gz",
    run: RunQuery = None,
    image: str | None = None,
    ordered: bool = False,
) -> Response:
    """A recorded plan as the schedulers' files, in one archive (`straits export PLAN --to
    T -o FILE.tar.gz`). A target no site of the plan is mapped to is a 400 naming the field
    to add."""
    api.export_targets(to)  # bad parameters fail before the body or plan is read
    api.check_image(image)
    doc = await run_in_threadpool(_own_document, request, who, plan_id)
    return await run_in_threadpool(_archive_response, doc, request, to, format, run, image, ordered)


@router.post(
    "/exports",
    tags=["plans"],
    response_class=Response,
    responses=ARCHIVE_RESPONSES,
    openapi_extra=documented(
        dict[str, Any],
        "A plan document, as `straits plan --json` prints it (JSON or YAML).",
        yaml=True,
    ),
)
async def export_document(
    request: Request,
    who: Caller,
    to: ToQuery,
    format: FormatQuery = "tar.gz",
    run: RunQuery = None,
    image: str | None = None,
    ordered: bool = False,
) -> Response:
    """A plan document (not recorded here) as the schedulers' files, in one archive."""
    api.export_targets(to)  # bad parameters fail before the body or plan is read
    api.check_image(image)
    data, text = await document_and_text(request, BODY)
    doc = await run_in_threadpool(read_document, data, BODY, text)
    await run_in_threadpool(_not_a_recorded_id, request, who, doc)
    return await run_in_threadpool(_archive_response, doc, request, to, format, run, image, ordered)


def _not_a_recorded_id(request: Request, who: Principal, doc: PlanDocument) -> None:
    """Refuse a document that carries a recorded plan's id but decides otherwise (an edited
    plan whose ``digest`` was deleted and ``id`` kept): its export named every file, job and
    checkpoint folder after the recorded plan, and the admission hook took its launches for
    that plan's. Only the caller's tenant's plans are compared (an admin's: any): another
    tenant's id is answered as an id nobody recorded, and logged (its 400, or the 409 of its
    altered row, told another tenant that the id exists: api30). The document is compared
    with the plan the ledger entry proves, never with the stored copy: an altered ``plans.result``
    (not JSON: a 500; another plan: the recorded document itself refused as edited, or an
    edited one let through) is a 409, as every read of the plan answers."""
    from straits.plandoc import DECISION_FIELDS, canonical, plan_body
    from straits.store.proven import prove_plan
    from straits.store.records import get_plan, refuse_detached, stored_json

    store = request.app.state.store
    if not who.is_admin:
        found = owner.owners(store, [doc.id])
        if doc.id not in found:
            return  # nobody's plan: a new one
        if found[doc.id] != who.tenant:  # another tenant's: logged, answered as nobody's
            refuse(request, 404, f"plan document with plan {doc.id} of another tenant", who)
            return
    row = get_plan(store, doc.id)
    if row is None:
        return
    if row.ledger_seq is not None:  # recorded: what its entry proves (409 if the row differs)
        stored: Any = prove_plan(store, row, request.app.state.ledger_keys).plan
    else:
        refuse_detached(row)  # to be recorded but pointing to no entry: altered, a 409
        stored = stored_json(row, "result")  # a plan never recorded: its row is all there is
        if stored is None:
            return
        if not isinstance(stored, dict):
            raise LedgerError(
                f"plan {row.id}: its stored result is not a plan: the plans table was "
                "altered; refusing to compare with it"
            )
    recorded = plan_body(stored)
    if canonical({k: recorded.get(k) for k in DECISION_FIELDS}) == canonical(
        {k: doc.plan.get(k) for k in DECISION_FIELDS}
    ):
        return
    raise InputError(
        "a recorded plan has this id, and this plan is not that one (its placements or "
        "decisions differ)",
        source=BODY,
        path="id",
        expected="the recorded plan as `straits plan ID --show` prints it, or the edited plan "
        "without its `id` and `digest` (a new plan)",
    )


# --- impact --------------------------------------------------------------------------------------
class ImpactRequest(BaseModel):
    """What `straits impact` takes, as one JSON body."""

    # strict: ``"replan": "no"`` or ``0`` was taken as false, ``"time_limit": "10"`` as 10,
    # a number as a date (a Unix time); the date is YYYY-MM-DD within 2000-2100, as the CLI's
    # ``impact --date`` takes it (1900-01-01 was answered)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    REFERENCE: ClassVar[str] = "the body of `POST /v1/impact` in docs/server-and-ledger.md"
    date: Annotated[PlanningDate, Field(strict=False)]
    regime: Regime | None = None
    plans: list[Annotated[str, Field(min_length=4, max_length=64)]] = Field(
        default_factory=list, max_length=MAX_IMPACT_PLANS
    )
    """recorded plan ids or prefixes (default: the latest of each scenario and regime)"""
    documents: list[dict[str, Any]] = Field(default_factory=list, max_length=10)
    """plan documents, as `straits plan --json` prints them"""
    all: bool = False
    replan: bool = True
    time_limit: Annotated[float, Field(ge=0.5, le=3600)] = 10.0
    tenant: str | None = None
    prices: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_CHANGES)
    capacity: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_CHANGES)


@router.post(
    "/impact",
    tags=["plans"],
    openapi_extra=documented(ImpactRequest, "The date and changes to re-check plans against."),
    responses={200: {"model": dict[str, Any]}, **problems_doc(404, 409)},
)
async def impact(request: Request, who: Caller) -> dict[str, Any]:
    """Re-check plans as of a date, under a regime, with changed prices or capacity; answers
    exactly as `straits impact --json`."""
    data = await document_body(request, BODY)
    # off the event loop: 2 MiB of unknown keys are 150,000 problems, over half a second
    req = await run_in_threadpool(
        lambda: validate_as(ImpactRequest, data, source=BODY, error=RequestError)
    )
    if req.tenant is not None and not who.is_admin and req.tenant != who.tenant:
        raise await run_in_threadpool(  # the refusal is written: not on the event loop
            refuse,
            request,
            403,
            f"a token of tenant {who.tenant!r} cannot re-check the plans of {req.tenant!r}",
            who,
        )
    return await run_in_threadpool(_impact, request, who, req)


def _changes(model: type[M], items: list[dict[str, Any]], key: str) -> tuple[M, ...]:
    """Each change on its own, stopping at the first bad one (a list of 1,000 bad entries
    costs one error, not 1,000)."""
    out = []
    for i, item in enumerate(items):
        try:
            out.append(validate_as(model, item, source=BODY, error=RequestError))
        except InputError as exc:
            inner = f".{exc.path}" if exc.path and exc.path != "(top level)" else ""
            raise RequestError(
                exc.detail,
                source=BODY,
                path=f"{key}[{i}]{inner}",
                expected=exc.expected,
                problems=exc.problems_under(f"{key}[{i}]"),
            ) from None
    return tuple(out)


def _impact(request: Request, who: Principal, req: ImpactRequest) -> dict[str, Any]:
    from straits.impact import Overrides
    from straits.impact.overrides import CapacityChange, PriceChange

    store = request.app.state.store
    ov = Overrides(
        prices=_changes(PriceChange, req.prices, "prices"),
        capacity=_changes(CapacityChange, req.capacity, "capacity"),
    )
    docs = [read_document(d, f"{BODY}: documents[{i}]") for i, d in enumerate(req.documents)]
    docs += [_own_document(request, who, ref) for ref in req.plans]
    if not docs:
        tenant = req.tenant if who.is_admin else who.tenant
        recs = recorded_plans(store, tenant=tenant, latest_per_scenario=not req.all)
        recs = recs[-MAX_IMPACT_PLANS:]
        docs = [from_store(store, r.id) for r in recs]
    if not docs:
        raise RequestError(
            "no recorded plans to re-check",
            path="plans",
            expected="plan ids, documents, or plans recorded by your tenant",
        )
    limit = request.app.state.settings.max_time_limit
    if req.replan and req.time_limit * len(docs) > limit:
        raise RequestError(
            f"{len(docs)} re-plans of {req.time_limit:g} s each exceed this server's {limit:g} s",
            path="time_limit",
            expected="fewer plans, a shorter time_limit, or replan: false",
        )
    if req.replan and not replan_slots.acquire(blocking=False):
        raise BusyError(
            f"{REPLAN_SLOTS} impact requests with re-plans are running; try again shortly, or "
            "ask without re-plans (replan: false)",
            retry_after=max(1, math.ceil(req.time_limit * len(docs))),
        )
    try:
        return _impact_of(request, req, docs, ov)
    finally:
        if req.replan:
            replan_slots.release()


def _impact_of(
    request: Request, req: ImpactRequest, docs: list[PlanDocument], ov: Overrides
) -> dict[str, Any]:
    from straits.impact import impact as run_impact

    with borrowed_rules(request) as rs:
        results = [
            run_impact(
                d.id,
                d.scenario,
                d.plan,
                rs,
                date=req.date,
                regime=req.regime,
                overrides=ov,
                replan=req.replan,
                time_limit=req.time_limit,
            )
            for d in docs
        ]
    out = [r.to_json() for r in results]
    for doc in out:
        if doc.get("replan"):
            doc["replan"].pop("plan", None)
    return {"date": req.date.isoformat(), "regime": req.regime, "plans": out}
