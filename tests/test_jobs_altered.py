"""The worker against altered job rows: a job it cannot read is failed with the reason, and
the planner slot that met it goes on to the next job. SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, select, text

from queue_support import GREEDY, POLICY
from straits.model.scenario import Scenario
from straits.server import jobs
from straits.store import Store, queue
from straits.store.tables import PlanRow


def wait_for(predicate: Callable[[], bool], limit: float = 180.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


def row(store: Store, plan_id: str) -> tuple[str | None, str | None]:
    with store.session() as s:
        found = s.execute(select(PlanRow.status, PlanRow.error).where(PlanRow.id == plan_id))
        status, error = found.one()
        return status, error


@pytest.mark.parametrize("limit", ['"abc"', "[1]", "NaN"])
def test_a_time_limit_that_is_no_number_fails_its_job_not_the_slot(
    store: Store, sc: Scenario, limit: str
) -> None:
    """``float('abc')`` on the stored options raised out of the planner slot's loop: the
    thread ended (one slot fewer for good; a worker of one slot planned nothing more) and the
    job stayed running until its lease ran out, then went to the next slot to end it too."""
    w = jobs.Worker(store, slots=1, policy=POLICY, poll_s=0.1)

    def submit(name: str, tenant: str) -> str:
        return queue.enqueue(
            store,
            sc.model_copy(update={"name": name}),
            GREEDY,
            tenant=tenant,
            actor="t",
            record=False,
            rules_digest=w.rules_digest,
        )

    bad, fine = submit("bad", "a"), submit("fine", "b")
    options = '{"seed": 0, "solver": "greedy", "time_limit": ' + limit + "}"
    engine = create_engine(store.url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE plans SET options = :o WHERE id = :i"), {"o": options, "i": bad})
    engine.dispose()
    w.start()
    try:
        wait_for(lambda: row(store, fine)[0] == "done")
        assert row(store, bad) == ("failed", jobs.UNREADABLE)
        assert [t.name for t in w._threads if t.is_alive()] == ["straits-plan-0", "straits-keeper"]
    finally:
        w.stop()
