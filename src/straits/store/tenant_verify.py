"""A tenant's own verification: every entry of one tenant, and every plan and decision row of
theirs, checked against the log, without showing the tenant anything of other tenants.

The admin's ``ledger verify`` rescans the whole log; a tenant may not see the global head,
other tenants' entries or their numbers, so until now a tenant's ``GET /v1/ledger/verify`` was
only the quick check (the stored tree consistent with the latest signed checkpoint), which says
nothing about whether *their* entries and records still match what the log holds.
:func:`verify_tenant` walks the tenant's entries in pages of :data:`PAGE` and for each page:

1. the tenant's numbers run 1, 2, 3, ... without a gap or a repeat (an entry deleted, or moved
   to another tenant by editing its ``tenant`` column, leaves a gap);
2. every entry is proven against the stored tree and the latest signed checkpoint
   (:func:`~straits.store.proven.prove_entries`: one read of the tree's nodes per page);
3. every plan and decision row pointing to those entries matches its entry, and every plan
   and check entry has its one row (as the full verification: a row deleted, copied or moved);
   after the pages, every plan and decision row of the tenant is the row of an entry of the
   tenant's of its kind (a row copied to point past the head, or to another's entry, passed).
4. every entry after the tenant's last one, up to the head, is still there (one count): an
   entry deleted that was the tenant's last leaves no gap in its numbering, and whose a
   deleted entry was cannot be told without the full verification, so a deletion after a
   tenant's last entry fails that tenant's check (one before it cannot have been theirs).

Problems are reported in the tenant's numbering with text of its own making, never a global
number, another tenant's name or a row's content. Memory is one page; time is ``O(k log n)``
for ``k`` entries of the tenant in a log of ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select

from straits.errors import LedgerError
from straits.store import integrity
from straits.store.db import Store
from straits.store.keys import Keys
from straits.store.ledger import Entry
from straits.store.proven import (
    decision_row_problem,
    missing_decision,
    plan_row_problem,
    prove_entries,
)
from straits.store.tables import AlteredRowError, DecisionRow, LedgerRow, PlanRow

PAGE = 500
"""entries proven and compared per read"""

_REWRITTEN = "the log no longer extends its latest signed checkpoint: it was rewritten"
#: what a tenant is told when the log as a whole fails the quick check, by its code: every
#: such failure was ``history-rewritten`` ("it was rewritten"), also a checkpoint not signed
#: by the key the tenant gave (a wrong ``--pubkey``) or a row of it altered, where the full
#: and quick checks say ``checkpoint-untrusted`` (led63)
_QUICK_PROBLEMS = {
    "checkpoint-untrusted": "the log's latest stored checkpoint is not trustworthy: it is "
    "not signed by a key given, or its row was altered",
    "checkpoint-missing": "the checkpoint the signing key last signed is not stored",
    "tail-removed": "entries were removed from the end of the log",
    "head-altered": "the log's head was altered",
    "head-missing": "the log's head is missing",
    "tree-altered": "the log's Merkle tree was altered",
}


@dataclass(frozen=True)
class TenantVerification:
    ok: bool
    entries: int
    """the tenant's entries found"""
    checked: int
    """of them, checked before the first problem (all of them when ``ok``)"""
    signatures: str
    first_bad: int | None = None
    """the tenant's own number of the first entry that does not verify"""
    problem: str | None = None
    code: str | None = None
    """as the full verification's (``Verification.code``): the quick check's code when the log
    as a whole fails it (``checkpoint-untrusted``, ``tail-removed``, ``history-rewritten``...),
    ``entry-missing``, ``entry-altered``, ``plan-row``, ``decision-row``, ``tail-removed``,
    ``value-altered``"""

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "code": self.code,
            "entries": self.entries,
            "checked": self.checked,
            "signatures": self.signatures,
            "first_bad": self.first_bad,
            "problem": self.problem,
        }


class _Bad(Exception):
    def __init__(self, tenant_seq: int, problem: str, code: str) -> None:
        self.tenant_seq, self.problem, self.code = tenant_seq, problem, code


def verify_tenant(store: Store, keys: Keys, tenant: str) -> TenantVerification:
    """Tenant ``tenant``'s entries and records against the log (see the module docstring)."""
    try:
        return _verify_tenant(store, keys, tenant)
    except AlteredRowError as exc:  # text in a number column (SQLite), a BLOB for text
        return TenantVerification(
            False,
            0,
            0,
            "none",
            problem=f"{exc} (an admin token's full verification shows where)",
            code="value-altered",
        )


def _verify_tenant(store: Store, keys: Keys, tenant: str) -> TenantVerification:
    quick = integrity.verify_heads(store, keys, [])
    if not quick.ok and quick.code == "value-altered":  # named as the full check names it
        raise AlteredRowError(quick.problem or "a stored value is not of its type")
    if not quick.ok:  # the quick check's code; its text names global numbers: not shown
        code = quick.code or "history-rewritten"
        return TenantVerification(
            False,
            0,
            0,
            quick.signatures,
            problem=f"{_QUICK_PROBLEMS.get(code, _REWRITTEN)} (an admin token's full "
            "verification shows where)",
            code=code,
        )
    checked, after, last_seq = 0, 0, 0
    try:
        while True:
            with store.session() as s:
                rows = list(
                    s.scalars(
                        select(LedgerRow)
                        .where(LedgerRow.tenant == tenant, LedgerRow.tenant_seq > after)
                        .order_by(LedgerRow.tenant_seq)
                        .limit(PAGE)
                    )
                )
                if not rows:
                    break
                page = [Entry.from_row(r) for r in rows]
                for e in page:
                    if e.tenant_seq != checked + 1:
                        raise _Bad(
                            checked + 1,
                            f"your ledger entry {checked + 1} is missing (the next one found "
                            f"is {e.tenant_seq}): it was removed or moved to another tenant",
                            "entry-missing",
                        )
                    checked += 1
                rows_bad = _records_bad(s, page)
            try:
                _prove(store, keys, page)
            except _Bad as bad:  # an entry altered is named before its rows, which differ too
                if rows_bad is None or bad.tenant_seq <= rows_bad.tenant_seq:
                    raise
            if rows_bad is not None:
                raise rows_bad
            after, last_seq = page[-1].tenant_seq, page[-1].seq
    except _Bad as bad:
        return TenantVerification(
            False,
            _count(store, tenant),
            bad.tenant_seq - 1,
            quick.signatures,
            first_bad=bad.tenant_seq,
            problem=bad.problem,
            code=bad.code,
        )
    if _numbered_below_1(store, tenant):
        return TenantVerification(
            False,
            _count(store, tenant),
            checked,
            quick.signatures,
            first_bad=checked + 1,
            problem=f"your ledger entry {checked + 1} was altered: an entry of yours holds a "
            "number Straits never gives (0 or below), which hid it from this check",
            code="entry-altered",
        )
    if _detached(store, tenant):
        return TenantVerification(
            False,
            checked,
            checked,
            quick.signatures,
            problem="a plan of yours is finished and marked for recording but points to no "
            "ledger entry: it was detached from its entry or made up (the database was altered)",
            code="plan-row",
        )
    stray = _stray_row(store, tenant)
    if stray is not None:
        return TenantVerification(
            False, checked, checked, quick.signatures, problem=stray[0], code=stray[1]
        )
    if _missing_after(store, last_seq, quick.head_seq):
        return TenantVerification(
            False,
            checked,
            checked,
            quick.signatures,
            problem="the log is missing entries recorded after your last one: they were "
            "deleted, and whose cannot be told from here, so they may be yours (an admin "
            "token's full verification shows where)",
            code="tail-removed",
        )
    return TenantVerification(True, checked, checked, quick.signatures)


def _numbered_below_1(store: Store, tenant: str) -> bool:
    """Whether an entry of ``tenant`` holds a number below 1, which the pages (numbers above
    the last read) never read: the tenant's last entry renumbered 0 was hidden, and the check
    passed without it. Entries appended meanwhile are numbered above, so this never fails a
    verification that runs while the tenant records."""
    with store.session() as s:
        q = select(LedgerRow.seq).where(LedgerRow.tenant == tenant, LedgerRow.tenant_seq < 1)
        return s.execute(q.limit(1)).first() is not None


def _detached(store: Store, tenant: str) -> bool:
    """Whether a plan row of ``tenant`` is finished and marked for recording with no entry
    (every read of it refuses it; one detached from an entry of the tenant's is named at that
    entry first)."""
    with store.session() as s:
        return (
            s.execute(
                select(PlanRow.id)
                .where(
                    PlanRow.tenant == tenant,
                    PlanRow.status == "done",
                    PlanRow.record.is_(True),
                    PlanRow.ledger_seq.is_(None),
                )
                .limit(1)
            ).first()
            is not None
        )


def _stray_row(store: Store, tenant: str) -> tuple[str, str] | None:
    """A plan or decision row of ``tenant`` that points to no entry of the tenant's of its
    kind: to a number with no entry (past the head), to another tenant's entry, or to an entry
    of another kind. The pages compare the rows pointing to the tenant's entries only, so such
    a row (a copy made under another id, a ``ledger_seq`` moved) passed the tenant's check that
    the full verification fails (atk69). Two indexed reads over the tenant's rows."""
    for table, kind, code, what in (
        (PlanRow, "plan", "plan-row", "plan"),
        (DecisionRow, "check", "decision-row", "decision"),
    ):
        q = (
            select(table.id)
            .outerjoin(LedgerRow, LedgerRow.seq == table.ledger_seq)
            .where(table.tenant == tenant, table.ledger_seq.is_not(None))
            .where(or_(LedgerRow.seq.is_(None), LedgerRow.tenant != tenant, LedgerRow.kind != kind))
            .limit(1)
        )
        with store.session() as s:
            if s.execute(q).first() is not None:
                return (
                    f"a {what} of yours points to a ledger entry that does not record it (none, "
                    f"or one that is not a {kind} of yours): its row was copied or its entry "
                    "number altered (the database was altered)",
                    code,
                )
    return None


def _missing_after(store: Store, last: int, n: int) -> bool:
    """Whether an entry after ``last`` (the tenant's last entry's number in the log) up to
    ``n`` (the head's, whose leaves the tree holds) is gone. An entry deleted before ``last``
    cannot have been the tenant's (its numbering would show a gap); one after it may have been
    its last, which no gap shows. One count over the primary key; entries appended meanwhile
    are past ``n`` and not counted."""
    if last >= n:
        return False
    with store.session() as s:
        have = s.scalar(
            select(func.count())
            .select_from(LedgerRow)
            .where(LedgerRow.seq > last, LedgerRow.seq <= n)
        )
    return int(have or 0) != n - last


def _count(store: Store, tenant: str) -> int:
    from straits.store.ledger import count

    return count(store, tenant)


def _prove(store: Store, keys: Keys, page: list[Entry]) -> None:
    try:
        prove_entries(store, page, keys)
    except LedgerError as exc:
        bad = next((e for e in page if e.seq == exc.seq), page[0])
        raise _Bad(
            bad.tenant_seq,
            f"your ledger entry {bad.tenant_seq} is not the entry the log holds: it was "
            "altered, or the log was rewritten",
            "entry-altered",
        ) from None


def _records_bad(s: Any, page: list[Entry]) -> _Bad | None:
    try:
        _check_records(s, page)
    except _Bad as bad:
        return bad
    except LedgerError as exc:  # an entry's body is not a JSON object: the entry was altered
        e = next((e for e in page if e.seq == exc.seq), page[0])
        return _Bad(
            e.tenant_seq,
            f"your ledger entry {e.tenant_seq} is not the entry the log holds: it was altered",
            "entry-altered",
        )
    return None


def _check_records(s: Any, page: list[Entry]) -> None:
    """The plan and decision rows pointing to the page's entries, against them; the first
    problem in the tenant's order."""
    by_seq = {e.seq: e for e in page}
    problems: list[tuple[int, str, str]] = []
    plans: dict[int, list[PlanRow]] = {}
    for p in s.scalars(select(PlanRow).where(PlanRow.ledger_seq.in_(list(by_seq)))):
        plans.setdefault(p.ledger_seq, []).append(p)
    for seq, e in by_seq.items():
        rows = plans.get(seq, [])
        if e.kind == "plan" and not rows:
            problems.append(
                (e.tenant_seq, "it records a plan whose row was deleted or detached", "plan-row")
            )
        elif len(rows) > 1:  # one was compared, the other passed (atk69)
            problems.append(
                (e.tenant_seq, f"{len(rows)} plan rows point to it: rows were copied", "plan-row")
            )
        elif rows and plan_row_problem(rows[0], e):
            problems.append((e.tenant_seq, "the stored plan differs from the entry", "plan-row"))
    decisions: dict[int, int] = {}
    for d in s.scalars(select(DecisionRow).where(DecisionRow.ledger_seq.in_(list(by_seq)))):
        e = by_seq[d.ledger_seq]
        decisions[e.seq] = decisions.get(e.seq, 0) + 1
        if decision_row_problem(d, e):
            problems.append(
                (e.tenant_seq, "the stored decision differs from the entry", "decision-row")
            )
    for seq, e in by_seq.items():
        if missing_decision(e, decisions.get(seq, 0)):
            problems.append(
                (e.tenant_seq, "its decision row was deleted, detached or copied", "decision-row")
            )
    if problems:
        n, text, code = min(problems)
        raise _Bad(n, f"your ledger entry {n}: {text} (the database was altered)", code)
