"""The HTTP server's connections under a hostile client (hostile pass atk51): over
``--max-connections`` the answer is a problem with Retry-After and that many are served; a
client that never reads its answers, or reads below the rate floor, is dropped, and the
server goes on serving others. Raw bytes over sockets to a real `straits serve`; the wire
helpers are tests/test_http_wire.py's."""

from __future__ import annotations

import contextlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from served import served
from test_http_wire import _whole, answers, one_problem


@pytest.mark.slow
def test_over_max_connections_the_answer_is_a_problem_with_retry_after(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with served(db, log=tmp_path / "c.log", args=("--max-connections", "3")) as url:
        port = int(urlsplit(url).port or 0)
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                raw = b""
                while chunk := s.recv(65536):
                    raw += chunk
        finally:
            for c in held:
                c.close()
        # it was uvicorn's text/plain 'Service Unavailable', without Retry-After
        assert one_problem(raw, 503)["instance"] == "/healthz"
        assert answers(raw)[0][1]["retry-after"] == "2"
        time.sleep(0.3)
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200


def _get_healthz(port: int) -> tuple[socket.socket, bytes]:
    """A keep-alive ``GET /healthz`` on a connection of its own: the connection, still open
    unless the server closed it, and the answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    raw = b""
    while not _whole(raw) and (chunk := s.recv(65536)):
        raw += chunk
    return s, raw


@pytest.mark.slow
@pytest.mark.parametrize("limit", [1, 3])
def test_max_connections_serves_that_many(tmp_path: Path, limit: int) -> None:
    """N-1 connections held, the Nth is served and the (N+1)th refused: it served N-1, and
    `--max-connections 1` answered every request 503 (hostile pass atk79)."""
    db = f"sqlite:///{tmp_path / 'c.db'}"
    with served(db, log=tmp_path / "c.log", args=("--max-connections", str(limit))) as url:
        port = int(urlsplit(url).port or 0)
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(limit - 1)]
        try:
            time.sleep(0.3)  # the server has taken them
            nth, raw = _get_healthz(port)
            held.append(nth)
            assert [status for status, _, _ in answers(raw)] == [200]
            over, raw = _get_healthz(port)
            held.append(over)
            assert one_problem(raw, 503)["instance"] == "/healthz"
        finally:
            for c in held:
                c.close()


BUNDLE = b"GET /static/swagger-ui-bundle.js HTTP/1.1\r\nHost: x\r\n\r\n"
BUNDLE_BYTES = 1_400_000  # at least: the bundle is 1.5 MB


def _more_than_the_kernel_holds() -> bytes:
    """Pipelined requests for the 1.5 MB bundle whose answers the kernel's send buffer cannot
    all hold, so some wait in the server's transport: the write deadline's precondition. Three
    were enough under Linux's default send buffer (16 KiB, growing to 4 MiB), but a machine set
    to start sockets at 16 MiB (``net.ipv4.tcp_wmem``) took all 4.5 MB into the kernel, the
    server's connection ended as an idle keep-alive, and nothing was dropped (CI, stop 44)."""
    held = 4 << 20
    with contextlib.suppress(OSError, ValueError):
        held = max(int(v) for v in Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split())
    return BUNDLE * (held // BUNDLE_BYTES + 3)


DROPPED = "dropping a connection whose client took"


def _until_served_alone(url: str, log: Path) -> None:
    """Let the server see the end of ``served``'s /healthz polls before the test's clients
    connect. A poll's connection the server had not yet seen closed counted among
    ``--max-connections``, and when its end and both test clients' requests came in one turn
    of the event loop both clients got 503 and were closed: nothing dropped (CI, stop 53).
    One more /healthz, answered and closed by the server (``Connection: close``), takes
    several turns of its loop, and every earlier close is seen in them."""
    got = httpx.get(f"{url}/healthz", timeout=10, headers={"Connection": "close"})
    assert got.status_code == 200, log.read_text()
    time.sleep(0.2)


@pytest.mark.slow
def test_a_client_that_never_reads_its_answers_is_dropped(tmp_path: Path) -> None:
    """Clients that pipeline requests for a large file and never read the answers held their
    connections for ever (the header, body and keep-alive deadlines do not run while an answer
    is written): two kept `--max-connections 2` full. A client that takes none of the waiting
    bytes within STRAITS_WRITE_TIMEOUT_S is dropped (hostile pass atk79)."""
    db = f"sqlite:///{tmp_path / 'w.db'}"
    log = tmp_path / "w.log"
    with served(
        db,
        log=log,
        env={"STRAITS_WRITE_TIMEOUT_S": "1"},
        args=("--max-connections", "2", "--log-level", "info"),
    ) as url:
        port = int(urlsplit(url).port or 0)
        held = []
        _until_served_alone(url, log)
        try:
            for _ in range(2):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", port))
                s.sendall(_more_than_the_kernel_holds())
                held.append(s)
            # both dropped (generous: the timeout is 1 s), then the server is free again
            deadline = time.monotonic() + 60
            while log.read_text().count(DROPPED) < 2:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200, log.read_text()
            for s in held:  # what the server sent, then its reset: closed (else a timeout)
                s.settimeout(30)
                with contextlib.suppress(ConnectionResetError):
                    while s.recv(1 << 20):
                        pass
        finally:
            for s in held:
                s.close()
    # none taken, or the few bytes its socket still took in the first second: below the floor
    text = log.read_text()
    assert text.count(DROPPED) == 2, text
    assert "Traceback" not in text and "Exceeded concurrency limit" not in text, text


def _read_slowly(s: socket.socket, size: int, pause: float) -> tuple[int, bool]:
    """Read ``size`` bytes every ``pause`` seconds until the server closes (or 60 s pass): the
    bytes read, and whether the server closed."""
    got, deadline = 0, time.monotonic() + 60
    s.settimeout(30)
    try:
        while time.monotonic() < deadline:
            chunk = s.recv(size)
            if not chunk:
                return got, True
            got += len(chunk)
            time.sleep(pause)
    except ConnectionResetError:
        return got, True
    return got, False


@pytest.mark.slow
def test_a_client_that_reads_below_the_rate_floor_is_dropped(tmp_path: Path) -> None:
    """A client that took a few bytes of its answer within each write deadline was served for
    ever, and a handful of them held `--max-connections`. One that takes the answer below
    STRAITS_WRITE_MIN_RATE on average, over the time its bytes waited, is dropped; a client
    reading at full speed meanwhile gets the whole 1.5 MB answer (hostile pass svc29)."""
    db = f"sqlite:///{tmp_path / 'r.db'}"
    log = tmp_path / "r.log"
    env = {"STRAITS_WRITE_TIMEOUT_S": "2", "STRAITS_WRITE_MIN_RATE": "262144"}
    with served(
        db, log=log, env=env, args=("--max-connections", "2", "--log-level", "info")
    ) as url:
        port = int(urlsplit(url).port or 0)
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(_more_than_the_kernel_holds())
            with ThreadPoolExecutor(1) as pool:
                slow = pool.submit(_read_slowly, s, 2048, 0.05)  # some every second, ~40 KB/s
                full = httpx.get(f"{url}/static/swagger-ui-bundle.js", timeout=30)
                assert full.status_code == 200
                assert len(full.content) == int(full.headers["content-length"]) > 1_000_000
                assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
                got, closed = slow.result()
        finally:
            s.close()
        assert closed and got < len(full.content)
    text = log.read_text()
    assert text.count("under the floor of 262144 bytes/s") == 1
    assert "took none of its answer" not in text
    assert "Traceback" not in text
