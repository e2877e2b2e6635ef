"""Putting plan jobs in the queue (``store/queue.py`` takes them out): a new job, or, with an
idempotency key, the job an earlier submission of the same request queued."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from straits.errors import KeyReusedError
from straits.model.scenario import Scenario
from straits.store.db import Store
from straits.store.ledger import canonical
from straits.store.records import new_plan_id, save_scenario
from straits.store.tables import PlanRow


def enqueue(
    store: Store,
    sc: Scenario,
    options: dict[str, Any],
    *,
    tenant: str,
    actor: str,
    record: bool,
    rules_digest: str | None,
) -> str:
    """A queued job for ``sc``; returns its id."""
    return enqueue_once(
        store, sc, options, tenant=tenant, actor=actor, record=record, rules_digest=rules_digest
    )[0]


def enqueue_once(
    store: Store,
    sc: Scenario,
    options: dict[str, Any],
    *,
    tenant: str,
    actor: str,
    record: bool,
    rules_digest: str | None,
    key: str | None = None,
) -> tuple[str, bool]:
    """A queued job for ``sc`` and whether it was queued before: with ``key`` (a client's
    ``Idempotency-Key``), the tenant's job of that key when it asked the same (scenario,
    options, recording), a :class:`KeyReusedError` when it asked something else, else a new
    job. Two submissions of one key at once queue one job (the unique index decides)."""
    plan_id = new_plan_id()
    wanted = canonical(options)

    def earlier(s: Session, ref: str) -> str | None:
        if key is None:
            return None
        row = s.scalars(
            select(PlanRow).where(PlanRow.tenant == tenant, PlanRow.idempotency_key == key)
        ).first()
        if row is None:
            return None
        if (row.scenario_digest, row.options, bool(row.record)) != (ref, wanted, record):
            raise KeyReusedError(key, row.id)
        return row.id

    def work(s: Session) -> tuple[str, bool]:
        ref = save_scenario(s, sc)
        found = earlier(s, ref)
        if found is not None:
            return found, True
        row = PlanRow(
            id=plan_id,
            tenant=tenant,
            actor=actor,
            scenario_digest=ref,
            options=wanted,
            status="queued",
            record=record,
            rules_digest=rules_digest,
            attempts=0,
            cancel_requested=False,
            idempotency_key=key,
        )
        if key is None:
            s.add(row)
            return plan_id, False
        try:  # PostgreSQL: a concurrent submission of the key fails here, on the unique index
            with s.begin_nested():
                s.add(row)
        except IntegrityError:
            found = earlier(s, ref)  # the other committed first: its job is the answer
            if found is None:
                raise
            return found, True
        return plan_id, False

    return store.transaction(work)
