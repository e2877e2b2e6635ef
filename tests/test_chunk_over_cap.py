"""A chunked body whose chunk size line declares more than the body cap (srv32): answered 413
at once, as a chunked body over the cap is, the chunk never read, and the connection closed
cleanly. Before, the server waited for the chunk's bytes and answered 408 at the body timeout.

Through the server's own protocol (``server/protocol.py``) and app, in-process uvicorn on a free
port over raw sockets (the end-to-end case against ``straits serve`` is in
``test_http_wire.py``, slow), and ``BodyLimit`` at the ASGI level."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import h11
import pytest
import uvicorn

from conftest import in_own_loop
from straits.server import create_app
from straits.server.app import BodyLimit
from straits.server.head import DECLARED
from straits.server.protocol import _chunk_pending, protocol
from straits.server.settings import Settings
from straits.store import Store
from straits.store.tokens import create_token
from test_api import ESTIMATE

CAP = 64 * 1024
PROBLEM = "application/problem+json"


class Local:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token

    def head(self) -> bytes:
        return (
            b"POST /v1/estimate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ) % self.token.encode()

    def send(self, *pieces: bytes, pause: float = 0.3) -> tuple[bytes, bool]:
        """Send ``pieces`` (pausing between them), then read until the server closes (a
        20 s socket timeout: a server that waits for the chunk fails the test): what it
        answered and whether it closed cleanly (no reset)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=20) as s:
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(pause)
                s.sendall(piece)
            out = b""
            try:
                while chunk := s.recv(65536):
                    out += chunk
            except ConnectionResetError:
                return out, False
            return out, True


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    """The app under the server's protocol in uvicorn, in a thread: a 64 KiB cap and a body
    timeout (600 s) no test waits for."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('chunk') / 'server.db'}")
    token = create_token(store, "t1", "planner")[0]
    app = create_app(store, settings=Settings(max_body_bytes=CAP, body_timeout_s=600.0))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=protocol(10.0), log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield Local(port, token)
    server.should_exit = True
    thread.join(30)
    store.close()


def _answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def _too_large(raw: bytes) -> None:
    status, headers, body = _answer(raw)
    assert (status, headers["content-type"], headers["connection"]) == (413, PROBLEM, "close")
    doc = json.loads(body)
    assert (doc["type"], doc["status"]) == ("urn:straits:problem:body-too-large", 413)


@pytest.mark.parametrize(
    "chunks",
    [
        [b"FFFFFFFFFFFFFFFFFFFF\r\n"],  # 20 hex digits, h11's most
        [b"%x\r\n" % (CAP + 1)],  # one byte over
        [b"%X\r\n" % (CAP + 1) + b"x" * 100],  # with the start of its data
        [b"5\r\nhello\r\n", b"%x\r\n" % CAP],  # the second chunk takes the body over
    ],
    ids=["20-digits", "cap+1", "cap+1-with-data", "second-chunk"],
)
def test_a_chunk_declared_over_the_cap_is_413_at_once(local: Local, chunks: list[bytes]) -> None:
    # before: no answer until the body timeout (here 600 s: the socket's 20 s ran out)
    raw, clean = local.send(local.head() + chunks[0], *chunks[1:])
    _too_large(raw)
    assert clean


def test_a_client_that_writes_the_chunk_before_it_reads_gets_the_answer(local: Local) -> None:
    # the 413 is answered on the size line; the client then writes 8 MB of the chunk before
    # it reads: the connection is closed after it stops, not reset under it
    size = 8 * 1024 * 1024
    raw, clean = local.send(local.head() + b"%x\r\n" % size + b"x" * size, b"\r\n0\r\n\r\n")
    _too_large(raw)
    assert clean


def test_chunks_under_the_cap_are_read_as_they_come(local: Local) -> None:
    # a size line under the cap, sent alone, then its data: served (the wake-up on the size
    # line is an empty message, not a refusal)
    body = json.dumps(ESTIMATE).encode()
    raw, _ = local.send(local.head() + b"%x\r\n" % len(body), body + b"\r\n", b"0\r\n\r\n")
    assert _answer(raw)[0] == 200


def _body_limit(db: Path, pending: int, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``BodyLimit`` (a 1,000-byte cap) answers when the protocol says the chunk being
    read still declares ``pending`` bytes and the client's messages are ``messages``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def run(db: Path) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        guard = BodyLimit(app, limit=1000, store=Store(f"sqlite:///{db}"), timeout=5.0)
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/check",
            "headers": [],
            "extensions": {DECLARED: {"pending": pending}},
        }
        await guard(scope, receive, send)
        return sent

    return in_own_loop(run(db))


def test_body_limit_refuses_a_declared_chunk_over_the_cap(tmp_path: Path) -> None:
    db = tmp_path / "limit.db"
    more = {"type": "http.request", "body": b"", "more_body": True}
    assert _body_limit(db, 10**24, [dict(more)])[0]["status"] == 413
    assert _body_limit(db, 1001, [dict(more)])[0]["status"] == 413
    partly = {"type": "http.request", "body": b"x" * 600, "more_body": True}
    assert _body_limit(db, 401, [dict(partly)])[0]["status"] == 413
    # to the cap, or a last message (no chunk pending any more): served
    rest = {"type": "http.request", "body": b"x" * 400, "more_body": False}
    assert _body_limit(db, 400, [dict(partly), rest])[0]["status"] == 200
    last = {"type": "http.request", "body": b"x", "more_body": False}
    assert _body_limit(db, 10**6, [last])[0]["status"] == 200


def test_h11_still_keeps_a_chunks_declared_size_where_the_protocol_reads_it() -> None:
    # the protocol reads h11's private ChunkedReader._bytes_in_chunk: a renamed attribute
    # would silently bring the 408 back, so it is pinned here
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert isinstance(conn.next_event(), h11.Request)
    assert _chunk_pending(conn) == 0
    conn.receive_data(b"FFFFFFFFFFFFFFFFFFFF\r\nabc")
    assert isinstance(conn.next_event(), h11.Data)
    assert _chunk_pending(conn) == 16**20 - 1 - 3
