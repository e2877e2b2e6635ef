"""The service's database and plan queue as operators meet them (hostile pass atk31): another
application's database refused untouched, servers migrating one new database at once, a worker
of another PID namespace keeping its lease, a cancel racing the finish, a revoked token's plans
cancelled, a plan the ledger refuses failed with its reason, a reap whose statements do not
grow with the queue. Split from test_hostile_service_ops.py, whose helpers it uses."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from straits.loading import load_scenario
from straits.rules import ruleset
from straits.store import Store, queue
from straits.store.records import get_plan
from test_hostile_service_ops import GREEDY, POLICY, submit


# --- a database that is not a Straits database ---------------------------------------------------
@pytest.mark.parametrize("table", ["users", "plans"])
def test_another_applications_database_is_refused_untouched(db_url: str, table: str) -> None:
    """A database with no schema revision that holds tables of another application (a mistyped
    --db, a shared PostgreSQL database) got Straits' nine tables created among its own, or,
    for a table name both use, failed half-way with `table plans already exists`."""
    from sqlalchemy import create_engine, inspect

    from straits.errors import StoreError

    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (id INTEGER, name TEXT)"))
    with pytest.raises(StoreError, match=rf"not a Straits database .*\b{table}\b"):
        Store(db_url)
    assert set(inspect(engine).get_table_names()) == {table}
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {table}"))
    engine.dispose()
    Store(db_url).close()  # once empty, it is migrated


def test_a_straits_database_opens_again(db_url: str) -> None:
    Store(db_url).close()
    store = Store(db_url)  # at the latest revision: its own tables are no foreign ones
    assert store.dialect in ("sqlite", "postgresql")
    store.close()


# --- containers sharing a hostname ---------------------------------------------------------------
def test_a_worker_in_another_pid_namespace_keeps_its_lease(
    tmp_path: Path, example_path: Path
) -> None:
    """Pods with `hostNetwork` (or Docker's `--network host`) share the host's name but
    number their processes apart. Compared by hostname and pid only, a server took a live
    worker of another container for a dead process of its own and requeued its running job
    at once, every reap, until the job failed after its attempt limit."""
    import socket

    store = Store(f"sqlite:///{tmp_path / 'q.db'}")
    plan_id = submit(store, example_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid is free here; in the other namespace it is a live worker
    elsewhere = f"{socket.gethostname()[:100]}~1:{dead.pid}:abc"  # namespace inode 1: not ours
    assert queue.here() != socket.gethostname()[:100]  # this Linux names its namespace
    assert queue.worker_id().rpartition(":")[0].rpartition(":")[0] == queue.here()
    assert queue.claim(store, elsewhere, ruleset().digest, POLICY) is not None
    assert not queue.reap(store, POLICY, me="reaper")  # its lease runs for 30 s more
    assert get_plan(store, plan_id).status == "running"  # type: ignore[union-attr]
    # a dead process of this namespace loses its lease at once, as before
    with store.session() as s:
        s.execute(
            text("UPDATE plans SET worker = :w WHERE id = :i"),
            {"w": f"{queue.here()}:{dead.pid}:abc", "i": plan_id},
        )
        s.commit()
    assert queue.reap(store, POLICY, me="reaper").requeued == [plan_id]
    store.close()


# --- cancelling a job as it ends -----------------------------------------------------------------
def test_cancelling_a_job_being_finished_sees_it_done(db_url: str, example_path: Path) -> None:
    """A cancel read the job while another transaction was storing its plan (on PostgreSQL a
    plain read sees the row as it was): it answered 202, "asked to stop", for a plan that
    ended done and recorded, and marked the done row as asked to stop. It reads the row under
    its lock now and sees `done` (the API's 409)."""
    import threading

    from sqlalchemy import create_engine

    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite's write lock already orders the two")
    store = Store(db_url)
    plan_id = submit(store, example_path)
    assert queue.claim(store, "w:1:x", ruleset().digest, POLICY) is not None
    engine = create_engine(db_url)
    finishing = engine.connect()
    tx = finishing.begin()
    finishing.execute(text("SELECT id FROM plans WHERE id = :i FOR UPDATE"), {"i": plan_id})
    finishing.execute(text("UPDATE plans SET status = 'done' WHERE id = :i"), {"i": plan_id})
    got: list[str | None] = []
    t = threading.Thread(target=lambda: got.append(queue.cancel(store, plan_id)))
    t.start()
    with engine.connect() as watch:  # until the cancel waits on the row
        for _ in range(600):
            waiting = watch.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            ).scalar_one()
            if waiting:
                break
            time.sleep(0.05)
    tx.commit()
    finishing.close()
    t.join(60)
    assert got == ["done"]
    with store.session() as s:
        flag = s.execute(
            text("SELECT cancel_requested FROM plans WHERE id = :i"), {"i": plan_id}
        ).scalar_one()
    assert flag is False
    engine.dispose()
    store.close()


def test_servers_starting_at_once_on_a_new_database_all_open_it(db_url: str) -> None:
    """Four processes (here threads, each with its own store) migrating one new database at
    once: one creates the schema, the others wait for it and find it made; none takes the
    other's new tables for another application's."""
    import threading

    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Store(db_url).close()
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []


# --- a token revoked while its plans run ---------------------------------------------------------
def test_revoking_a_token_cancels_the_plans_it_submitted(db_url: str, example_path: Path) -> None:
    """A revoked token's queued and running plans ran on and were recorded in its tenant's
    ledger as decisions of a token refused from then on (one revoked because it leaked). They
    are cancelled now: queued at once, running at the next heartbeat (and not recorded)."""
    from straits.store import ledger
    from straits.store.tokens import create_token, revoke

    store = Store(db_url)
    _secret, row = create_token(store, tenant="hz-cloud", role="planner")
    _, other = create_token(store, tenant="hz-cloud", role="planner")

    def by(token_id: str) -> str:
        return queue.enqueue(
            store,
            load_scenario(example_path),
            GREEDY,
            tenant="hz-cloud",
            actor=f"token:{token_id}",
            record=True,
            rules_digest=ruleset().digest,
        )

    running, queued, kept = by(row.id), by(row.id), by(other.id)
    claim = queue.claim(store, "w:1:x", ruleset().digest, POLICY)
    assert claim is not None and claim.plan_id == running
    assert revoke(store, row.id)[1] == 2
    assert get_plan(store, queued).status == "cancelled"  # type: ignore[union-attr]
    assert queue.heartbeat(store, claim, POLICY, None) == "cancel"
    assert queue.fail(store, claim, "stopped")
    assert get_plan(store, running).status == "cancelled"  # type: ignore[union-attr]
    assert get_plan(store, kept).status == "queued"  # type: ignore[union-attr]
    assert ledger.count(store) == 0
    assert revoke(store, row.id)[1] == 0  # revoking again ends nothing more
    store.close()


# --- a ledger that refuses the plan's entry ------------------------------------------------------
def test_a_plan_the_ledger_refuses_fails_with_the_ledgers_reason(
    db_url: str, example_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A recorded plan whose entry the ledger refused (its head rewound by hand) was failed as
    "internal error while planning (incident ...)" with a traceback in the worker's log, where
    the API answers 409 and the CLI exit 1 with the reason. The job now carries the reason."""
    from straits.server import jobs
    from straits.store import ledger

    store = Store(db_url)
    plan_id = submit(store, example_path)
    with store.write() as s:
        for n in (1, 2):
            ledger.append(s, tenant="hz-cloud", actor="test", kind="check", body={"n": n})
    with store.session() as s:
        s.execute(text("UPDATE ledger_head SET seq = 1"))
        s.commit()
    worker = jobs.Worker(store, slots=0, policy=POLICY)
    claim = queue.claim(store, worker.id, worker.rules_digest, POLICY)
    assert claim is not None
    worker._run(claim)
    row = get_plan(store, plan_id)
    assert row is not None and row.status == "failed"
    assert (row.error or "").startswith("refusing to append")
    # the job's error is its tenant's to read: nothing of the log's head, numbers or hashes
    # (it was the ledger's own words, 'the log has head 1:<hash> but its last is entry 2:...')
    # (atk39); the worker's log keeps them
    assert row.error == jobs.LEDGER_REFUSED
    assert any("head 1:" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]  # no traceback logged
    assert ledger.count(store) == 2
    store.close()


# --- a long queue --------------------------------------------------------------------------------
def test_a_reap_reads_no_queued_job_that_cannot_be_due(db_url: str, example_path: Path) -> None:
    """Every reap (each server and worker, every 5 s) read every queued job one query at a time:
    a tenant's 50,000 queued plans made each reap take 25 s, in the thread that also renews
    the running jobs' leases (30 s). It reads the running jobs and the queued ones old enough
    to time out only; the statements it sends do not grow with the queue."""
    from sqlalchemy import event

    store = Store(db_url)
    sc = load_scenario(example_path)
    for _ in range(40):
        queue.enqueue(
            store, sc, GREEDY, tenant="t", actor="a", record=False, rules_digest=ruleset().digest
        )
    running = queue.claim(store, "w:1:x", ruleset().digest, POLICY)
    assert running is not None
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        assert not queue.reap(store, POLICY, me="reaper")
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len(statements) < 10, statements
    store.close()
