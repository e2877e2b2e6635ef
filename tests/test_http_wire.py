"""The HTTP server at the protocol level, as a hostile client speaks it (hostile pass atk51):
raw bytes over a socket to a real `straits serve` (uvicorn with `server.protocol`), and the
request-target middleware (`server.target`) at the ASGI level. Every answer is problem+json
or a clean close, never a reset before the answer, a second reading of one body, or a
traceback in the log."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from conftest import in_own_loop
from served import served
from straits.server import create_app
from straits.server.protocol import MAX_HEAD_BYTES
from straits.store.db import Store

PROBLEM = "application/problem+json"


class Wire:
    def __init__(self, url: str, token: str, log: Path) -> None:
        self.url, self.token, self.log = url, token, log
        self.port = int(urlsplit(url).port or 0)

    def send(self, *pieces: bytes, pause: float = 0.2) -> tuple[bytes, bool]:
        """Send ``pieces`` (pausing between them), then read until the server closes (the
        client stops sending once it has read a whole answer, as a client does): all it
        answered, and whether it closed cleanly (no reset)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(pause)
                s.sendall(piece)
            out, done = b"", False
            try:
                while chunk := s.recv(65536):
                    out += chunk
                    if not done and _whole(out):
                        s.shutdown(socket.SHUT_WR)
                        done = True
            except ConnectionResetError:
                return out, False
            return out, True

    def healthy(self) -> None:
        assert httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200


def _whole(raw: bytes) -> bool:
    head, sep, rest = raw.partition(b"\r\n\r\n")
    sizes = [h for h in head.lower().split(b"\r\n") if h.startswith(b"content-length:")]
    return bool(sep) and len(rest) >= (int(sizes[0].split(b":")[1]) if sizes else 0)


def answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Each answer in ``raw``: status, headers (lower-case names), body (by Content-Length)."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])
        }
        size = int(headers.get("content-length", "0"))
        found.append((int(lines[0].split()[1]), headers, rest[:size]))
        raw = rest[size:]
    return found


def one_problem(raw: bytes, status: int) -> dict[str, Any]:
    [(got, headers, body)] = answers(raw)
    assert got == status, raw[:300]
    assert headers["content-type"] == PROBLEM
    doc = json.loads(body)
    assert doc["status"] == status and doc["type"].startswith("urn:straits:problem:")
    assert {"title", "detail", "errors", "error"} <= set(doc)
    return dict(doc)


def request(target: bytes, *headers: bytes, method: bytes = b"GET") -> bytes:
    return b"%s %s HTTP/1.1\r\n%s\r\n" % (method, target, b"".join(h + b"\r\n" for h in headers))


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wire]:
    tmp = tmp_path_factory.mktemp("wire")
    db = f"sqlite:///{tmp / 'server.db'}"
    token = subprocess.run(
        [
            sys.executable,
            "-m",
            "straits",
            "tokens",
            "create",
            "--tenant",
            "t1",
            "--role",
            "planner",
            "--db",
            db,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with served(db, log=tmp / "server.log") as url:
        w = Wire(url, token, tmp / "server.log")
        yield w
        w.healthy()
        assert "Traceback" not in w.log.read_text()


@pytest.mark.slow
def test_absolute_form_targets_are_served_as_their_path(wire: Wire) -> None:
    auth = b"Authorization: Bearer " + wire.token.encode()
    for target in (
        b"http://127.0.0.1:%d/healthz" % wire.port,
        b"HTTPS://127.0.0.1:%d/healthz" % wire.port,
        b"http://other.example/healthz",
    ):
        raw, _ = wire.send(request(target, b"Host: 127.0.0.1", b"Connection: close"))
        [(status, _, body)] = answers(raw)
        assert (status, json.loads(body)["status"]) == (200, "ok"), raw  # was 404
    raw, _ = wire.send(
        request(b"http://x/v1/plans?limit=1", auth, b"Host: x", b"Connection: close")
    )
    assert answers(raw)[0][0] == 200
    raw, _ = wire.send(request(b"*", b"Host: x", b"Connection: close", method=b"OPTIONS"))
    assert [(s, h["content-length"]) for s, h, _ in answers(raw)] == [(200, "0")]  # was 404
    for target, method in (
        (b"*", b"GET"),
        (b"127.0.0.1:%d" % wire.port, b"GET"),
        (b"127.0.0.1:443", b"CONNECT"),
        (b"ftp://x/healthz", b"GET"),
        (b"http://user@x/healthz", b"GET"),
        (b"http:///healthz", b"GET"),
    ):
        raw, _ = wire.send(request(target, b"Host: x", b"Connection: close", method=method))
        assert one_problem(raw, 400)["path"] == "request target"
    wire.healthy()


@pytest.mark.slow
def test_a_host_header_that_is_no_host_is_400(wire: Wire) -> None:
    for host in (b"a b", b"\xff\xfe", b"evil.example/../x?", b'evil"><script>', b"[zz]", b"[::1"):
        raw, _ = wire.send(request(b"/healthz", b"Host: " + host, b"Connection: close"))
        assert one_problem(raw, 400)["path"] == "Host"  # each was served
    for host in (
        b"[::1]:8000",
        b"[fe80::1%25eth0]",
        b"[v1.x]",
        b"my_service:8000",
        b"127.0.0.1",
        b"xn--bcher-kva.example",
        b"",
    ):
        raw, _ = wire.send(request(b"/healthz", b"Host: " + host, b"Connection: close"))
        assert answers(raw)[0][0] == 200
    raw, _ = wire.send(request(b"/healthz", b"Connection: close"))  # none at all (HTTP/1.1)
    one_problem(raw, 400)
    wire.healthy()


@pytest.mark.slow
def test_a_request_head_over_the_limit_is_431_however_it_arrives(wire: Wire) -> None:
    small = request(b"/healthz", b"Host: x", b"X-Pad: " + b"a" * 17_000, b"Connection: close")
    raw, _ = wire.send(small[:9_000], small[9_000:])  # in two packets: it was a 400
    assert answers(raw)[0][0] == 200
    big = request(b"/healthz", b"Host: x", b"X-Pad: " + b"a" * 100_000, b"Connection: close")
    raw, _ = wire.send(big)  # in one: it was served
    assert "65,536" in one_problem(raw, 431)["detail"]
    raw, _ = wire.send(big[:50_000], big[50_000:])
    one_problem(raw, 431)
    raw, _ = wire.send(request(b"/healthz?" + b"a" * MAX_HEAD_BYTES, b"Host: x"))
    one_problem(raw, 431)
    # over 256 KiB the connection was closed on unread bytes: a reset, and httpx saw no answer
    for name, value in (("Cookie", "s=" + "a" * 1_000_000), ("X-Pad", "a" * 300_000)):
        r = httpx.get(f"{wire.url}/ui/", headers={name: value}, timeout=10)
        assert (r.status_code, r.headers["content-type"]) == (431, PROBLEM)
    wire.healthy()


@pytest.mark.slow
def test_content_length_beside_transfer_encoding_is_refused_and_the_connection_closed(
    wire: Wire,
) -> None:
    auth = b"Authorization: Bearer " + wire.token.encode()
    smuggled = request(b"/healthz", b"Host: x", b"Connection: close")
    for framing in (
        (b"Content-Length: 4", b"Transfer-Encoding: chunked"),
        (b"Transfer-Encoding: chunked", b"Content-Length: 40"),
    ):
        head = request(b"/v1/estimate", b"Host: x", auth, *framing)
        raw, clean = wire.send(head + b"0\r\n\r\n" + smuggled)
        # h11 read the body as chunked, kept the connection and answered the smuggled GET
        assert one_problem(raw, 400)["instance"] is None and clean
    wire.healthy()


@pytest.mark.slow
def test_a_body_over_the_cap_is_answered_413_to_a_client_that_writes_it_all_first(
    wire: Wire,
) -> None:
    # the connection was closed on the unread body: urllib, which sends the whole body before
    # it reads, got 'Connection reset by peer' for 20 MB instead of the 413
    for size in (3_000_000, 20_000_000):
        req = urllib.request.Request(
            f"{wire.url}/v1/estimate",
            data=b"a" * size,
            headers={"Authorization": f"Bearer {wire.token}", "Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=30)
        assert (refused.value.code, refused.value.headers["Content-Type"]) == (413, PROBLEM)
    wire.healthy()


@pytest.mark.slow
def test_a_chunk_declared_over_the_cap_is_413_at_once(wire: Wire) -> None:
    # srv32: the size line of 20 hex digits was answered 408 at the body timeout (30 s); the
    # socket here gives up after 10 s
    head = (
        b"POST /v1/estimate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ) % wire.token.encode()
    for size_line in (b"FFFFFFFFFFFFFFFFFFFF\r\n", b"%x\r\n" % (2 * 1024 * 1024 + 1)):
        raw, clean = wire.send(head + size_line)
        assert one_problem(raw, 413)["type"] == "urn:straits:problem:body-too-large"
        assert clean
    wire.healthy()


@pytest.mark.slow
def test_malformed_framing_and_bytes_are_problems(wire: Wire) -> None:
    post = b"POST /v1/estimate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    for raw_request in (
        post + b"Content-Length: -1\r\n\r\n{}",
        post + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x",
        post + b"Content-Length: 99999999999999999999999999\r\n\r\n{}",
        post + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"GET /v1/plans/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        raw, _ = wire.send(raw_request)  # each was text/plain 'Invalid HTTP request received.'
        one_problem(raw, 400)
    for version in (b"2.0", b"3.0"):  # h11 took them and answered as HTTP/1.1
        raw, _ = wire.send(b"GET /healthz HTTP/%s\r\nHost: x\r\n\r\n" % version)
        one_problem(raw, 505)
    # a bad chunk size after the app's answer (a 401 before reading the body) was a
    # traceback in the log: uvicorn tried to send a second answer
    head = post.replace(b"Connection: close\r\n", b"") + b"Transfer-Encoding: chunked\r\n\r\n"
    raw, _ = wire.send(head, b"zz\r\n{}\r\n0\r\n\r\n", pause=0.5)
    assert [status for status, _, _ in answers(raw)] == [401]
    time.sleep(0.3)
    assert "Traceback" not in wire.log.read_text()
    wire.healthy()


@pytest.mark.slow
def test_upgrade_requests_are_served_as_plain_http(wire: Wire) -> None:
    """No route takes a WebSocket, yet a handshake was answered by the websockets library:
    `403` text/plain with no body, on every path, the token unread (svc30). Any other
    `Upgrade` (`h2c`) was served, but logged two warnings a request for anyone to send. An
    upgrade is ignored now (RFC 9110 7.8): the request is answered as HTTP/1.1, a problem
    where it is refused, quietly."""
    ws = (
        b"Connection: Upgrade",
        b"Upgrade: websocket",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version: 13",
    )
    before = wire.log.read_text().count("Unsupported upgrade")
    raw, _ = wire.send(request(b"/v1/plans", b"Host: x", *ws))
    assert one_problem(raw, 401)["type"] == "urn:straits:problem:unauthorized"
    raw, _ = wire.send(request(b"/no/such/path", b"Host: x", *ws))
    one_problem(raw, 404)
    auth = b"Authorization: Bearer " + wire.token.encode()
    for upgrade in (ws, (b"Connection: Upgrade", b"Upgrade: h2c")):
        raw, _ = wire.send(request(b"/v1/chips", b"Host: x", auth, *upgrade))
        [(status, headers, body)] = answers(raw)
        assert status == 200 and headers["content-type"] == "application/json"
        assert "upgrade" not in headers and isinstance(json.loads(body), list)
    time.sleep(0.3)
    assert wire.log.read_text().count("Unsupported upgrade") == before
    wire.healthy()


def _through(app: Any, target: bytes, method: str = "GET", host: bytes = b"x") -> list[Any]:
    """The messages ``app`` sends for one request whose raw target is ``target``."""
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    path, _, query = target.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path.decode("latin-1"),
        "raw_path": path,
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", host)],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    in_own_loop(app(scope, receive, send))
    return sent


def test_the_request_target_at_the_asgi_level(tmp_path: Path) -> None:
    app = create_app(Store(f"sqlite:///{tmp_path / 'a.db'}"))
    for target in (b"http://h:1/healthz", b"https://h/healthz", b"http://[::1]:8/healthz?x=1"):
        start, body = _through(app, target)
        assert start["status"] == 200 and json.loads(body["body"])["status"] == "ok"
    assert _through(app, b"*", method="OPTIONS")[0]["status"] == 200
    for target, host in ((b"*", b"x"), (b"h:80", b"x"), (b"/healthz", b"a b")):
        start, body = _through(app, target, host=host)
        assert start["status"] == 400
        assert dict(start["headers"])[b"content-type"] == PROBLEM.encode()
        assert json.loads(body["body"])["path"] in ("request target", "Host")
    # under /ui the refusal is the console's page, as the body guards' are
    start, _ = _through(app, b"/ui/", host=b"a b")
    assert start["status"] == 400 and dict(start["headers"])[b"content-type"].startswith(
        b"text/html"
    )
