"""Tenants taking turns in the plan queue: the order in which a claim (``store.queue.claim``)
serves the tenants with a job waiting, and the query for a tenant's next job.

The order is computed by the database in one statement, over every waiting tenant: fewest jobs
running in this worker's rules pool first, then the one whose last job started longest ago
(never, first of all; a start in any rules pool: scoped to the pool, the lookup would walk a
tenant's history in other pools), then the one whose oldest job has waited longest. Only the
first :data:`FAIR_TENANTS` are read back. The values compared are never parsed here: a stored
time Straits never writes (``infinity``, text) places its tenant somewhere in the line, and the
claim that reaches its job fails it (``queue._fail_altered``); it no longer turned the turns
off for everyone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    LargeBinary,
    Select,
    and_,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session, aliased

from straits.store.tables import AlteredRowError, PlanRow, Time, utcnow

#: how many tenants, the first in turn, a claim reads back
FAIR_TENANTS = 64

#: a stored tenant as the database holds it: text; on SQLite, bytes where a row was altered
#: (a BLOB, text that is not UTF-8), None where the column's NOT NULL was dropped
Tenant = str | bytes | None


def runnable(rows: Any, rules_digest: str | None) -> ColumnElement[bool]:
    """Jobs a worker with ``rules_digest`` may run (None: any)."""
    if rules_digest is None:
        return true()
    return or_(rows.rules_digest == rules_digest, rows.rules_digest.is_(None))


def of_tenant(tenant: Tenant) -> ColumnElement[bool]:
    """The jobs of ``tenant`` as :func:`serving_order` gave it."""
    if tenant is None:
        return PlanRow.tenant.is_(None)
    if isinstance(tenant, str):
        return PlanRow.tenant == tenant
    return cast(PlanRow.tenant, LargeBinary) == tenant


def serving_order(s: Session, rules_digest: str | None) -> list[Tenant]:
    """The tenants with a job this worker may take, in the order they are served (see the
    module docs), the first :data:`FAIR_TENANTS`. Empty when fewer than two tenants wait: the
    oldest job is taken.

    Before, the 64 tenants whose oldest job had waited longest were weighed, so a 65th never
    served waited until one of them ran out of jobs; jobs running under other rules counted
    against a tenant here; and a stored time that could not be read in any waiting tenant's
    history (a finished job's ``started_at = 'infinity'``) turned the turns off for good."""
    sqlite = s.get_bind().dialect.name == "sqlite"
    waiting = (
        select(PlanRow.tenant.label("tenant"), func.min(PlanRow.created_at).label("oldest"))
        .where(PlanRow.status == "queued", runnable(PlanRow, rules_digest))
        .group_by(PlanRow.tenant)
        .subquery()
    )
    p = aliased(PlanRow)
    # running in this worker's rules pool (those running on workers of other rules took no
    # turn here): a few rows, grouped once and joined, not looked up tenant by tenant
    running = (
        select(p.tenant.label("tenant"), func.count().label("n"))
        .where(p.status == "running", runnable(p, rules_digest))
        .group_by(p.tenant)
        .subquery()
    )
    # a start later than now is one Straits never wrote ('infinity'; on SQLite text, which
    # sorts after every time): not the tenant's last. One index lookup (ix_plans_tenant_started)
    now: Any = literal(utcnow(), Time()) if sqlite else func.statement_timestamp()
    last = (
        select(p.started_at)
        .where(and_(p.tenant == waiting.c.tenant, p.started_at <= now))
        .order_by(p.started_at.desc())
        .limit(1)
    )
    never: Any = literal_column("''" if sqlite else "'-infinity'::timestamptz")
    weighed = (
        select(
            waiting.c.tenant,
            waiting.c.oldest,
            func.coalesce(running.c.n, 0).label("busy"),
            # never started: before every start (one evaluation of the lookup, not two)
            func.coalesce(last.scalar_subquery(), never).label("last"),
        )
        .select_from(waiting)
        .outerjoin(running, running.c.tenant == waiting.c.tenant)
        .subquery()
    )
    # the tenant as stored: on SQLite an altered one (a BLOB, text not UTF-8) is read as bytes,
    # never decoded (the driver's decoding failed the whole read)
    tenant: Any = cast(weighed.c.tenant, LargeBinary) if sqlite else weighed.c.tenant
    order: Select[Any] = (
        select(tenant, func.typeof(weighed.c.tenant) if sqlite else literal("text"))
        .order_by(
            weighed.c.busy,
            weighed.c.last,
            weighed.c.oldest,
        )
        .limit(FAIR_TENANTS)
    )
    try:
        rows = s.execute(order).all()
    except AlteredRowError:  # nothing read here is parsed; kept as a last resort
        return []
    if len(rows) < 2:
        return []
    return [_tenant(value, kind) for value, kind in rows]


def _tenant(value: object, kind: object) -> Tenant:
    if isinstance(value, bytes) and kind == "text":
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    if value is None or isinstance(value, str | bytes):
        return value
    return str(value)  # pragma: no cover - the drivers give text, bytes or None


def next_job(tenant: Tenant, rules_digest: str | None, *, postgresql: bool) -> Select[Any]:
    """The oldest queued job of ``tenant`` this worker may run, locked (PostgreSQL); none when
    another worker's claim holds it. It skipped a locked job and took the tenant's next one,
    so workers claiming at once all served the tenant first in turn."""
    head = (
        select(PlanRow.id)
        .where(PlanRow.status == "queued", runnable(PlanRow, rules_digest), of_tenant(tenant))
        .order_by(PlanRow.created_at, PlanRow.id)
        .limit(1)
        .scalar_subquery()
    )
    q = select(PlanRow).where(PlanRow.id == head, PlanRow.status == "queued")
    return q.with_for_update(skip_locked=True) if postgresql else q
