"""The service as an operator runs it (hostile pass atk31): `straits serve` and `straits
worker` started, stopped, killed and misconfigured around running plan jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from served import hangup_by_default
from straits.loading import load_scenario
from straits.rules import ruleset
from straits.store import Store, queue
from straits.store.records import get_plan

GREEDY = {"solver": "greedy", "objective": None, "regime": None, "time_limit": 5.0, "seed": 0}


def submit(store: Store, example_path: Path, **options: Any) -> str:
    return queue.enqueue(
        store,
        load_scenario(example_path),
        {**GREEDY, **options},
        tenant="hz-cloud",
        actor="test",
        record=True,
        rules_digest=ruleset().digest,
    )


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "straits", *args],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=hangup_by_default,
    )


@pytest.mark.parametrize(("started", "stops"), [(signal.SIG_DFL, True), (signal.SIG_IGN, False)])
def test_a_process_started_under_nohup_stays_up_when_its_terminal_closes(
    started: Any, stops: bool
) -> None:
    from straits.server.jobs import stop_signals

    before = signal.signal(signal.SIGHUP, started)
    try:
        assert (signal.SIGHUP in stop_signals()) is stops
        assert {signal.SIGTERM, signal.SIGINT} <= set(stop_signals())  # always handled
    finally:
        signal.signal(signal.SIGHUP, before)


def wait_status(store: Store, plan_id: str, wanted: set[str], proc: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        row = get_plan(store, plan_id)
        if row is not None and row.status in wanted:
            return row.status
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        time.sleep(0.3)
    raise AssertionError(f"plan {plan_id} never reached {wanted}")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return out


# --- a worker's database and rules ---------------------------------------------------------------
@pytest.mark.slow
def test_a_worker_without_db_plans_from_the_configured_database(
    tmp_path: Path, example_path: Path
) -> None:
    """`straits worker` with no --db took ./straits.db (the store's own default), not the
    config's `database` nor the XDG default that `straits serve` and every other command use:
    a worker started beside a server with the same config watched another, empty database,
    and the server's jobs waited for the queue timeout (24 h)."""
    url = f"sqlite:///{tmp_path / 'configured.db'}"
    config = tmp_path / "straits.toml"
    config.write_text(f'database = "{url}"\n')
    store = Store(url)
    plan_id = submit(store, example_path)
    work = tmp_path / "cwd"
    work.mkdir()
    proc = cli("worker", "--log-level", "warning", env={"STRAITS_CONFIG": str(config)}, cwd=work)
    try:
        assert wait_status(store, plan_id, {"done", "failed"}, proc) == "done"
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out[-3000:]
    assert not (work / "straits.db").exists()
    store.close()


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
POLICY = queue.QueuePolicy(lease_s=30, max_attempts=3, queue_timeout_s=3600)


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


# --- the database file removed under a worker ----------------------------------------------------
@pytest.mark.slow
def test_a_worker_whose_database_file_is_removed_exits_1(tmp_path: Path) -> None:
    """`rm straits.db` under `straits worker`: every transaction is refused (the file is gone),
    and the worker logged two warnings every 5 s for ever, alive but unable to plan, so no
    supervisor restarted it. It exits 1 now with the reason, no traceback."""
    db = tmp_path / "w.db"
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "straits", "worker", "--db", f"sqlite:///{db}"],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while "Straits worker on" not in log.read_text():  # its store has opened the file
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            db.unlink()
            assert proc.wait(timeout=120) == 1, log.read_text()[-3000:]
        finally:
            proc.kill()
    text_out = log.read_text()
    assert "Traceback" not in text_out
    assert [line for line in text_out.splitlines() if line.startswith("error: ")]
    assert not db.exists()  # no empty database made at the path


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


# --- a server started with a bad option ----------------------------------------------------------
def test_serve_with_an_unknown_log_level_is_exit_2_before_the_database(tmp_path: Path) -> None:
    """`straits serve --log-level WARNING` (or any level uvicorn does not spell so) opened and
    migrated the database, then died of uvicorn's KeyError, a traceback, exit 1."""
    db = tmp_path / "s.db"
    proc = cli("serve", "--port", "9", "--db", f"sqlite:///{db}", "--log-level", "bogus")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert [line for line in out.splitlines() if line.startswith("error: --log-level")]
    assert not db.exists()


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


def test_a_bad_key_in_the_environment_is_named_as_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`STRAITS_LEDGER_KEY=DIR straits serve` said `--key: cannot read ...`: serve has no
    --key. The error names the variable the key came from; --key stays --key."""
    from straits.errors import InputError
    from straits.store import keys

    monkeypatch.setenv(keys.KEY_ENV, str(tmp_path))
    with pytest.raises(InputError) as env_error:
        keys.configured()
    assert env_error.value.path == keys.KEY_ENV
    with pytest.raises(InputError) as option_error:
        keys.configured(tmp_path)
    assert option_error.value.path == "--key"


@pytest.mark.parametrize(("value", "ok"), [("0.5", False), ("1.9", False), ("2", True)])
def test_a_plan_lease_is_no_shorter_than_the_workers_beat(
    value: str, ok: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STRAITS_PLAN_LEASE_S took 0.001 s (`worker --lease` takes 2 s at least): a lease that
    runs out between the keeper's beats (once a second) made a live worker reap its own
    running job, drop its search and plan it again (attempt 2)."""
    from straits.errors import InputError
    from straits.server.settings import Settings

    monkeypatch.setenv("STRAITS_PLAN_LEASE_S", value)
    if ok:
        assert Settings.from_env().queue_policy().lease_s == float(value)
        return
    with pytest.raises(InputError) as refused:
        Settings.from_env()
    assert refused.value.path == "STRAITS_PLAN_LEASE_S"


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


# --- rule packs edited under a running worker ----------------------------------------------------
def test_a_worker_plans_under_the_rules_it_claims_jobs_by(tmp_path: Path) -> None:
    """A worker claims jobs by the digest of the rules it read at start, but each planner slot
    read the pack files again at its first job: a pack edited (or Straits upgraded) on disk
    in between planned jobs promised the old rules under the new ones."""
    import shutil

    from straits.rules.pack_loader import builtin_packs_dir
    from straits.server import jobs

    shutil.copytree(builtin_packs_dir() / "sg-guidance", tmp_path / "sg-guidance")
    store = Store(f"sqlite:///{tmp_path / 'q.db'}")
    worker = jobs.Worker(store, slots=0, rule_dirs=(tmp_path,), policy=POLICY)
    policy_file = tmp_path / "sg-guidance" / "advisory.cedar"
    policy_file.write_text(policy_file.read_text() + "\n// edited after the worker started\n")
    assert ruleset((tmp_path,)).digest != worker.rules_digest  # the files now say otherwise
    assert worker._rules().digest == worker.rules_digest
    store.close()


def test_export_and_impact_decide_under_the_rules_the_server_read(tmp_path: Path) -> None:
    """The rule sets lent to export and impact requests were read from the pack files at first
    use: a pack edited on disk while the server ran made them decide under other rules than
    /v1/check, the console and the plans' workers (atk32)."""
    import shutil
    from types import SimpleNamespace

    from straits.rules.pack_loader import builtin_packs_dir
    from straits.server import create_app
    from straits.server.plan_routes import borrowed_rules

    shutil.copytree(builtin_packs_dir() / "sg-guidance", tmp_path / "sg-guidance")
    store = Store(f"sqlite:///{tmp_path / 'q.db'}")
    app = create_app(store, rule_dirs=(tmp_path,))
    policy_file = tmp_path / "sg-guidance" / "advisory.cedar"
    policy_file.write_text(policy_file.read_text() + "\n// edited after the server started\n")
    assert ruleset((tmp_path,)).digest != app.state.rules.digest  # the files now say otherwise
    request: Any = SimpleNamespace(app=app)
    with borrowed_rules(request) as first, borrowed_rules(request) as second:
        assert first is not second  # one per request's thread, as before
        assert first.digest == second.digest == app.state.rules.digest
    store.close()


def test_the_servers_plan_jobs_and_answers_come_from_one_reading_of_the_packs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's own worker read the pack files apart from the API's rule set: a pack
    edited between the two readings at start made plans and checks differ (atk32, left)."""
    import straits.server.app as app_module
    from straits.server import create_app

    reads: list[tuple[Path, ...]] = []
    real = getattr(app_module, "ruleset")  # noqa: B009 - the name the app module calls

    def counted(dirs: tuple[Path, ...] = ()) -> Any:
        reads.append(tuple(dirs))
        return real(dirs)

    monkeypatch.setattr(app_module, "ruleset", counted)
    store = Store(f"sqlite:///{tmp_path / 'q.db'}")
    app = create_app(store, rule_dirs=())
    worker = app.state.worker
    assert len(reads) == 1
    assert worker.rules_digest == app.state.rules.digest
    assert all(a is b for a, b in zip(worker._packs, app.state.rules.packs, strict=True))
    store.close()


# --- a server whose terminal closes --------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopped_server_gives_its_running_job_back(tmp_path: Path, signum: int) -> None:
    """SIGHUP (the terminal that started `straits serve` closed, an SSH session dropped)
    killed the server at once: uvicorn handles SIGTERM and SIGINT only. Its running job stayed
    `running` until its lease ran out and was then planned again, the attempt counted. It is
    given back unattempted, as on SIGTERM, and the server ends as the signal ends it (atk32)."""
    from served import free_port
    from straits.simulate.generate import generate

    url = f"sqlite:///{tmp_path / 'q.db'}"
    store = Store(url)
    # a search that runs to its time limit
    plan_id = queue.enqueue(
        store,
        generate(80, 12, seed=3),
        {**GREEDY, "solver": "cpsat", "time_limit": 60.0},
        tenant="hz-cloud",
        actor="test",
        record=True,
        rules_digest=ruleset().digest,
    )
    proc = cli("serve", "--port", str(free_port()), "--db", url, "--plan-workers", "1")
    try:
        wait_status(store, plan_id, {"running"}, proc)
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == -signum, out[-3000:]
    row = get_plan(store, plan_id)
    assert row is not None and (row.status, row.attempts) == ("queued", 0), out[-3000:]
    store.close()
