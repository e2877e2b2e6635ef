"""Plan jobs as a durable queue: claim, lease, heartbeat, fenced finish, reaping of dead
workers' jobs, attempt limits, cancel, retries on lock contention; the upgrade from a database
made before the queue existed. SQLite and PostgreSQL. (The worker runtime:
test_jobs_worker.py.)"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from queue_support import GREEDY, POLICY, digest
from straits.errors import StoreError
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.server import jobs
from straits.store import Store, ledger, queue
from straits.store.queue import QueuePolicy
from straits.store.records import get_plan


def submit(store: Store, sc: Scenario, record: bool = True, **options: Any) -> str:
    return queue.enqueue(
        store,
        sc,
        {**GREEDY, **options},
        tenant="hz-cloud",
        actor="test",
        record=record,
        rules_digest=digest(),
    )


def sql(store: Store, statement: str, **params: object) -> None:
    engine = create_engine(store.url)
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def expire(store: Store, plan_id: str) -> None:
    """What time does to a lease nobody renews."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    sql(store, "UPDATE plans SET lease_until = :t WHERE id = :i", t=past, i=plan_id)


def status(store: Store, plan_id: str) -> tuple[str, str | None, int]:
    row = get_plan(store, plan_id)
    assert row is not None
    return row.status, row.error, row.attempts


def wait_for(predicate: Any, limit: float = 180.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


# --- the queue -----------------------------------------------------------------------------------
def test_a_job_is_claimed_once_planned_and_recorded(store: Store, sc: Scenario, rules: Any) -> None:
    plan_id = submit(store, sc)
    c = queue.claim(store, "w1", digest(), POLICY)
    assert c is not None and c.plan_id == plan_id and c.attempt == 1
    assert queue.claim(store, "w2", digest(), POLICY) is None  # nobody else gets it
    assert status(store, plan_id)[0] == "running"
    assert queue.heartbeat(store, c, POLICY, {"elapsed_s": 1.0, "text": "x"}) == "ok"
    plan = make_plan(load_scenario_from(c), rules=rules, solver="greedy")
    written, entry = queue.finish(store, c, plan, rules)
    assert written and entry is not None
    row = get_plan(store, plan_id)
    assert row is not None and row.status == "done" and row.ledger_seq == entry.seq
    assert ledger.verify(store).ok


def load_scenario_from(c: queue.Claim) -> Scenario:
    from straits.loading import parse_scenario

    return parse_scenario(c.scenario)


def test_a_worker_that_lost_its_lease_writes_nothing(
    store: Store, sc: Scenario, rules: Any
) -> None:
    plan_id = submit(store, sc)
    a = queue.claim(store, "wa", digest(), POLICY)
    assert a is not None
    expire(store, plan_id)
    assert queue.reap(store, POLICY, me="wb").requeued == [plan_id]
    b = queue.claim(store, "wb", digest(), POLICY)
    assert b is not None and b.attempt == 2
    # worker a wakes up (a long GC pause, a partition) and tries to carry on
    assert queue.heartbeat(store, a, POLICY, None) == "lost"
    plan = make_plan(sc, rules=rules, solver="greedy")
    assert queue.finish(store, a, plan, rules) == (False, None)
    assert not queue.fail(store, a, "late")
    assert ledger.count(store) == 0 and status(store, plan_id)[0] == "running"
    assert queue.finish(store, b, plan, rules)[0]
    assert status(store, plan_id)[0] == "done" and ledger.count(store) == 1


def test_a_job_whose_worker_keeps_dying_fails_with_the_reason(store: Store, sc: Scenario) -> None:
    plan_id = submit(store, sc)
    for attempt in range(1, POLICY.max_attempts + 1):
        c = queue.claim(store, f"host:1:w{attempt}", digest(), POLICY)
        assert c is not None and c.attempt == attempt
        expire(store, plan_id)
        reaped = queue.reap(store, POLICY, me="reaper")
        row = get_plan(store, plan_id)
        assert row is not None
        if attempt < POLICY.max_attempts:
            assert reaped.requeued == [plan_id] and row.status == "queued"
            assert f"attempt {attempt} of {POLICY.max_attempts}" in (row.progress or "")
        else:
            assert reaped.failed == [plan_id] and row.status == "failed"
            assert f"stopped responding {attempt} times" in (row.error or "")
            assert f"host:1:w{attempt}" in (row.error or "")
    assert queue.claim(store, "w9", digest(), POLICY) is None


def test_a_dead_process_on_this_host_loses_its_lease_at_once(store: Store, sc: Scenario) -> None:
    plan_id = submit(store, sc)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    c = queue.claim(store, f"{socket.gethostname()}:{dead.pid}:abc", digest(), POLICY)
    assert c is not None
    # the lease has 30 s to run, but its process is gone: the job is resumed now
    assert queue.reap(store, POLICY, me="reaper").requeued == [plan_id]
    # a live process (pid 1 always exists) keeps its lease until it runs out
    alive = queue.claim(store, f"{socket.gethostname()}:1:init", digest(), POLICY)
    assert alive is not None and alive.attempt == 2
    assert not queue.reap(store, POLICY, me="reaper")
    assert status(store, plan_id)[0] == "running"


def test_cancel_queued_and_running_jobs(store: Store, sc: Scenario, rules: Any) -> None:
    queued = submit(store, sc)
    assert queue.cancel(store, queued) == "cancelled"
    assert status(store, queued)[:2] == ("cancelled", "cancelled")
    assert queue.claim(store, "w", digest(), POLICY) is None
    running = submit(store, sc)
    c = queue.claim(store, "w", digest(), POLICY)
    assert c is not None
    assert queue.cancel(store, running) == "running"
    assert queue.heartbeat(store, c, POLICY, None) == "cancel"
    plan = make_plan(sc, rules=rules, solver="greedy")
    assert queue.finish(store, c, plan, rules) == (True, None)  # ends cancelled, unrecorded
    assert status(store, running)[0] == "cancelled" and ledger.count(store) == 0
    assert queue.cancel(store, "nope") is None
    # a cancelled job whose worker died is finished by the reaper, not requeued
    third = submit(store, sc)
    c3 = queue.claim(store, "w3", digest(), POLICY)
    assert c3 is not None and queue.cancel(store, third) == "running"
    expire(store, third)
    assert queue.reap(store, POLICY, me="r").cancelled == [third]


def test_jobs_wait_for_workers_with_their_rules_then_time_out(store: Store, sc: Scenario) -> None:
    plan_id = submit(store, sc)
    assert queue.claim(store, "w", "another-rule-set", POLICY) is None
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    sql(store, "UPDATE plans SET created_at = :t WHERE id = :i", t=old, i=plan_id)
    short = QueuePolicy(queue_timeout_s=3600)
    assert queue.reap(store, short, me="r", rules_digest="another-rule-set").failed == [plan_id]
    _, error, _ = status(store, plan_id)
    assert error is not None and "no worker with the rules" in error and "1 h" in error


def test_a_tampered_job_is_failed_with_the_reason_not_retried(store: Store, sc: Scenario) -> None:
    broken_options = submit(store, sc)
    sql(store, "UPDATE plans SET options = 'not json' WHERE id = :i", i=broken_options)
    other = dict(GREEDY, seed=1)  # a second stored scenario, whose body is then damaged
    broken_scenario = queue.enqueue(
        store,
        sc.model_copy(update={"name": "other"}),
        other,
        tenant="t",
        actor="a",
        record=True,
        rules_digest=digest(),
    )
    row = get_plan(store, broken_scenario)
    assert row is not None
    sql(store, "UPDATE scenarios SET body = '[' WHERE digest = :d", d=row.scenario_digest)
    # valid JSON, but not the scenario submitted: its content no longer has its digest
    altered = queue.enqueue(
        store,
        sc.model_copy(update={"name": "third"}),
        dict(GREEDY, seed=2),
        tenant="t",
        actor="a",
        record=True,
        rules_digest=digest(),
    )
    row = get_plan(store, altered)
    assert row is not None
    sql(
        store,
        "UPDATE scenarios SET body = replace(body, '\"third\"', '\"forged\"') WHERE digest = :d",
        d=row.scenario_digest,
    )
    fine = submit(store, sc)
    c = queue.claim(store, "w", digest(), POLICY)
    assert c is not None and c.plan_id == fine  # the three before it failed, with the reason
    for bad in (broken_options, broken_scenario, altered):
        state, error, _ = status(store, bad)
        assert state == "failed" and error is not None and "altered" in error


def _by(store: Store, sc: Scenario, tenant: str) -> str:
    return queue.enqueue(
        store, sc, GREEDY, tenant=tenant, actor="test", record=False, rules_digest=digest()
    )


def test_tenants_take_turns_whatever_each_has_queued(store: Store, sc: Scenario) -> None:
    """Jobs were claimed oldest first across tenants: one tenant's 5 submissions held up
    another's one until all 5 had run. A claim now serves the tenant with the fewest jobs
    running, then the one served longest ago; each tenant's own jobs stay in order."""
    heavy = [_by(store, sc, "heavy") for _ in range(5)]
    light = [_by(store, sc, "light"), _by(store, sc, "light")]
    order: list[str] = []
    # one worker slot: each job ends before the next claim
    for _ in range(len(heavy) + len(light)):
        c = queue.claim(store, "w:1:x", digest(), POLICY)
        assert c is not None
        order.append(c.plan_id)
        assert queue.fail(store, c, "done with it")
    assert queue.claim(store, "w:1:x", digest(), POLICY) is None
    assert order[:4] == [heavy[0], light[0], heavy[1], light[1]]
    assert order[4:] == heavy[2:]
    # two slots: the tenant with a job running waits while another has one waiting
    first = [_by(store, sc, "heavy") for _ in range(3)]
    other = _by(store, sc, "light")
    a = queue.claim(store, "w:1:x", digest(), POLICY)
    b = queue.claim(store, "w:2:x", digest(), POLICY)
    assert a is not None and b is not None
    assert {a.plan_id, b.plan_id} == {first[0], other}


def test_release_gives_the_job_back_without_counting_the_attempt(
    store: Store, sc: Scenario
) -> None:
    plan_id = submit(store, sc)
    c = queue.claim(store, "w", digest(), POLICY)
    assert c is not None and queue.release(store, c, "shutting down")
    assert status(store, plan_id) == ("queued", None, 0)
    again = queue.claim(store, "w2", digest(), POLICY)
    assert again is not None and again.attempt == 1


def test_concurrent_claims_take_each_job_exactly_once(store: Store, sc: Scenario) -> None:
    ids = {submit(store, sc) for _ in range(12)}
    taken: list[str] = []
    lock = threading.Lock()

    def grab(n: int) -> None:
        while True:
            c = queue.claim(store, f"w{n}", digest(), POLICY)
            if c is None:
                return
            with lock:
                taken.append(c.plan_id)

    threads = [threading.Thread(target=grab, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(taken) == sorted(ids)


def test_transactions_retry_lock_contention_and_nothing_else(store: Store) -> None:
    calls = {"n": 0}

    def flaky(_s: Any) -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            if store.dialect == "sqlite":
                raise OperationalError("BEGIN", {}, Exception("database is locked"))
            err = Exception("could not serialize access")
            err.sqlstate = "40001"  # type: ignore[attr-defined]
            raise OperationalError("UPDATE", {}, err)
        return "ok"

    assert store.transaction(flaky) == "ok" and calls["n"] == 3

    def broken(_s: Any) -> None:
        calls["n"] += 1
        raise OperationalError("SELECT", {}, Exception("no such table: nope"))

    calls["n"] = 0
    with pytest.raises(StoreError, match="no such table"):
        store.transaction(broken)
    assert calls["n"] == 1

    def always_locked(_s: Any) -> None:
        raise OperationalError("BEGIN", {}, Exception("database is locked"))

    if store.dialect == "sqlite":
        with pytest.raises(StoreError, match="still contended") as caught:
            store.transaction(always_locked, attempts=2)
        # who may hold the lock is said: "database is locked" alone named nobody
        assert "straits worker" in str(caught.value)


def test_every_write_retries_contention_at_its_start(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Store.write() (the ledger's appends, tokens, audit rows) retries a lock or a dropped
    connection met while starting its transaction: nothing was done yet."""
    from sqlalchemy.orm import Session

    real = Session.connection
    calls = {"n": 0}

    def flaky(self: Session, *a: Any, **k: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            err = Exception("database is locked")
            err.sqlstate = "55P03"  # type: ignore[attr-defined]  # lock_not_available
            raise OperationalError("BEGIN IMMEDIATE", {}, err)
        return real(self, *a, **k)

    monkeypatch.setattr(Session, "connection", flaky)
    entry = ledger.record(store, tenant="t", actor="a", kind="check", body={"x": 1})
    assert entry.seq == 1 and calls["n"] >= 2


# --- upgrading a database made before the queue --------------------------------------------------
def test_a_database_from_before_the_queue_resumes_its_unfinished_plans(
    tmp_path: Path, sc: Scenario
) -> None:
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("straits.store").joinpath("migrations"))
    )
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        from straits.store.ledger import canonical
        from straits.store.ledger import digest as sha
        from straits.store.records import scenario_document

        doc = scenario_document(sc)
        conn.execute(
            text("INSERT INTO scenarios (digest, name, body, created_at) VALUES (:d, :n, :b, :t)"),
            {"d": sha(doc), "n": sc.name, "b": canonical(doc), "t": "2026-01-01"},
        )
        for pid, state in (("a" * 32, "queued"), ("b" * 32, "running")):
            conn.execute(
                text(
                    "INSERT INTO plans (id, tenant, actor, scenario_digest, options, "
                    "status, created_at) VALUES (:i, 't', 'old', :d, :o, :s, :t)"
                ),
                {
                    "i": pid,
                    "d": sha(doc),
                    "o": canonical(GREEDY),
                    "s": state,
                    "t": dt.datetime.now(dt.UTC),
                },
            )
    engine.dispose()
    store = Store(url)  # migrates to the queue's schema
    reaped = queue.reap(store, POLICY, me="new-server")
    assert reaped.requeued == ["b" * 32]  # running with no lease: its server is gone
    worker = jobs.Worker(store, slots=1, policy=POLICY, poll_s=0.1)
    worker.start()
    try:
        wait_for(lambda: all(status(store, p)[0] == "done" for p in ("a" * 32, "b" * 32)))
    finally:
        worker.stop()
    assert ledger.verify(store).ok and ledger.count(store) == 2
