"""End to end with real processes (slow): plans submitted while clients record checks, a worker
killed mid-plan, the server killed and restarted; every plan ends done or failed with a reason,
the ledger verifies and nothing a client was told was recorded is lost. Also the slow-client
guards of `straits serve` over real sockets."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import soak

pytestmark = pytest.mark.slow


def busy_doc() -> dict[str, Any]:
    """40 workloads: CP-SAT searches to its time limit, so a plan is still running when its
    worker is killed."""
    from straits.simulate.generate import generate_dict

    return dict(json.loads(json.dumps(generate_dict(40, 10, 1), default=str)))


def running_on(db: str) -> dict[str, str]:
    """plan id -> worker id of the running plans."""
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, worker FROM plans WHERE status = 'running'"))
        out = {r[0]: r[1] for r in rows}
    engine.dispose()
    return out


def wait_until(predicate: Any, limit: float = 240) -> Any:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("condition not reached")


def test_plans_survive_a_killed_worker_and_a_restarted_server(db_url: str, tmp_path: Path) -> None:
    env = {"STRAITS_PLAN_LEASE_S": "6"}
    svc = soak.Service(db_url, tmp_path, env=env)
    admin = svc.token("ops", "admin")
    svc.start_server(plan_workers=1)
    doomed = svc.start_worker()
    svc.start_worker()
    stats = soak.Stats()
    load = soak.Load(svc.url, admin, stats, recorders=3, readers=2, submit_every=0, seed=7)
    load.start()
    h = {"Authorization": f"Bearer {admin}"}
    ids: list[str] = []
    try:
        with httpx.Client(base_url=svc.url, timeout=60, headers=h) as client:
            busy, quick = busy_doc(), soak.scenario_doc()
            for i in range(8):
                params: dict[str, Any] = (
                    {"solver": "cpsat", "time_limit": 15} if i % 2 else {"solver": "greedy"}
                )
                r = client.post("/v1/plans", params=params, json=busy if i % 2 else quick)
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
        stats.plans.extend(ids)
        # kill -9 the first worker while it plans
        victim = f":{doomed.pid}:"
        wait_until(lambda: any(victim in (w or "") for w in running_on(db_url).values()))
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(30)
        # then kill -9 the server (it has a plan slot of its own) and start it again
        time.sleep(2)
        assert svc.server is not None
        svc.stop_server(signal.SIGKILL)
        time.sleep(1)
        svc.start_server(plan_workers=1)
        final = soak.wait_plans(svc.url, admin, ids, limit=600)
    finally:
        load.finish()
        svc.stop()
    for job in final.values():
        assert job["status"] in ("done", "failed"), job
        if job["status"] == "failed":
            assert job["error"], job
    assert sum(j["status"] == "done" for j in final.values()) >= len(ids) // 2
    assert any(j["attempts"] >= 2 for j in final.values())  # the killed ones were resumed
    assert stats.server_errors() == 0, dict(stats.status)
    assert stats.recorded, "the recorders recorded nothing"
    assert soak.lost_records(db_url, stats.recorded) == []
    assert soak.ledger_ok(db_url)


# --- slow clients over real sockets ------------------------------------------------------------
@pytest.fixture
def server(tmp_path: Path) -> Any:
    svc = soak.Service(
        f"sqlite:///{tmp_path / 's.db'}", tmp_path, env={"STRAITS_BODY_TIMEOUT_S": "2"}
    )
    svc.start_server(plan_workers=0)
    yield svc
    svc.stop()


def _closed(sock: socket.socket, limit: float = 60) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(limit)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_a_silent_or_dribbling_client_is_disconnected(server: Any) -> None:
    silent = socket.create_connection(("127.0.0.1", server.port))
    dribbler = socket.create_connection(("127.0.0.1", server.port))
    dribbler.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    assert _closed(silent) == b""
    assert _closed(dribbler) == b""
    # the server still answers others
    assert httpx.get(server.url + "/healthz", timeout=10).status_code == 200


def test_a_body_that_never_arrives_is_answered_408(server: Any) -> None:
    token = server.token("a", "viewer").encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token + b"\r\nContent-Length: 1000\r\n\r\n"
        b'{"date":'
    )
    answer = _closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"urn:straits:problem:request-timeout" in answer
