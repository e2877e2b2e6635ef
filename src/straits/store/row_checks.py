"""Every plan and decision row against the ledger entry it points to, and every plan and check
entry against its row: the last step of the full ``ledger verify`` (:mod:`straits.store.integrity`).
Each scan walks its rows once in entry order and stops at its first problem."""

from __future__ import annotations

import json
from contextlib import closing

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from straits.store.ledger import Entry
from straits.store.proven import decision_row_problem, missing_decision, plan_row_problem
from straits.store.tables import DecisionRow, LedgerRow, PlanRow


def first_problem(s: Session) -> tuple[int | None, str, str] | None:
    """Every stored plan and decision row against its entry, and every plan entry against its
    row: the problem at the lowest entry (its number, the problem, its code), or None. Each
    scan stops at its first, in entry order, so with several tables altered the first entry
    that is wrong is named."""
    scans = (
        (_plan_rows(s), "plan-row"),
        (_plan_entries(s), "plan-row"),
        (_decision_rows(s), "decision-row"),
        (_decision_entries(s), "decision-row"),
    )
    found = [(p[0], p[1], code) for p, code in scans if p is not None]
    if found:
        return min(found, key=lambda p: p[0] or 0)
    detached = _detached_plans(s)  # no entry to name: after any problem that has one
    return (None, detached[1], "plan-row") if detached is not None else None


def _plan_rows(s: Session) -> tuple[int, str] | None:
    q = (
        select(PlanRow, LedgerRow)
        .outerjoin(LedgerRow, LedgerRow.seq == PlanRow.ledger_seq)
        .where(PlanRow.ledger_seq.is_not(None))
        .order_by(PlanRow.ledger_seq)
    )
    with closing(s.execute(q).yield_per(500)) as rows:  # closed when a scan stops early
        for plan, row in rows:
            if row is None:
                return plan.ledger_seq, (
                    f"plan {plan.id} points to ledger entry {plan.ledger_seq}, which does not exist"
                )
            problem = plan_row_problem(plan, Entry.from_row(row))
            if problem:
                return row.seq, problem
    return None


def _detached_plans(s: Session) -> tuple[None, str] | None:
    """A finished plan marked for recording is written with its entry, in one transaction: one
    that points to no entry was detached from it, or made up (a row copied under another id).
    Every read refuses it, naming ``ledger verify``, which passed it: no entry is there to
    compare it with, so it is named without an entry number, when nothing else is wrong (a
    row detached from its entry is named by that entry first)."""
    found = s.execute(
        select(PlanRow.id)
        .where(PlanRow.status == "done", PlanRow.record.is_(True), PlanRow.ledger_seq.is_(None))
        .order_by(PlanRow.id)
        .limit(1)
    ).first()
    if found is None:
        return None
    return None, (
        f"plan {found[0]} is finished and marked for recording but points to no ledger entry: "
        "it was detached from its entry or made up (the plans table was altered)"
    )


def _plan_entries(s: Session) -> tuple[int, str] | None:
    """Every plan entry has the plan row that points to it (a row deleted, or detached by
    clearing its ledger_seq, would otherwise pass as a plan never recorded)."""
    q = (
        select(LedgerRow.seq, LedgerRow.body)
        .outerjoin(PlanRow, PlanRow.ledger_seq == LedgerRow.seq)
        .where(LedgerRow.kind == "plan", PlanRow.id.is_(None))
        .order_by(LedgerRow.seq)
        .limit(1)
    )
    first = s.execute(q).first()
    if first is None:
        return None
    seq, body = first
    doc = json.loads(body)  # an object: the chain walk checked every plan entry's body
    result = doc.get("result") if isinstance(doc, dict) else None
    plan_id = result.get("plan_id") if isinstance(result, dict) else None
    return seq, (
        f"ledger entry {seq} records plan {plan_id}, but no plan row points to it: "
        "the plan was deleted or detached from its entry (the plans table was "
        "altered)"
    )


def _decision_rows(s: Session) -> tuple[int, str] | None:
    q = (
        select(DecisionRow, LedgerRow)
        .outerjoin(LedgerRow, LedgerRow.seq == DecisionRow.ledger_seq)
        .order_by(DecisionRow.ledger_seq)
    )
    with closing(s.execute(q).yield_per(500)) as rows:
        for decision, row in rows:
            if row is None:
                return decision.ledger_seq, (
                    f"decision {decision.id} points to ledger "
                    f"entry {decision.ledger_seq}, which does not "
                    "exist"
                )
            problem = decision_row_problem(decision, Entry.from_row(row))
            if problem:
                return row.seq, problem
    return None


def _decision_entries(s: Session) -> tuple[int, str] | None:
    """Every check entry has exactly the one decision row that points to it: a row deleted
    (or detached by moving its ``ledger_seq``) or copied passed, since each remaining row
    still matched its entry. Check entries with no row are few (only those appended by hand
    have none), and a copied row is one grouped count."""
    found: list[tuple[int, str]] = []
    dup = s.execute(
        select(DecisionRow.ledger_seq, func.count())
        .group_by(DecisionRow.ledger_seq)
        .having(func.count() > 1)
        .order_by(DecisionRow.ledger_seq)
        .limit(1)
    ).first()
    if dup is not None:
        row = s.get(LedgerRow, int(dup[0]))
        if row is not None:  # a row pointing nowhere is named by _decision_rows
            problem = missing_decision(Entry.from_row(row), int(dup[1]))
            if problem:
                found.append((row.seq, problem))
    q = (
        select(LedgerRow)
        .outerjoin(DecisionRow, DecisionRow.ledger_seq == LedgerRow.seq)
        .where(LedgerRow.kind == "check", DecisionRow.id.is_(None))
        .order_by(LedgerRow.seq)
    )
    with closing(s.execute(q).yield_per(500)) as rows:
        for (entry_row,) in rows:
            problem = missing_decision(Entry.from_row(entry_row), 0)
            if problem:
                found.append((entry_row.seq, problem))
                break
    return min(found) if found else None
