"""The service as an operator runs it (hostile pass atk31): `straits serve` and `straits
worker` started, stopped, killed and misconfigured around running plan jobs. (The database and
the plan queue under them: test_hostile_service_store.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from served import hangup_by_default
from straits.loading import load_scenario
from straits.rules import ruleset
from straits.store import Store, queue
from straits.store.records import get_plan

GREEDY = {"solver": "greedy", "objective": None, "regime": None, "time_limit": 5.0, "seed": 0}
POLICY = queue.QueuePolicy(lease_s=30, max_attempts=3, queue_timeout_s=3600)


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
