"""What gets recorded: checks and plans, stored and appended to the ledger in one transaction.

A ledger body always has the same keys: ``inputs`` (the requests, or the digest of the stored
scenario and the planner's options), ``inputs_digest``, ``rules`` (the digest of all loaded packs
and each pack's name, version and digest), ``regime``, ``date`` and ``result`` (the ``check``
answer, or the plan id and the plan JSON contract).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from straits.errors import InputError, LedgerError, NotFoundError, NotReadyError
from straits.model.request import CheckRequest
from straits.model.scenario import Scenario
from straits.plan import Plan
from straits.rules import RuleSet
from straits.store.canonical import loads_stored
from straits.store.db import Store
from straits.store.ledger import Entry, append, canonical, digest
from straits.store.owner import id_prefix, owned_plan_ids
from straits.store.tables import DecisionRow, PlanRow, ScenarioRow, utcnow

PLAN_STATES = ("queued", "running", "done", "failed", "cancelled")


def rules_body(rules: RuleSet) -> dict[str, Any]:
    return {
        "digest": rules.digest,  # not via straits.api: store/ does not import the shells' API
        "packs": [{"name": p.name, "version": p.version, "digest": p.digest} for p in rules.packs],
    }


def _one_or_list(values: list[str]) -> str | list[str]:
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else distinct


def check_body(
    rules: RuleSet, requests: list[CheckRequest], answer: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A check's inputs and the ledger body recording it with ``answer``."""
    inputs = {"requests": [r.model_dump(mode="json", exclude_none=True) for r in requests]}
    body = {
        "inputs": inputs,
        "inputs_digest": digest(inputs),
        "rules": rules_body(rules),
        "regime": _one_or_list([r.regime for r in requests]),
        "date": _one_or_list([r.date.isoformat() for r in requests]),
        "result": answer,
    }
    return inputs, body


def decision_row(
    entry: Entry, inputs: dict[str, Any], answer: Any, *, key: str | None = None
) -> DecisionRow:
    """The row of a check recorded as ``entry``."""
    return DecisionRow(
        tenant=entry.tenant,
        actor=entry.actor,
        request=canonical(inputs),
        answer=canonical(answer),
        ledger_seq=entry.seq,
        idempotency_key=key,
    )


def record_check(
    store: Store,
    rules: RuleSet,
    requests: list[CheckRequest],
    answer: Any,
    *,
    tenant: str,
    actor: str,
) -> Entry:
    """Store a check and its answer and append it to the ledger (one transaction); with an
    idempotency key, ``check_once.record_check_once``."""
    inputs, body = check_body(rules, requests, answer)
    with store.write() as s:
        entry = append(s, tenant=tenant, actor=actor, kind="check", body=body)
        s.add(decision_row(entry, inputs, answer))
    return entry


def record_admission(
    store: Store,
    rules: RuleSet,
    inputs: dict[str, Any],
    result: Any,
    *,
    regime: str,
    date: dt.date,
    tenant: str,
    actor: str,
) -> Entry:
    """Append a scheduler launch and Straits' answer to it to the ledger (one transaction)."""
    body = {
        "inputs": inputs,
        "inputs_digest": digest(inputs),
        "rules": rules_body(rules),
        "regime": regime,
        "date": date.isoformat(),
        "result": result,
    }
    with store.write() as s:
        return append(s, tenant=tenant, actor=actor, kind="admission", body=body)


def record_replay(
    store: Store,
    candidate: RuleSet,
    inputs: dict[str, Any],
    result: Any,
    *,
    regime: str | list[str],
    date: dt.date,
    tenant: str,
    actor: str,
) -> Entry:
    """Append a rules replay (``straits rules replay --record``): the candidate packs, what was
    replayed and the decisions that would change, in one transaction."""
    body = {
        "inputs": inputs,
        "inputs_digest": digest(inputs),
        "rules": rules_body(candidate),
        "regime": regime,
        "date": date.isoformat(),
        "result": result,
    }
    with store.write() as s:
        return append(s, tenant=tenant, actor=actor, kind="replay", body=body)


# --- scenarios and plans -------------------------------------------------------------------------
def scenario_document(sc: Scenario) -> dict[str, Any]:
    """The scenario as validated (defaults filled, ids canonical): what the planner used."""
    return dict(sc.model_dump(mode="json"))


def save_scenario(session: Session, sc: Scenario) -> str:
    doc = scenario_document(sc)
    ref = digest(doc)
    if session.get(ScenarioRow, ref) is None:
        try:  # flushed before the plan row that refers to it
            with session.begin_nested():
                session.add(ScenarioRow(digest=ref, name=sc.name, body=canonical(doc)))
        except IntegrityError:
            # stored meanwhile by a concurrent submission of the same scenario (PostgreSQL;
            # SQLite's write lock orders them): content-addressed, so it is this one. It failed
            # the second submission ("duplicate key value violates ... scenarios_pkey")
            pass
    return ref


def load_scenario_row(store: Store, ref: str) -> dict[str, Any]:
    with store.session() as s:
        row = s.get(ScenarioRow, ref)
        if row is None:
            raise NotFoundError(f"no stored scenario {ref[:12]}")
        try:
            doc = loads_stored(row.body)
        except ValueError:  # rewritten: not JSON, NULL, too deep
            doc = None
        if not isinstance(doc, dict) or digest(doc) != ref:  # content-addressed
            raise LedgerError(
                f"stored scenario {ref[:12]}... was altered: its content no "
                "longer has its digest; refusing to use it"
            )
        return dict(doc)


def plan_body(
    ref: str, options: dict[str, Any], plan: Plan, rules: RuleSet, plan_id: str
) -> dict[str, Any]:
    inputs = {"scenario_digest": ref, "options": options}
    return {
        "inputs": inputs,
        "inputs_digest": digest(inputs),
        "rules": rules_body(rules),
        "regime": plan.regime,
        "date": plan.date.isoformat(),
        "result": {"plan_id": plan_id, "plan": plan.to_json()},
    }


def new_plan_id() -> str:
    return uuid.uuid4().hex


def record_plan(
    store: Store,
    sc: Scenario,
    plan: Plan,
    rules: RuleSet,
    options: dict[str, Any],
    *,
    tenant: str,
    actor: str,
    plan_id: str | None = None,
) -> tuple[str, Entry]:
    """Store a plan made elsewhere (the CLI) and append it to the ledger: one transaction.
    ``plan_id`` defaults to a new random id (the CLI passes the plan's content id)."""
    plan_id = plan_id or new_plan_id()
    with store.write() as s:
        ref = save_scenario(s, sc)
        # created before its entry: finished_at is served as the entry's recorded_at (led50);
        # the column's default, taken at the flush after the append, was later
        created = utcnow()
        entry = append(
            s,
            tenant=tenant,
            actor=actor,
            kind="plan",
            body=plan_body(ref, options, plan, rules, plan_id),
        )
        s.add(
            PlanRow(
                id=plan_id,
                tenant=tenant,
                actor=actor,
                scenario_digest=ref,
                options=canonical(options),
                status="done",
                result=canonical(plan.to_json()),
                ledger_seq=entry.seq,
                created_at=created,
                finished_at=utcnow(),
            )
        )
    return plan_id, entry


def get_plan(store: Store, plan_id: str) -> PlanRow | None:
    with store.session() as s:
        return s.get(PlanRow, plan_id)


def list_plans(store: Store, tenant: str | None, limit: int = 100) -> list[PlanRow]:
    with store.session() as s:
        q = select(PlanRow).order_by(PlanRow.created_at.desc()).limit(limit)
        if tenant is not None:
            q = q.where(PlanRow.tenant == tenant)
        return list(s.scalars(q))


def tenant_numbers(store: Store, seqs: list[int]) -> dict[int, int]:
    """The tenant's own numbers (``tenant_seq``) of the global entry numbers ``seqs``."""
    from straits.store.tables import LedgerRow

    if not seqs:
        return {}
    with store.session() as s:
        rows = s.execute(
            select(LedgerRow.seq, LedgerRow.tenant_seq).where(LedgerRow.seq.in_(set(seqs)))
        )
        return {int(a): int(b) for a, b in rows}


def stored_json(row: PlanRow, column: str) -> Any:
    """A JSON column of a plan row (None when empty); ``LedgerError`` when it is not JSON:
    Straits only writes JSON there, so the plans table was altered (a 409, not a crash)."""
    text = getattr(row, column)
    if not text:
        return None
    try:
        return loads_stored(text)
    except ValueError:  # not JSON, or nested thousands deep
        raise LedgerError(
            f"plan {row.id}: its stored {column} is not JSON: the plans table "
            "was altered; refusing to use it",
            row.ledger_seq,
        ) from None


def plan_job_json(row: PlanRow, *, with_plan: bool = True) -> dict[str, Any]:
    """A plan job as the API shows it: its state, attempts, progress and, once done, the plan
    contract (not read without ``with_plan``: a list shows no plan bodies)."""

    def iso(t: dt.datetime | None) -> str | None:
        if t is None:
            return None
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).isoformat()

    return {
        "id": row.id,
        "tenant": row.tenant,
        "status": row.status,
        "created_at": iso(row.created_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "options": stored_json(row, "options"),
        "record": bool(row.record),
        "attempts": row.attempts or 0,
        "cancel_requested": bool(row.cancel_requested),
        "progress": stored_json(row, "progress"),
        "ledger_seq": row.ledger_seq,
        "error": row.error,
        **({"plan": stored_json(row, "result")} if with_plan else {}),
    }


@dataclass(frozen=True)
class RecordedPlan:
    """A finished plan read back: its id, the scenario it was made from, its JSON contract."""

    id: str
    tenant: str
    scenario: Scenario
    plan: dict[str, Any]
    ledger_seq: int | None
    created_at: dt.datetime | None
    options: dict[str, Any] | None = None
    """the planner options, as the entry records them"""
    scenario_doc: dict[str, Any] | None = None
    """the stored scenario document ``scenario`` was validated from, its digest checked"""


def _recorded(store: Store, row: PlanRow) -> RecordedPlan:
    """A recorded plan as the log proves it (``proven.prove_plan``): the plan, tenant and
    scenario come from its ledger entry; a stored copy that differs is refused."""
    from straits.loading import parse_scenario
    from straits.store.proven import prove_plan

    p = prove_plan(store, row)
    ref = row.scenario_digest
    sc = parse_scenario(p.scenario, source=f"stored scenario {ref[:12]}", stored=True)
    return RecordedPlan(
        row.id,
        p.proof.entry.tenant,
        sc,
        p.plan,
        p.proof.entry.seq,
        row.created_at,
        dict(p.options or {}),  # as the entry records them: its body not decoded again
        p.scenario,
    )


def find_plan(store: Store, ref: str, *, tenant: str | None = None) -> RecordedPlan:
    """The finished plan whose id is ``ref`` or starts with it (at least 4 characters), as its
    ledger entry proves it. This is the one way a recorded plan is read for use (export,
    impact, the API, admission): a plan that is not recorded, or whose stored copy differs from
    its entry, is refused. With ``tenant``, only that tenant's plans are found, whole id or
    prefix, their owner decided before any row is read (``store.owner``): another tenant's
    plan, tampered or not, is a :class:`NotFoundError`, never a ``LedgerError``."""
    if len(ref) < 4:
        raise InputError(
            f"plan id {ref!r} is too short",
            path="PLAN",
            expected="a plan id or a unique prefix of at least 4 characters",
        )
    if tenant is not None:  # decided from raw values first: another's plan is "no plan"
        ids = owned_plan_ids(store, ref, tenant)
        with store.session() as s:
            rows = [r for r in (s.get(PlanRow, i) for i in ids) if r is not None]
    else:
        with store.session() as s:
            exact = s.get(PlanRow, ref)
            q = select(PlanRow).where(id_prefix(PlanRow.id, ref))
            rows = [exact] if exact is not None else list(s.scalars(q.limit(2)))
    if not rows:
        raise NotFoundError(
            f"no plan {ref!r} in {store!r}; `straits ledger show` lists the recorded ones"
        )
    if len(rows) > 1:
        raise InputError(
            f"plan id prefix {ref!r} matches several plans", path="PLAN", expected="a longer prefix"
        )
    if rows[0].ledger_seq is not None:  # recorded: its entry says what it is
        return _recorded(store, rows[0])
    if rows[0].status != "done" or not rows[0].result:
        raise NotReadyError(rows[0].id, rows[0].status, path="PLAN")
    refuse_detached(rows[0])
    raise InputError(
        f"plan {rows[0].id} was not recorded in the ledger (record=false), so nothing proves it",
        path="PLAN",
        expected="a recorded plan, or the plan's JSON file or its scenario",
    )


def recorded_plans(
    store: Store, *, tenant: str | None = None, latest_per_scenario: bool = False
) -> list[RecordedPlan]:
    """Finished plans recorded in the ledger, oldest first (optionally only the latest plan of
    each scenario name and regime), each proven by its entry. Which plans are ``tenant``'s is
    decided as for reading one (``store.owner``), and every plan entry must have its row:
    chosen by the rows' ``tenant``, ``status`` and ``ledger_seq`` columns, a plan whose row was
    moved to another tenant, marked failed, detached from its entry or deleted dropped out of
    its owner's impact without a word (``no recorded plans``); now it is refused
    (``LedgerError`` naming the entry), as reading it is."""
    import sys

    from sqlalchemy import and_, exists, or_

    from straits.store.owner import owned_ids
    from straits.store.tables import LedgerRow

    with store.session() as s:
        q = (
            select(PlanRow)
            .outerjoin(LedgerRow, LedgerRow.seq == PlanRow.ledger_seq)
            .where(
                or_(
                    PlanRow.ledger_seq.is_not(None),  # its entry decides whether it is done
                    and_(PlanRow.status == "done", PlanRow.record.is_(True)),  # or detached
                )
            )
            .order_by(PlanRow.ledger_seq)
        )
        if tenant is not None:
            mine = set(owned_ids(s, q, tenant, sys.maxsize))
            theirs = q.where(or_(PlanRow.tenant == tenant, LedgerRow.tenant == tenant))
            rows = [r for r in s.scalars(theirs) if r.id in mine]  # owned_ids' candidates
        else:
            rows = list(s.scalars(q))
        orphan = select(LedgerRow.seq).where(
            LedgerRow.kind == "plan", ~exists().where(PlanRow.ledger_seq == LedgerRow.seq)
        )
        if tenant is not None:
            orphan = orphan.where(LedgerRow.tenant == tenant)
        lost = s.scalar(orphan.order_by(LedgerRow.seq).limit(1))
    if lost is not None:
        raise LedgerError(
            f"ledger entry {lost} records a plan, but no plan row points to it: the plan was "
            "deleted or detached from its entry (the plans table was altered)",
            int(lost),
        )
    for r in rows:
        refuse_detached(r)
    plans = [_recorded(store, r) for r in rows]
    if latest_per_scenario:
        latest: dict[tuple[str, str], RecordedPlan] = {}
        for p in plans:
            latest[(p.scenario.name, str(p.plan.get("regime")))] = p
        plans = sorted(latest.values(), key=lambda p: p.ledger_seq or 0)
    return plans


def refuse_detached(row: PlanRow) -> None:
    """A finished plan that was to be recorded is written with its ledger entry, in one
    transaction: one without an entry number was detached from it (``LedgerError``). (A plan
    submitted with ``record=false`` has nothing to prove it; `ledger verify` finds a recorded
    plan whose row was made to look like one.)"""
    if row.status == "done" and row.record and row.ledger_seq is None:
        raise LedgerError(
            f"plan {row.id} was to be recorded but points to no ledger entry: the "
            "plans table was altered; refusing to use it (`straits ledger "
            "verify` shows all that differs)"
        )


def proven_job_json(store: Store, row: PlanRow, *, tenant_view: bool) -> dict[str, Any]:
    """:func:`plan_job_json` for the API, a recorded plan taken from its proven ledger entry
    (``LedgerError`` when the stored copy differs). In a tenant's view ``ledger_seq`` is the
    tenant's own entry number, the one its receipt route takes."""
    refuse_detached(row)
    if row.ledger_seq is None:
        return plan_job_json(row)
    from straits.store.proven import prove_plan

    p = prove_plan(store, row)  # first: an altered row is a 409 naming its entry
    job = plan_job_json(row, with_plan=False)  # the stored copy not decoded again (web33)
    job["plan"] = p.plan
    # the one proven time: the entry's (led50: an edited finished_at was served beside the
    # proven plan; created_at and started_at are the queue's, which no entry records)
    job["finished_at"] = p.proof.entry.recorded_at
    # a finished job's progress is cleared (queue.finish): an edited one showed a "best plan"
    # the entry never held
    job["progress"] = None
    if tenant_view:
        job["ledger_seq"] = p.proof.entry.tenant_seq
    return job
