"""The API under bad bodies, slow clients and plan jobs: RFC 9457 problems for every error with
the field path, 413 and 408, cancel, an OpenAPI spec that says what every route answers, and a
responsive event loop while the database is locked."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import in_own_loop
from straits.errors import StoreError
from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store
from test_api import ESTIMATE, Api, assert_problem, scenario_doc, wait_done
from test_rules_engine import DESIGN_REQUEST


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    store = Store(db_url)
    app = create_app(
        store, settings=Settings(max_body_bytes=64 * 1024, max_time_limit=600, body_timeout_s=2.0)
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store)
    store.close()


# --- problems ---------------------------------------------------------------------------------
BAD_BODIES: list[tuple[str, Any, int, str | None]] = [
    ("/v1/check", b"", 400, None),
    ("/v1/check", b"{not json", 400, None),
    ("/v1/check", b'{"date": NaN}', 400, None),
    ("/v1/check", b'{"a": 1, "a": 2}', 400, None),
    ("/v1/check", b"[" * 5000 + b"]" * 5000, 400, None),
    ("/v1/check", b"\xff\xfe\x00binary", 400, None),
    ("/v1/check", {**DESIGN_REQUEST, "date": "2025-06-31"}, 400, "date"),
    ("/v1/check", {**DESIGN_REQUEST, "date": "9999-12-31"}, 400, "date"),
    (
        "/v1/check",
        {**DESIGN_REQUEST, "weights": {"training_ops": 1e308, "from_country": "SG"}},
        400,
        "weights.training_ops",
    ),
    ("/v1/check", [DESIGN_REQUEST, {**DESIGN_REQUEST, "quantity": 10**30}], 400, "[1].quantity"),
    ("/v1/estimate", {**ESTIMATE, "tokens": 1e300}, 400, "tokens"),
    (
        "/v1/estimate",
        {**ESTIMATE, "model": {**ESTIMATE["model"], "params": 1e308}},
        400,
        "model.params",
    ),
    ("/v1/estimate", {**ESTIMATE, "usd_per_chip_hour": -1}, 400, "usd_per_chip_hour"),
    ("/v1/estimate", ["not", "an", "object"], 400, None),
    ("/v1/skypilot/policy", {"task": {"resources": "x" * 10}}, 400, None),
    ("/v1/skypilot/policy", {"task": [1, 2]}, 400, None),
]


@pytest.mark.parametrize(
    ("route", "body", "status", "path"),
    BAD_BODIES,
    ids=[f"{r}-{i}" for i, (r, *_) in enumerate(BAD_BODIES)],
)
def test_bad_bodies_are_problems_naming_the_field(
    api: Api, route: str, body: Any, status: int, path: str | None
) -> None:
    h = api.auth("a", "admin")
    if isinstance(body, bytes):
        r = api.client.post(route, content=body, headers=h)
    else:
        r = api.client.post(route, content=json.dumps(body), headers=h)
    problem = assert_problem(r, status)
    if path is not None:
        assert problem["path"] == path, problem
    assert "Traceback" not in r.text


def test_query_errors_and_unknown_routes_are_problems(api: Api) -> None:
    h = api.auth("a", "viewer")
    p = assert_problem(api.client.get("/v1/rules", params={"date": "yesterday"}, headers=h), 400)
    assert p["path"] == "date" and p["errors"][0]["path"] == "date"
    assert_problem(api.client.get("/v1/nowhere", headers=h), 404)
    assert_problem(api.client.put("/v1/chips", headers=h), 405)


def test_the_spec_documents_every_answer(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    assert "Problem" in spec["components"]["schemas"]
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    ids = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            ids.append(op["operationId"])
            responses = op["responses"]
            assert "422" not in responses, (method, path)
            ok = [s for s in responses if s.startswith("2")]
            assert ok, (method, path)
            for s in ok:
                content = responses[s]["content"]
                assert any(c.get("schema") for c in content.values()), (method, path, s)
            assert "500" in responses
            if path.startswith("/v1/"):
                assert {"401", "403"} <= set(responses)
                problem = responses["401"]["content"]["application/problem+json"]["schema"]
                assert problem == {"$ref": "#/components/schemas/Problem"}
    assert len(ids) == len(set(ids))
    assert all(i.isidentifier() and "_" not in i for i in ids), ids
    assert {"submitPlan", "getPlan", "cancelPlan", "check", "estimate"} <= set(ids)


def test_large_and_slow_bodies(api: Api) -> None:
    h = api.auth("a", "planner")
    r = api.client.post("/v1/check", content=b"x" * (64 * 1024 + 1), headers=h)
    assert assert_problem(r, 413)["expected"]
    r = api.client.post("/v1/check", content=b"1", headers={**h, "Content-Length": "abc"})
    assert r.status_code in (400, 413)


def _through_body_limit(
    tmp_path: Path, chunks: list[bytes], gaps: list[float], work: float = 0.0
) -> list[dict[str, Any]]:
    """What ``BodyLimit`` (a 0.5 s body deadline) sends back when the client sends ``chunks``,
    each after its gap, to an app that works ``work`` seconds and then reads the whole body."""
    import asyncio

    from straits.server.app import BodyLimit

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(work)  # the app's own work before it reads
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def run() -> list[dict[str, Any]]:
        pending = [
            ({"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}, g)
            for i, (c, g) in enumerate(zip(chunks, gaps, strict=True))
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            message, gap = pending.pop(0)
            await asyncio.sleep(gap)
            return message

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        guard = BodyLimit(
            app, limit=1000, store=Store(f"sqlite:///{tmp_path / 'x.db'}"), timeout=0.5
        )
        await guard(
            {"type": "http", "method": "POST", "path": "/v1/check", "headers": []}, receive, send
        )
        return sent

    return in_own_loop(run())


def test_a_body_that_stalls_is_cut_with_408(tmp_path: Path) -> None:
    """The body timeout, at the ASGI level (the test client sends whole bodies; the slow-marked
    end-to-end test does it over a socket)."""
    slow = _through_body_limit(tmp_path, [b'{"a":', b"1}"], [0.0, 5.0])
    assert slow[0]["status"] == 408
    assert json.loads(slow[1]["body"])["type"] == "urn:straits:problem:request-timeout"
    fast = _through_body_limit(tmp_path, [b'{"a":', b"1}"], [0.0, 0.0])
    assert fast[0]["status"] == 200


def test_the_servers_own_work_before_reading_is_not_the_clients_delay(tmp_path: Path) -> None:
    """Only the waits for the body count: a clock started at the request's arrival ran out while
    the app worked before reading (authentication on a loaded database, in CI) and a body that
    had arrived at once was refused as too slow (408). Waits still add up: a client that
    trickles its body in pieces, each under the limit, is cut once they sum past it."""
    assert _through_body_limit(tmp_path, [b"x"], [0.0], work=1.0)[0]["status"] == 200
    assert _through_body_limit(tmp_path, [b"x"] * 8, [0.1] * 8)[0]["status"] == 408


@pytest.mark.parametrize("path", ["/v1/check", "/v1/plans", "/v1/impact", "/v1/exports"])
def test_a_client_gone_before_its_body_is_no_incident(
    api: Api, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that closed the connection halfway through its body was an 'incident': a
    500 and two stack traces in the server's log for each such client (ClientDisconnect
    reached the catch-all handler), found against a real server with a chunked body cut
    short."""

    app = api.client.app
    token = api.token("a", "planner").encode()
    chunks: list[dict[str, Any]] = [
        {"type": "http.request", "body": b'{"requests": [', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", b"Bearer " + token),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    with caplog.at_level("ERROR"):
        in_own_loop(app(scope, receive, send))  # type: ignore[arg-type]
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert all(m["status"] < 500 for m in starts), starts
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


# --- plan jobs --------------------------------------------------------------------------------
def test_plan_jobs_can_be_cancelled(api: Api, example_path: Path) -> None:
    owner, viewer = api.auth("hz-cloud", "planner"), api.auth("hz-cloud", "viewer")
    doc = scenario_doc(example_path)
    first = api.client.post(
        "/v1/plans", params={"solver": "greedy"}, json=doc, headers=owner
    ).json()
    assert {"attempts", "cancel_requested", "started_at", "record"} <= set(first)
    done = wait_done(api, first["id"], owner)
    assert done["status"] == "done" and done["attempts"] == 1
    assert (
        assert_problem(api.client.delete(f"/v1/plans/{first['id']}", headers=owner), 409)[
            "plan_status"
        ]
        == "done"
    )
    assert_problem(api.client.delete(f"/v1/plans/{first['id']}", headers=viewer), 403)
    assert_problem(api.client.delete("/v1/plans/nope", headers=owner), 404)
    assert_problem(
        api.client.delete(f"/v1/plans/{first['id']}", headers=api.auth("rival", "planner")), 404
    )
    # a long search: cancelled while queued or running, it ends cancelled, unrecorded
    job = api.client.post("/v1/plans", params={"time_limit": 600}, json=doc, headers=owner).json()
    r = api.client.delete(f"/v1/plans/{job['id']}", headers=owner)
    assert r.status_code in (200, 202), r.text
    ended = wait_done(api, job["id"], owner)
    assert ended["status"] == "cancelled" and ended["ledger_seq"] is None
    p = assert_problem(api.client.get(f"/v1/plans/{job['id']}/plan", headers=owner), 409)
    assert p["plan_status"] == "cancelled"


def test_healthz_answers_while_the_database_is_locked(tmp_path: Path) -> None:
    """A request that waits for the database's write lock (a refused token's audit row) must
    not stall the event loop: /healthz answers meanwhile."""
    db = tmp_path / "locked.db"
    store = Store(f"sqlite:///{db}")
    app = create_app(store, settings=Settings())
    with TestClient(app, raise_server_exceptions=False) as client:
        holder = sqlite3.connect(db, timeout=1, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        results: dict[str, Any] = {}

        def refused() -> None:  # its audit row waits for the lock
            results["refused"] = client.get("/v1/chips", headers={"Authorization": "Bearer x"})

        t = threading.Thread(target=refused)
        t.start()
        time.sleep(0.5)
        results["health"] = client.get("/healthz")
        health_done_while_locked = t.is_alive()
        holder.execute("ROLLBACK")
        holder.close()
        t.join(60)
    assert results["health"].status_code == 200
    assert health_done_while_locked
    assert results["refused"].status_code == 401


SKYPILOT_TASKS: list[Any] = [
    {"resources": {"accelerators": {"H100": "x"}}},
    {"resources": {"accelerators": {"H100": 1e308}}},
    {"resources": {"accelerators": "H100:inf"}},
    {"resources": {"accelerators": "H100:-1"}},
    {"resources": {"accelerators": "H100:" + "9" * 30}},
    {"resources": {"accelerators": ["H100:8", 5, None]}},
    {"resources": {"any_of": "nope"}},
    {"resources": {"any_of": [1, 2]}},
    {"resources": [{"cloud": "aws"}, "gcp"]},
    {"resources": 5},
    {"envs": "STRAITS_PLAN_ID=x"},
    "a: &a [*a]",
    "[" * 5000 + "]" * 5000,
    "resources:\n  accelerators: H100:8\nresources: {}\n",
    "- just\n- a list\n",
]


@pytest.mark.parametrize("task", SKYPILOT_TASKS, ids=[str(i) for i in range(len(SKYPILOT_TASKS))])
def test_odd_skypilot_tasks_are_problems(api: Api, task: Any) -> None:
    import yaml

    text = task if isinstance(task, str) else yaml.safe_dump(task)
    r = api.client.post("/v1/skypilot/policy", json={"task": text}, headers=api.auth("a", "admin"))
    body = assert_problem(r, 400)
    assert body["path"] is not None and body["path"].startswith("task")


def test_readyz_answers_under_a_held_write_lock_and_to_head(tmp_path: Path) -> None:
    """Readiness with another process in a long write (BEGIN IMMEDIATE, rows written, not
    committed) and a request waiting behind it: 200 at once (WAL readers do not wait for the
    writer). HEAD on /readyz and /healthz answers as GET without a body (it was a 405, which a
    monitor that checks with HEAD takes for a server that is down); POST stays 405."""
    db = tmp_path / "locked.db"
    store = Store(f"sqlite:///{db}")
    app = create_app(store, settings=Settings())
    with TestClient(app, raise_server_exceptions=False) as client:
        holder = sqlite3.connect(db, timeout=1, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("CREATE TABLE held (x)")
        holder.execute("INSERT INTO held VALUES (1)")
        results: dict[str, Any] = {}

        def refused() -> None:  # its audit row waits for the lock
            results["refused"] = client.get("/v1/chips", headers={"Authorization": "Bearer x"})

        t = threading.Thread(target=refused)
        t.start()
        time.sleep(0.5)
        ready = client.get("/readyz")
        heads = [client.head(path) for path in ("/readyz", "/healthz")]
        answered_while_locked = t.is_alive()
        holder.execute("ROLLBACK")
        holder.close()
        t.join(60)
        posted = client.post("/readyz")
    assert answered_while_locked
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert [h.status_code for h in heads] == [200, 200]
    assert [h.content for h in heads] == [b"", b""]
    assert posted.status_code == 405
    assert posted.headers["content-type"].startswith("application/problem+json")
    assert results["refused"].status_code == 401


def test_head_answers_as_get_without_a_body_on_every_get_route(api: Api) -> None:
    """HEAD was a 405 everywhere but the probes (FastAPI registers the methods it is told):
    `curl -I` on the console or the API said "method not allowed" for pages that exist. Now
    every route that answers GET answers HEAD with GET's status and headers and no body; a
    path without GET stays 405."""
    h = api.auth("a", "viewer")
    for path, headers in (
        ("/ui/", {}),
        ("/docs", {}),
        ("/openapi.json", {}),
        ("/v1/chips", h),
        ("/v1/chips", {}),  # 401 as for GET
        ("/v1/plans", h),
        ("/v1/ledger/verify", h),
        ("/ui/no-such-page", {}),
        ("/v1/check", h),  # POST only: 405 as for GET
    ):
        got, head = api.client.get(path, headers=headers), api.client.head(path, headers=headers)
        assert head.status_code == got.status_code, (path, head.status_code, got.status_code)
        assert head.content == b""
        for name in ("content-type", "content-length"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)


def test_head_sends_no_part_of_a_streamed_body() -> None:
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    from straits.server.head import HeadAsGet

    app = FastAPI()

    @app.get("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a" * 1000, b"b" * 1000]), media_type="text/plain")

    app.add_middleware(HeadAsGet)
    with TestClient(app) as client:
        assert client.get("/stream").content == b"a" * 1000 + b"b" * 1000
        head = client.head("/stream")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"].startswith("text/plain")


def test_concurrent_readiness_probes_share_one_database_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probes that arrive while a readiness query is in flight wait for its answer instead of
    each asking the database: 40 probes against a frozen PostgreSQL held all 40 API threads
    and queued for pool connections for 42 s each. Each answer is still that query's (503
    here), and the next probe asks again."""
    store = Store(f"sqlite:///{tmp_path / 'ready.db'}")
    app = create_app(store, settings=Settings())
    calls: list[int] = []
    release = threading.Event()

    def stuck() -> None:
        calls.append(1)
        release.wait(30)
        raise StoreError("the database does not answer: frozen")

    monkeypatch.setattr(store, "ping", stuck)
    arrived: list[str] = []

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            arrived.append(scope["path"])  # the request is in the app, not queued in a thread
        await app(scope, receive, send)

    with TestClient(counted, raise_server_exceptions=False) as client:
        answers: list[int] = []
        probes = [
            threading.Thread(target=lambda: answers.append(client.get("/readyz").status_code))
            for _ in range(8)
        ]
        for t in probes:
            t.start()
        deadline = time.monotonic() + 30
        while (not calls or len(arrived) < 8) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the last arrivals reach their await on the event loop
        release.set()
        for t in probes:
            t.join(30)
        assert answers == [503] * 8 and len(calls) == 1
        monkeypatch.setattr(store, "ping", lambda: calls.append(2))
        again = client.get("/readyz")
    assert again.status_code == 200 and calls == [1, 2]
