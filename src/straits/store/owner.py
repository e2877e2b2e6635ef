"""Whose plan a plan id is, decided without reading anything that tampering can make unreadable.

A tenant asking for another tenant's plan gets the answer a missing id gets (404), whatever
was done to the database; only the plan's owner (and an admin) is told that its record was
altered (409). So ownership is decided first, from the raw stored values (no column types that
refuse an altered value with a ``LedgerError``), and only the owner's row is then read in full.

The owner of plan ``P``:

* its ledger entry's tenant when the entry it points to records ``P`` (a ``plan`` entry whose
  ``result.plan_id`` is ``P``) and agrees with the row's ``tenant``;
* when the two disagree (one of the two ``tenant`` columns was edited), the one the entry's
  chain hash proves (the entry's hash recomputed with that tenant matches the stored hash);
  neither proven: nobody (only an admin is answered);
* when the plan is not recorded, or the entry it points to is missing or records another plan
  (``plans.ledger_seq`` or the entry's payload was edited), the row's ``tenant``: nothing else
  names an owner.

A ``tenant`` column that is not text names nobody. What a consistent edit of both the row and
its entry (the entry re-hashed) says cannot be told from the truth here; ``ledger verify``
finds it.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

from sqlalchemy import ColumnElement, column, func, or_, select, table, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from straits.store.canonical import digest, loads_stored
from straits.store.db import Store
from straits.store.tables import LedgerRow, PlanRow

_plans = table("plans", column("id"), column("tenant"), column("ledger_seq"))
_ledger = table(
    "ledger",
    *(
        column(c)
        for c in ("seq", "recorded_at", "tenant", "actor", "kind", "body", "prev_hash", "hash")
    ),
)
"""Untyped: the driver's values as stored (``tables.Str`` would raise on a BLOB)."""


def id_prefix(col: Any, ref: str) -> ColumnElement[bool]:
    """``col`` starts with ``ref``: exactly, on both backends (SQLite's ``LIKE`` ignores ASCII
    case, PostgreSQL's does not; no character is a wildcard)."""
    return func.substr(col, 1, len(ref)) == ref


def _query() -> Any:
    e = _ledger.c
    return select(
        _plans.c.id,
        _plans.c.tenant,
        e.seq,
        e.recorded_at,
        e.tenant.label("entry_tenant"),
        e.actor,
        e.kind,
        e.body,
        e.prev_hash,
        e.hash,
    ).select_from(_plans.outerjoin(_ledger, e.seq == _plans.c.ledger_seq))


def _records(kind: Any, body: Any, plan_id: str) -> bool:
    if kind != "plan" or not isinstance(body, str):
        return False
    try:
        doc = loads_stored(body)
    except ValueError:
        return False
    result = doc.get("result") if isinstance(doc, dict) else None
    return isinstance(result, dict) and result.get("plan_id") == plan_id


def _hash_with(r: Any, tenant: str) -> str | None:
    try:
        return digest(
            {
                "seq": r.seq,
                "recorded_at": r.recorded_at,
                "tenant": tenant,
                "actor": r.actor,
                "kind": r.kind,
                "body": r.body,
                "prev_hash": r.prev_hash,
            }
        )
    except (TypeError, ValueError):  # a field that is not JSON (a BLOB)
        return None


def owner(r: Any) -> str | None:
    """The owner of the plan in a row of :func:`_query` (module docstring), or None."""
    claimed = r.tenant if isinstance(r.tenant, str) else None
    if r.seq is None:
        return claimed
    entry = r.entry_tenant if isinstance(r.entry_tenant, str) else None
    if entry == claimed or not _records(r.kind, r.body, r.id):
        return claimed
    for t in (entry, claimed):
        if t is not None and _hash_with(r, t) == r.hash:
            return t
    return None


def owned_plan_ids(store: Store, ref: str, tenant: str) -> list[str]:
    """The ids of ``tenant``'s plans that ``ref`` names: the plan whose id is ``ref`` when it
    is theirs, else those whose id starts with it (``ref`` of 4 characters or more), at most
    two (two: the prefix is ambiguous among their own plans). Other tenants' plans never change
    the answer, tampered or not."""
    with store.session() as s:
        exact = s.execute(_query().where(_plans.c.id == ref)).first()
        if exact is not None and owner(exact) == tenant:
            return [ref]
        if len(ref) < 4:
            return []
        q = _query().where(
            id_prefix(_plans.c.id, ref),
            or_(_plans.c.tenant == tenant, _ledger.c.tenant == tenant),
        )
        found: list[str] = []
        with closing(s.execute(q.order_by(_plans.c.id)).yield_per(100)) as rows:
            for r in rows:
                if owner(r) == tenant and isinstance(r.id, str):
                    found.append(r.id)
                    if len(found) == 2:
                        break
        return found


def owners(store: Store, plan_ids: list[str]) -> dict[str, str | None]:
    """The owner of each of ``plan_ids`` (module docstring); an id with no plan is left out."""
    if not plan_ids:
        return {}
    with store.session() as s:
        return _owners_in(s, plan_ids)


def _owners_in(s: Session, plan_ids: list[str]) -> dict[str, str | None]:
    rows = s.execute(_query().where(_plans.c.id.in_(set(plan_ids))))
    return {r.id: owner(r) for r in rows if isinstance(r.id, str)}


def _raw(col: Any, name: str) -> Any:
    """``col`` as the driver gives it (a ``Str`` column would raise on a BLOB)."""
    return type_coerce(col, NullType()).label(name)


def owned_ids(s: Session, q: Any, tenant: str, n: int) -> list[str]:
    """The ids of the first ``n`` plans of ``q`` (a query of ``PlanRow`` outer-joined to its
    ``LedgerRow``, filtered and ordered, no limit) that are ``tenant``'s
    (:func:`owner`): one whose ``tenant`` column or whose entry's was edited stays in its
    owner's list (where it is then refused or marked unproven, as reading the plan is) and never
    shows in the list of the tenant written in. Only rows whose two tenants disagree are
    looked up one by one. Read in the session ``s`` the page is then read in (one snapshot
    on SQLite)."""
    cols = q.with_only_columns(
        _raw(PlanRow.id, "id"),
        _raw(PlanRow.tenant, "tenant"),
        _raw(PlanRow.ledger_seq, "seq"),
        _raw(LedgerRow.tenant, "entry_tenant"),
    ).where(or_(PlanRow.tenant == tenant, LedgerRow.tenant == tenant))
    found: list[str] = []
    with closing(s.execute(cols).yield_per(200)) as rows:
        for r in rows:
            if not isinstance(r.id, str):
                continue
            agreed = r.seq is None or r.tenant == r.entry_tenant
            mine = r.tenant == tenant if agreed else _owners_in(s, [r.id]).get(r.id) == tenant
            if mine:
                found.append(r.id)
                if len(found) == n:
                    break
    return found


def any_plan(store: Store, ref: str) -> bool:
    """Whether any plan's id is ``ref`` or (4 characters or more) starts with it: for the
    audit log of a refusal only, never for an answer."""
    cond = _plans.c.id == ref
    if len(ref) >= 4:
        cond = or_(cond, id_prefix(_plans.c.id, ref))
    with store.session() as s:
        return s.execute(select(_plans.c.id).where(cond).limit(1)).first() is not None
