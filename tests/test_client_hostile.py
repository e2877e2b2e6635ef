"""`straits --server URL` against servers that are broken or hostile: a raw socket server in a
thread answers each request as its case says (a body dribbled for ever, an endless body,
garbage, odd problem+json, redirects, a connection cut mid-body, a wrong Content-Length, a
Link: rel="next" loop), and the real CLI runs against it in a process with a memory limit.
Each must end within seconds with one `error:` line on stderr naming the server, exit 1 (2 for
the user's own bad URL or setting), and no traceback. The client's deadline and byte cap are
made small here through their environment variables."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "examples" / "h20-2025.yaml"
DEADLINE_S = 2.0
MAX_BYTES = 1 << 20
#: what a case may take in all: the deadline, a CLI start on a loaded 2-core machine
CASE_S = 25

Handler = Callable[[socket.socket, str, str], None]


def _send(conn: socket.socket, status: str, body: bytes = b"", **headers: str) -> None:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)


class FakeServer:
    """Accepts connections on 127.0.0.1 and hands each request to ``handler(conn, method,
    path)``; records the requests it got. Handlers that stall check ``stop``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str, str]] = []  # (method, path, authorization)
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                fields = dict(ln.split(": ", 1) for ln in lines[1:] if ": " in ln)
                fields = {k.lower(): v for k, v in fields.items()}
                length = int(fields.get("content-length", "0"))
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                self.requests.append((method, target, fields.get("authorization", "")))
                self.handler(conn, method, target.split("?", 1)[0])
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], FakeServer]]:
    servers: list[FakeServer] = []

    def start(handler: Handler) -> FakeServer:
        servers.append(FakeServer(handler))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def straits(
    url: str, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "straits", "--server", url, *args],
        env={
            **os.environ,
            "STRAITS_TOKEN": "st_secret",
            "STRAITS_CLIENT_TIMEOUT_S": str(DEADLINE_S),
            "STRAITS_CLIENT_MAX_BYTES": str(MAX_BYTES),
            "STRAITS_CONFIG": "/nonexistent/straits.toml",
            **(env or {}),
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CASE_S,
        preexec_fn=_limit_memory,
    )
    return p, time.monotonic() - t0


def one_error(p: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """Exit ``code``, nothing on stdout, and one line on stderr: `error: ...` with ``words``
    (after `plan`'s own `submitted ... as plan ID` note, where it got that far)."""
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith("submitted ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert "\x1b" not in lines[0]
    return lines[0]


# --- handlers ------------------------------------------------------------------------------------
def dribble_body(srv: Callable[[], FakeServer]) -> Handler:
    def h(conn: socket.socket, method: str, path: str) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        conn.sendall(b"Content-Length: 1000000\r\n\r\n[")
        while not srv().stop.wait(0.2):
            conn.sendall(b" ")

    return h


def dribble_headers(srv: Callable[[], FakeServer]) -> Handler:
    def h(conn: socket.socket, method: str, path: str) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not srv().stop.wait(0.2):
            conn.sendall(b"X")

    return h


def silent(srv: Callable[[], FakeServer]) -> Handler:
    def h(conn: socket.socket, method: str, path: str) -> None:
        srv().stop.wait(CASE_S)

    return h


def endless_chunks(srv: Callable[[], FakeServer]) -> Handler:
    def h(conn: socket.socket, method: str, path: str) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        piece = b"0," * 32768
        chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
        conn.sendall(b"2\r\n[0\r\n")
        while not srv().stop.is_set():
            conn.sendall(chunk)

    return h


def huge_length(srv: Callable[[], FakeServer]) -> Handler:
    def h(conn: socket.socket, method: str, path: str) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 524288000\r\n\r\n")
        zeros = b"0" * 65536
        while not srv().stop.is_set():
            conn.sendall(zeros)

    return h


def answer(status: str, body: bytes, **headers: str) -> Callable[[object], Handler]:
    def make(_srv: object) -> Handler:
        return lambda conn, method, path: _send(conn, status, body, **headers)

    return make


def cut_mid_body(_srv: object) -> Handler:
    def h(conn: socket.socket, method: str, path: str) -> None:
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[{"id": ')
        conn.shutdown(socket.SHUT_RDWR)

    return h


def short_length(_srv: object) -> Handler:
    def h(conn: socket.socket, method: str, path: str) -> None:
        body = b'[{"id": "H100-SXM"}]'
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + body)

    return h


def long_length_kept_open(srv: Callable[[], FakeServer]) -> Handler:
    def h(conn: socket.socket, method: str, path: str) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n[]")
        srv().stop.wait(CASE_S)

    return h


def not_http(_srv: object) -> Handler:
    return lambda conn, method, path: conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n" * 4)


DEEP = b"[" * 200_000 + b"]" * 200_000
#: 64 MiB of spaces in ~64 KiB of gzip: the cap counts the bytes after decompression
GZIP_BOMB = __import__("gzip").compress(b" " * (64 << 20), compresslevel=9)
PROBLEM = "application/problem+json"
CASES: dict[str, tuple[Callable[..., Handler], int, tuple[str, ...]]] = {
    # (1) a body, or headers, a byte at a time: each read is quick, the whole never ends
    "dribbled body": (dribble_body, 1, ("STRAITS_CLIENT_TIMEOUT_S",)),
    "dribbled headers": (dribble_headers, 1, ("STRAITS_CLIENT_TIMEOUT_S",)),
    "silent": (silent, 1, ("STRAITS_CLIENT_TIMEOUT_S",)),
    # (2) bodies without end
    "endless chunked body": (endless_chunks, 1, ("STRAITS_CLIENT_MAX_BYTES",)),
    "500 MiB Content-Length": (huge_length, 1, ("STRAITS_CLIENT_MAX_BYTES",)),
    "gzip bomb": (
        answer("200 OK", GZIP_BOMB, Content_Encoding="gzip"),
        1,
        ("STRAITS_CLIENT_MAX_BYTES",),
    ),
    # (3) 200 with no JSON, or not the endpoint's JSON
    "html 200": (answer("200 OK", b"<html><body>proxy</body></html>"), 1, ("no JSON",)),
    "truncated json": (answer("200 OK", b'[{"id": "H1'), 1, ("no JSON",)),
    "empty 200": (answer("200 OK", b""), 1, ("no JSON",)),
    "json nested past the stack": (answer("200 OK", DEEP), 1, ("no JSON",)),
    "object for a list": (answer("200 OK", b'{"chips": []}'), 1, ("expected a JSON array",)),
    "items of the wrong shape": (answer("200 OK", b'[{"x": 1}]'), 1, ("cannot read",)),
    "not http": (not_http, 1, ("expected",)),
    # (4) problem+json with odd fields, HTML errors
    "500 html": (answer("500 Internal Server Error", b"<html>\n<h1>oops</h1>"), 1, ("500",)),
    "502 problem with odd fields": (
        answer(
            "502 Bad Gateway",
            json.dumps({"detail": ["a", {"b": 1}], "incident": {"x": "\n"}}).encode(),
            Content_Type=PROBLEM,
        ),
        1,
        ("502",),
    ),
    "422 with line breaks and escapes": (
        answer(
            "422 Unprocessable Entity",
            json.dumps(
                {"detail": "bad\nsecond line\x1b[31m", "path": 5, "expected": ["x"]}
            ).encode(),
            Content_Type=PROBLEM,
        ),
        2,
        ("bad second line",),
    ),
    "401 with a null detail": (
        answer("401 Unauthorized", b'{"detail": null}', Content_Type=PROBLEM),
        1,
        ("STRAITS_TOKEN",),
    ),
    "403 problem that is a list": (answer("403 Forbidden", b"[1, 2]"), 1, ("HTTP 403",)),
    # (5) redirects: a loop, and away to another host
    "redirect loop": (answer("302 Found", b"", Location="/v1/chips"), 1, ("302", "redirect")),
    "redirect to another host": (
        answer("307 Temporary Redirect", b"", Location="http://evil.invalid/steal"),
        1,
        ("307", "evil.invalid"),
    ),
    # (6) (7) cut connections and wrong lengths
    "closed mid-body": (cut_mid_body, 1, ("broke off",)),
    "Content-Length too short": (short_length, 1, ("no JSON",)),
    "Content-Length too long, kept open": (long_length_kept_open, 1, ("TIMEOUT",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_server_is_one_error_line_within_the_deadline(
    serve: Callable[[Handler], FakeServer], case: str
) -> None:
    make, code, words = CASES[case]
    holder: list[FakeServer] = []
    srv = serve(make(lambda: holder[0]))
    holder.append(srv)
    p, took = straits(srv.url, "chips")
    one_error(p, code, *words)
    if code == 1:
        assert srv.url in p.stderr
    assert took < DEADLINE_S + 12, took
    if case == "redirect to another host":
        assert len(srv.requests) == 1  # not followed: the token went nowhere else


def _page(srv: Callable[[], FakeServer], link: Callable[[FakeServer], str]) -> Handler:
    entry = {"seq": 1, "recorded_at": "2025-01-01T00:00:00Z", "kind": "check", "body": {}}

    def h(conn: socket.socket, method: str, path: str) -> None:
        _send(conn, "200 OK", json.dumps([entry]).encode(), Link=link(srv()))

    return h


@pytest.mark.parametrize(
    ("link", "words"),
    [
        (lambda s, o: f'<{s.url}/v1/ledger/entries?since=1>; rel="next"', ("repeats",)),
        (lambda s, o: '</v1/ledger/entries>; rel="next"', ("repeats",)),
        (lambda s, o: f'<{o.url}/v1/ledger/entries?c=2>; rel="next"', ("another server",)),
    ],
)
def test_a_link_next_that_loops_or_leaves_is_refused(
    serve: Callable[[Handler], FakeServer],
    link: Callable[[FakeServer, FakeServer], str],
    words: tuple[str],
) -> None:
    """(8) `ledger export` reads every page: a list whose next page is itself was read for
    ever, every page kept in memory; a next page on another host was sent the token."""
    other = serve(answer("200 OK", b"[]")(None))
    holder: list[FakeServer] = []
    srv = serve(_page(lambda: holder[0], lambda s: link(s, other)))
    holder.append(srv)
    p, took = straits(srv.url, "ledger", "export", "-o", "-")
    one_error(p, 1, srv.url, *words)
    assert len(srv.requests) <= 2 and not other.requests and took < CASE_S


def test_a_plan_state_no_straits_server_sends_is_not_polled_for_ever(
    serve: Callable[[Handler], FakeServer],
) -> None:
    job = {"id": "p-1234", "status": "thinking", "tenant": "t"}
    srv = serve(answer("202 Accepted", json.dumps(job).encode())(None))
    p, _ = straits(srv.url, "plan", str(SCENARIO), "--solver", "greedy")
    one_error(p, 1, srv.url, "status")


def _plan_job(status: str, error: str | None = None) -> Handler:
    """A server whose submitted plan is always in ``status``."""
    job = {"id": "p-1234", "status": status, "tenant": "t", "error": error}
    return answer("202 Accepted", json.dumps(job).encode())(None)


def test_a_plan_queued_past_the_client_wait_is_exit_1_and_stays_submitted(
    serve: Callable[[Handler], FakeServer],
) -> None:
    srv = serve(_plan_job("queued"))
    p, took = straits(
        srv.url, "plan", str(SCENARIO), "--solver", "greedy", env={"STRAITS_CLIENT_WAIT_S": "1"}
    )
    # the error says how to fetch the plan later, and nothing cancelled it
    one_error(p, 1, srv.url, "p-1234", "queued", "STRAITS_CLIENT_WAIT_S", "--show")
    assert [m for m, _, _ in srv.requests].count("POST") == 1
    assert "DELETE" not in {m for m, _, _ in srv.requests} and took < CASE_S


def test_a_plan_cancelled_on_the_server_ends_the_wait(
    serve: Callable[[Handler], FakeServer],
) -> None:
    srv = serve(_plan_job("cancelled", "cancelled by \x1b[2Jadmin"))
    p, _ = straits(srv.url, "plan", str(SCENARIO), "--solver", "greedy")
    one_error(p, 1, srv.url, "p-1234", "cancelled")


@pytest.mark.parametrize("value", ["soon", "0", "-1"])
def test_a_garbage_client_wait_is_exit_2_before_anything_is_sent(
    serve: Callable[[Handler], FakeServer], value: str
) -> None:
    srv = serve(_plan_job("queued"))
    p, _ = straits(
        srv.url, "plan", str(SCENARIO), "--solver", "greedy", env={"STRAITS_CLIENT_WAIT_S": value}
    )
    one_error(p, 2, "STRAITS_CLIENT_WAIT_S")
    assert "POST" not in {m for m, _, _ in srv.requests}


def test_a_plan_document_that_is_none_is_refused(serve: Callable[[Handler], FakeServer]) -> None:
    bad = {"id": "x\x1b[2J", "status": "ok", "assignments": []}
    srv = serve(answer("200 OK", json.dumps(bad).encode())(None))
    p, _ = straits(srv.url, "plan", "p-1234", "--show")
    one_error(p, 1, srv.url, "plan document")


@pytest.mark.parametrize(
    ("url", "code", "words"),
    [
        ("http://127.0.0.1:{free}", 1, ("cannot reach",)),  # (9) nothing listening
        ("http://no-such-host.invalid:8000", 1, ("cannot reach",)),  # no such name
        ("localhost:8000", 2, ("--server",)),  # no scheme
        ("127.0.0.1:8000", 2, ("--server",)),
        ("straits.example.com", 2, ("--server",)),
    ],
)
def test_a_server_that_is_not_there_or_no_url(url: str, code: int, words: tuple[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    p, took = straits(url.format(free=free), "chips")
    one_error(p, code, *words)
    assert took < CASE_S


@pytest.mark.parametrize("value", ["soon", "0", "inf", "-1"])
def test_a_garbage_client_limit_is_exit_2_naming_it(value: str) -> None:
    p, _ = straits("http://127.0.0.1:9", "chips", env={"STRAITS_CLIENT_TIMEOUT_S": value})
    one_error(p, 2, "STRAITS_CLIENT_TIMEOUT_S")


def _bomb() -> bytes:
    """A .tar.gz of a few KiB holding straits-export.json and 8 MiB of zeros."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("x/straits-export.json", b'{"plan_id": "p-1234"}'), ("x/a.sh", None)):
            info = tarfile.TarInfo(name)
            if data is None:
                info.size = 8 << 20
                tar.addfile(info, io.BytesIO(bytes(info.size)))
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("args", "body", "words"),
    [
        # a 200 object without what the command writes or prints: was exit 0, writing garbage
        (("estimate", "-"), b'{"a": [1]}', ("chip",)),
        (("ledger", "receipt", "1", "-o", "{tmp}/r.json"), b'{"a": 1}', ("inclusion_proof",)),
        (("ledger", "checkpoint", "-o", "{tmp}/c.txt"), b'{"a": 1}', ("checkpoint",)),
        # an export that is no archive (was a tarfile.ReadError traceback), or a gzip bomb
        (("export", "p-1234", "--to", "slurm", "-o", "{tmp}/jobs"), b'{"a": 1}', ("archive",)),
        (("export", "p-1234", "--to", "slurm", "-o", "{tmp}/jobs"), _bomb(), ("1,048,576",)),
    ],
)
def test_an_answer_without_what_the_command_needs_is_refused(
    serve: Callable[[Handler], FakeServer],
    tmp_path: Path,
    args: tuple[str, ...],
    body: bytes,
    words: tuple[str],
) -> None:
    srv = serve(answer("200 OK", body)(None))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if argv[-1] == "-":  # estimate reads its request from a file here
        (tmp_path / "e.json").write_text('{"kind": "train"}')
        argv[-1] = str(tmp_path / "e.json")
    p, _ = straits(srv.url, *argv)
    one_error(p, 1, srv.url, *words)
    assert not list(tmp_path.glob("[rcj]*")), "nothing written"
