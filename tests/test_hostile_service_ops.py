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


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "straits", *args],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


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
