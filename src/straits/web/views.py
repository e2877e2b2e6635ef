"""What each console page shows, read through the Python API and the store (no HTTP here).

Every function takes the signed-in principal and returns only that tenant's records (an admin
sees all); a record of another tenant is reported exactly like a missing one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from straits.errors import LedgerError, NotFoundError, RequestError
from straits.model.scenario import Scenario
from straits.report import plan_context
from straits.report.view import Recorded, build_view
from straits.rules.engine import RuleSet
from straits.store.db import Store
from straits.store.keys import Keys
from straits.store.ledger import Entry
from straits.store.owner import owned_ids, owned_plan_ids
from straits.store.proven import plan_row_problem, prove_entries
from straits.store.records import stored_json
from straits.store.removed import not_cut
from straits.store.tables import LedgerRow, PlanRow, ScenarioRow
from straits.store.tokens import Principal

STATUS_ICON = {
    "queued": "\u23f3",
    "running": "\u25b6",
    "done": "\u2713",
    "failed": "\u2717",
    "cancelled": "\u2298",
}


@dataclass(frozen=True)
class Job:
    """A plan as the console lists it."""

    id: str
    tenant: str
    scenario: str | None
    status: str
    progress: dict[str, Any] | None
    error: str | None
    created_at: str
    ledger_seq: int | None
    summary: str | None


def _iso(t: dt.datetime | None) -> str:
    if t is None:
        return ""
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).isoformat()


UNPROVEN = "not proven by the ledger"


def _summary(
    row: PlanRow, entry: Entry | None, proven: bool, name: str | None = None
) -> str | None:
    """A finished plan in a line: a recorded one as its (proven) entry records it (``name``,
    the scenario's name shown beside it, held to the entry's too)."""
    if row.ledger_seq is not None:
        if entry is None or not proven or plan_row_problem(row, entry, scenario_name=name):
            return UNPROVEN
        plan = (entry.content.get("result") or {}).get("plan")
    else:
        plan = stored_json(row, "result")
    return _plan_line(plan)


def _plan_line(plan: Any) -> str | None:
    """A plan JSON in a line (None when it is no plan)."""
    if not isinstance(plan, dict):
        return None
    placed = len(plan.get("assignments") or [])
    unplaced = len(plan.get("unplaced") or [])
    cost = float(plan.get("total_cost_usd") or 0.0)
    text = f"{placed} placed, ${cost / 1e6:,.2f}M"
    return text + (f", {unplaced} unplaced" if unplaced else "")


def _job(
    row: PlanRow,
    name: str | None,
    seq: int | None,
    entry: Entry | None = None,
    proven: bool = False,
) -> Job:
    # a recorded plan's line is its entry's, whatever its row's status: an edited error or
    # status was shown (in red, "revoked"), the "not proven" mark hidden or never made (led50)
    recorded = row.ledger_seq is not None
    return Job(
        id=row.id,
        tenant=row.tenant,
        scenario=name,
        status=row.status,
        progress=None if recorded else stored_json(row, "progress"),
        error=None if recorded else row.error,
        created_at=_iso(row.created_at),
        ledger_seq=seq,
        summary=_summary(row, entry, proven, name) if row.status == "done" or recorded else None,
    )


def _jobs_query(who: Principal) -> Any:
    """Plans with their scenario's name, their entry number as ``who`` may see it (a
    tenant's own number, ``tenant_seq``, never the global one, which only admins see) and
    their entry."""
    seq = LedgerRow.seq if who.is_admin else LedgerRow.tenant_seq
    return (
        select(PlanRow, ScenarioRow.name, seq, LedgerRow)
        .join(ScenarioRow, ScenarioRow.digest == PlanRow.scenario_digest, isouter=True)
        .join(LedgerRow, LedgerRow.seq == PlanRow.ledger_seq, isouter=True)
    )


def jobs(store: Store, who: Principal, limit: int = 100, keys: Keys | None = None) -> list[Job]:
    """The newest plans ``who`` may see (the first page of :func:`jobs_page`)."""
    return jobs_page(store, who, limit=limit, keys=keys)[0]


def jobs_page(
    store: Store,
    who: Principal,
    *,
    cursor: str | None = None,
    limit: int = 100,
    keys: Keys | None = None,
) -> tuple[list[Job], str | None]:
    """One page of the plans ``who`` may see, newest first, after ``cursor`` (a cursor of the
    API's plan list: keyset, stable while plans are added), and the next page's cursor (None
    on the last); a recorded one summarized from its entry, the page's entries proven in one
    read of the tree (``UNPROVEN`` when they are not). A forged cursor is a ``RequestError``."""
    from sqlalchemy import and_, or_

    from straits.server.listing import decode_cursor, encode_cursor

    q = _jobs_query(who).order_by(PlanRow.created_at.desc(), PlanRow.id.desc())
    if cursor is not None:
        at, last_id = decode_cursor(cursor, 2)
        try:
            t = dt.datetime.fromisoformat(at)
        except ValueError:
            raise RequestError("not a cursor this server gave", path="cursor") from None
        q = q.where(
            or_(PlanRow.created_at < t, and_(PlanRow.created_at == t, PlanRow.id < last_id))
        )
    with store.session() as s:
        more: bool | None = None  # a tenant's: from its plans' ids, read before the page
        if not who.is_admin:  # the tenant's as reading a plan by id decides (store/owner.py)
            ids = owned_ids(s, q, who.tenant, limit + 1)
            more = len(ids) > limit
            q = q.where(PlanRow.id.in_(ids))
        rows = s.execute(q.limit(limit + 1)).all()
    page = rows[:limit]
    entries = {e.seq: Entry.from_row(e) for *_, e in page if e is not None}
    try:
        prove_entries(store, list(entries.values()), keys)
        proven = True
    except LedgerError:
        proven = False
    out = [
        _job(row, name, seq, entries.get(row.ledger_seq or 0), proven) for row, name, seq, _ in page
    ]
    next_cursor = None
    if (len(rows) > limit if more is None else more) and page:
        last = page[-1][0]
        next_cursor = encode_cursor([last.created_at.isoformat(), last.id])
    return out, next_cursor


def job_found(store: Store, who: Principal, plan_id: str) -> Any:
    """The access check, then the plan's row, scenario name, entry number and entry row (the
    one place the console decides whose a plan is: ``job`` and the plan page cache)."""
    # a tenant's: decided from raw values before the row is read (another tenant's plan,
    # tampered or not, is "no plan", never the 409 of an unreadable row)
    if not who.is_admin and owned_plan_ids(store, plan_id, who.tenant) != [plan_id]:
        raise NotFoundError(f"no plan {plan_id!r}")
    with store.session() as s:
        found = s.execute(_jobs_query(who).where(PlanRow.id == plan_id)).first()
    if found is None:
        raise NotFoundError(f"no plan {plan_id!r}")
    return found


def job(store: Store, who: Principal, plan_id: str) -> Job:
    return _job_of(store, job_found(store, who, plan_id))


def _job_of(store: Store, found: Any) -> Job:
    """The line of a plan :func:`job_found` found, its entry proven."""
    entry = Entry.from_row(found[3]) if found[3] is not None else None
    try:
        prove_entries(store, [entry] if entry is not None else [])
        proven = True
    except LedgerError:
        proven = False
    return _job(found[0], found[1], found[2], entry, proven)


def recorded_plan(
    store: Store, who: Principal, plan_id: str
) -> tuple[Scenario, dict[str, Any], Recorded]:
    """A finished plan of ``who``'s tenant: its scenario, plan JSON and ledger entry; one
    submitted with ``record=false`` as stored (nothing proves it: it has no entry, as the
    API's plan document of it has none)."""
    j, read = _read_plan(store, who, plan_id)
    return read or _recorded_plan(store, who, plan_id, j)


def _read_plan(
    store: Store, who: Principal, plan_id: str
) -> tuple[Job, tuple[Scenario, dict[str, Any], Recorded] | None]:
    """The plan's line and, for a finished, recorded plan, what :func:`recorded_plan` gives,
    read once (web33): one access check and read of the row, its entry proven once
    (``prove_plan``: the entry against the log, the row against the entry, the scenario
    against its digest), each stored text decoded once, the scenario validated once. Where
    ``job`` then ``find_plan`` each read, proved and decoded it again: about 0.35 s of CPU of
    a 1,000-workload plan's page. Any other plan: ``job``, and None (read as before)."""
    from straits.loading import parse_scenario
    from straits.store.proven import prove_plan

    found = job_found(store, who, plan_id)  # the access check first
    row, name = found[0], found[1]
    if row.ledger_seq is None:  # one with an entry is proven, whatever its row's status
        return _job_of(store, found), None
    progress = stored_json(row, "progress")  # as ``_job`` reads it, before the proof
    p = prove_plan(store, row)  # LedgerError (409) for an altered row, entry or scenario
    entry = p.proof.entry
    if name != p.scenario.get("name"):  # the name shown, as the list holds it (led50)
        raise LedgerError(
            f"plan {row.id} (ledger entry {entry.seq}): its scenario's stored name differs "
            "from the scenario the entry records: the scenarios table was altered",
            entry.seq,
        )
    shown = entry.seq if who.is_admin else entry.tenant_seq  # a tenant sees its own number
    j = Job(
        id=row.id,
        tenant=row.tenant,
        scenario=name,
        status=row.status,
        progress=progress,
        error=row.error,
        created_at=_iso(row.created_at),
        ledger_seq=shown,
        summary=_plan_line(p.plan),
    )
    sc = parse_scenario(
        p.scenario, source=f"stored scenario {row.scenario_digest[:12]}", stored=True
    )
    recorded = Recorded(
        plan_id=row.id,
        seq=shown,
        hash=entry.hash,
        recorded_at=entry.recorded_at,
        tenant=entry.tenant,
    )
    return j, (sc, p.plan, recorded)


def _recorded_plan(
    store: Store, who: Principal, plan_id: str, j: Job
) -> tuple[Scenario, dict[str, Any], Recorded]:
    """:func:`recorded_plan` of a plan not finished or not recorded (as before web33), ``j``
    its line (``job``: the tenant check made first, another tenant's plan is "no plan")."""
    from straits.store.ledger import get_entry
    from straits.store.records import find_plan

    if j.status == "done" and j.ledger_seq is None:
        unrecorded = _unrecorded_plan(store, j.id)
        if unrecorded is not None:
            return unrecorded
    rec = find_plan(store, plan_id)  # as its ledger entry proves it (LedgerError otherwise)
    recorded = Recorded(plan_id=rec.id, tenant=rec.tenant)
    if rec.ledger_seq is not None:
        entry = get_entry(store, rec.ledger_seq)
        if entry is not None:  # a tenant sees its own numbering, an admin the global one
            recorded = Recorded(
                plan_id=rec.id,
                seq=entry.seq if who.is_admin else entry.tenant_seq,
                hash=entry.hash,
                recorded_at=entry.recorded_at,
                tenant=entry.tenant,
            )
    return rec.scenario, rec.plan, recorded


def _unrecorded_plan(
    store: Store, plan_id: str
) -> tuple[Scenario, dict[str, Any], Recorded] | None:
    """A finished plan submitted with ``record=false``, as stored (None when the row is not
    one: a plan to be recorded that has no entry is refused by ``find_plan``)."""
    from straits.loading import parse_scenario
    from straits.store.records import load_scenario_row, refuse_detached

    with store.session() as s:
        row = s.get(PlanRow, plan_id)
    if row is None or row.record or row.ledger_seq is not None:
        return None
    refuse_detached(row)
    plan = stored_json(row, "result")
    if not isinstance(plan, dict):
        return None
    doc = load_scenario_row(store, row.scenario_digest)
    sc = parse_scenario(doc, source=f"stored scenario {row.scenario_digest[:12]}", stored=True)
    return sc, plan, Recorded(plan_id=row.id, tenant=row.tenant)


def plan_document(store: Store, who: Principal, plan_id: str) -> dict[str, Any]:
    """The finished plan of ``who``'s tenant as a plan document, as the API serves it
    (``GET /v1/plans/ID/plan``); a plan not done yet is a NotReadyError (409)."""
    from straits.errors import NotReadyError
    from straits.server.routes import plan_document as document

    j = job(store, who, plan_id)  # tenant check first: another tenant's plan is "no plan"
    if j.status != "done":
        raise NotReadyError(j.id, j.status)
    with store.session() as s:
        row = s.get(PlanRow, j.id)
    assert row is not None
    return document(store, row, tenant_view=not who.is_admin)


def plan_page(store: Store, rules: RuleSet, who: Principal, plan_id: str) -> dict[str, Any]:
    j, read = _read_plan(store, who, plan_id)
    if j.status != "done":
        return {"job": j, "figures": {}}
    sc, plan, recorded = read or _recorded_plan(store, who, plan_id, j)
    view = build_view(plan, sc, rules, source=f"plan {plan_id}", recorded=recorded)
    return {"job": j, **plan_context(view)}


@dataclass(frozen=True)
class LedgerLine:
    seq: int
    recorded_at: str
    kind: str
    tenant: str
    actor: str
    plan_id: str | None
    what: str


def _what(kind: str, body: dict[str, Any]) -> tuple[str | None, str]:
    result = body.get("result") if isinstance(body, dict) else None
    if kind == "plan" and isinstance(result, dict):
        return str(result.get("plan_id") or "") or None, "plan"
    if kind == "check":
        answers = result if isinstance(result, list) else [result]
        decisions = sorted({str(a.get("decision")) for a in answers if isinstance(a, dict)})
        return None, f"check: {', '.join(decisions)}"
    return None, kind


def ledger_lines(
    store: Store,
    who: Principal,
    *,
    before: int | None = None,
    limit: int = 100,
    keys: Keys | None = None,
) -> tuple[list[LedgerLine], int | None]:
    """The newest ``limit`` entries before ``before``, newest first, and the number to go on
    from when there are older ones: an admin's every entry by global number, a tenant's own
    entries by its own numbering (``tenant_seq``), as in the API, and (as there) only as the
    log proves them (``LedgerError`` otherwise)."""
    from straits.store.ledger import MAX_ENTRY
    from straits.store.tables import LedgerRow

    number = LedgerRow.seq if who.is_admin else LedgerRow.tenant_seq
    with store.session() as s:
        q = select(LedgerRow).order_by(number.desc()).limit(limit + 1)
        if before is not None and before <= MAX_ENTRY:  # above it: every entry is before it
            q = q.where(number < before)
        above = None
        if not who.is_admin:
            q = q.where(LedgerRow.tenant == who.tenant)
            if before is not None and before <= MAX_ENTRY:
                # the tenant's lowest entry from ``before`` up (the page before this one's
                # last): the numbers below it go on from it, so an entry deleted just below a
                # page's end is a gap here, not on neither page (atk76)
                above = s.scalar(
                    select(func.min(LedgerRow.tenant_seq)).where(
                        LedgerRow.tenant == who.tenant, LedgerRow.tenant_seq >= before
                    )
                )
        rows = list(s.scalars(q))
    if not who.is_admin:
        prove_entries(store, [Entry.from_row(r) for r in rows[:limit]], keys)
        if not rows:  # nothing to prove: still not a log cut below its checkpoint
            not_cut(store)
        numbers = [int(r.tenant_seq) for r in rows[:limit]]
        _no_gap(who.tenant, numbers, len(rows) <= limit, None if above is None else int(above))
    out = []
    for row in rows[:limit]:
        # an admin's page is not proven: a body not JSON, or nested thousands deep, is the
        # altered entry's LedgerError (a 409 page), where json.loads was a 500
        body = Entry.from_row(row).content
        plan_id, what = _what(row.kind, body)
        n = row.seq if who.is_admin else row.tenant_seq
        out.append(
            LedgerLine(int(n), str(row.recorded_at), row.kind, row.tenant, row.actor, plan_id, what)
        )
    more = out[-1].seq if len(rows) > limit else None
    return out, more


def _no_gap(tenant: str, numbers: list[int], last_page: bool, above: int | None = None) -> None:
    """A tenant's page (newest first) whose numbers skip one (counted from ``above``, the
    tenant's entry just above the page, where there is one), or the last page not ending at
    its entry 1: an entry of the tenant was deleted (atk69; ``store/removed.py``)."""
    from straits.store.removed import first_gap, tenant_removed

    start = above - 1 if above is not None else (numbers[0] if numbers else 0)
    gap = first_gap(numbers, start, -1) if numbers else None
    if gap is None and above is not None and not numbers and above > 1:
        gap = above - 1  # nothing below the page above, which is not entry 1
    if gap is None and last_page and numbers and numbers[-1] > 1:
        gap = 1  # every number below its lowest is missing
    if gap is not None:
        raise tenant_removed(tenant, gap)
