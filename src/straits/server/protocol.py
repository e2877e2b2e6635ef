"""uvicorn's HTTP/1.1 protocol with a deadline for request headers.

uvicorn closes idle keep-alive connections, but a client that connects and then sends nothing,
or sends its headers a byte at a time (slowloris), holds the connection for ever: its keep-alive
timer stops at the first byte and nothing else runs until the headers are complete. This
protocol closes a connection whose request headers are not complete ``header_timeout`` seconds
after it opened or after its previous response. Slow bodies are cut by the app's body timeout
(``BodyLimit``, 408).

A client that sends its requests and never reads the answers (or reads them a byte a minute)
held its connection for ever as well: none of those deadlines runs while an answer is being
written, and the write waits for the client. So once the answer's bytes back up (the transport
pauses writing) or a connection closes with bytes not yet sent, the client has
``write_timeout`` seconds (``STRAITS_WRITE_TIMEOUT_S``, 30) to take some of them, again and
again; one that takes none in that time is dropped (the socket aborted: a close waits for the
bytes to be sent). Three such clients kept ``--max-connections 3`` full for minutes.

A client that takes a few bytes each time (a kilobyte every 29 s) passed that test for ever, and
a handful of them held ``--max-connections``. So the client must also take the answer at
``write_min_rate`` bytes a second (``STRAITS_WRITE_MIN_RATE``, 1,024) on average over all the
time the connection's bytes have waited for it (from each back-up to its drain, summed over the
connection's life); the average is first judged ``write_timeout`` seconds into the waiting, and
at each deadline after. One below the floor is dropped as well. Time the server spends making an
answer is not counted: only bytes the client leaves waiting. What the client took is counted as
the kernel sees it (on Linux, bytes still in the socket's send queue are not taken), not as the
transport's buffer shrinks: the kernel takes from it in bursts (a third of its send buffer,
megabytes, at a time), so a client reading steadily at 40 KB/s took "none" for half a minute.

It also answers what h11 refuses (a malformed request line or header, a bad ``Content-Length``
or chunk size, no ``Host``) with problem+json instead of uvicorn's ``text/plain`` "Invalid
HTTP request received.", and refuses, before any route runs:

* a request head (request line and headers) over ``MAX_HEAD_BYTES``: ``431``. h11 applied its
  16 KiB limit only to a head that arrived in more than one read, so a 17 KB header sent in two
  packets was a 400 while a 200 KB one sent at once was served, and one over the 256 KiB a read
  takes was answered by closing the connection on unread bytes: a reset, and the client never
  saw the answer. The head's size is the bytes h11 read for it (its parsed headers had their
  values' whitespace stripped: 100 KB of spaces in two reads was served);
* a request line of another HTTP version (``GET / HTTP/2.0``, served as HTTP/1.1): ``505``;
* a request over ``--max-connections`` (uvicorn's ``limit_concurrency``): ``503`` with
  ``Retry-After``, where uvicorn answered ``text/plain`` without one;
* a request with both ``Content-Length`` and ``Transfer-Encoding``: ``400``, and the connection
  closed (RFC 9112 6.1). h11 read the body as chunked and kept the connection open, so what a
  proxy reading ``Content-Length`` took for this request's body was served as a second request
  (request smuggling).

After such an answer, and whenever a connection is closed while a request's body is still
arriving (a 413 or 408 answered before the body was read), the connection is closed once the
client stops sending (or after ``LINGER_S``), the bytes still arriving read and dropped: a
close with unread bytes is a reset, which can reach the client before the answer does. A
protocol error after the app has begun its answer (a bad chunk after a 401) closes the
connection without a second answer: uvicorn tried to send one and logged a traceback.

A chunked body's declared size is passed on to the app: each request's scope holds
``scope["extensions"][DECLARED]``, a dict whose ``"pending"`` is the bytes the chunk being read
still declares (0 outside a chunk), and the app is woken (an empty ``http.request``, more to
come) when a chunk's size line arrives without its data, so ``BodyLimit`` answers a chunk
declared over the cap (``FFFFFFFFFFFFFFFFFFFF``) with 413 at once, where it waited for bytes
that never came and answered 408 at the body timeout (srv32). h11 keeps that size in its
reader (``ChunkedReader._bytes_in_chunk``) and says it nowhere public: it is read, in O(1),
with defaults that give 0 (the old 408) if h11 renames it, and a test pins it.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import socket
import struct
import sys
from typing import Any, cast

import h11
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

from straits.jsonout import dumps
from straits.server.head import DECLARED
from straits.server.problems import MEDIA_TYPE, problem, problem_body
from straits.store.audit import loggable

#: the request line and headers of one request, at most
MAX_HEAD_BYTES = 64 * 1024
#: seconds a refused client may go on sending before its connection is closed
LINGER_S = 2.0
#: seconds a client may take none of an answer's waiting bytes before its connection is
#: dropped (``Settings.write_timeout_s``, ``STRAITS_WRITE_TIMEOUT_S``)
WRITE_TIMEOUT_S = 30.0
#: bytes a second a client must take an answer's waiting bytes at, on average over the time they
#: waited (``Settings.write_min_rate``, ``STRAITS_WRITE_MIN_RATE``); 0: no floor
WRITE_MIN_RATE = 1024.0


class _Connection(h11.Connection):
    """h11's server side, refusing what it would read but this server must not serve, and
    keeping the error it raised for the answer."""

    refused: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        buffered = _buffered(self)
        try:
            event = super().next_event()
            if isinstance(event, h11.Request):
                _check(event, buffered - _buffered(self))
            return event
        except h11.RemoteProtocolError as exc:
            self.refused = exc
            raise


def _buffered(conn: h11.Connection) -> int:
    """The bytes h11 has received and not yet parsed: what it took for a request's head is
    the difference across the ``next_event`` that made it. h11 keeps them in its
    ``_receive_buffer`` and says it nowhere public: read in O(1), 0 (the parsed headers' size
    alone, as before) if h11 renames it."""
    try:
        return len(getattr(conn, "_receive_buffer", b""))
    except TypeError:
        return 0


def _check(request: h11.Request, read: int = 0) -> None:
    """Refuse what h11 took but this server must not serve; ``read``: the bytes of the head."""
    if not request.http_version.startswith(b"1."):  # h11 took 'HTTP/2.0' and served it
        version = request.http_version.decode("ascii", "replace")
        raise h11.RemoteProtocolError(
            f"HTTP/{version} in an HTTP/1 request line: this server speaks HTTP/1.1",
            error_status_hint=505,
        )
    names = {name for name, _ in request.headers}
    if b"content-length" in names and b"transfer-encoding" in names:
        raise h11.RemoteProtocolError(
            "both Content-Length and Transfer-Encoding: the body could be read two ways"
        )
    # the parsed headers' size leaves out the whitespace h11 strips from their values (a 100 KB
    # head of spaces in two reads was served, api65), so the bytes read count too
    size = len(request.method) + len(request.target) + 12
    size += sum(len(name) + len(value) + 4 for name, value in request.headers.raw_items())
    if max(size, read) > MAX_HEAD_BYTES:
        raise h11.RemoteProtocolError("too large", error_status_hint=431)


class HeaderDeadlineProtocol(H11Protocol):
    header_timeout: float = 10.0
    write_timeout: float = WRITE_TIMEOUT_S
    write_min_rate: float = WRITE_MIN_RATE
    _header_timer: asyncio.TimerHandle | None = None
    _write_timer: asyncio.TimerHandle | None = None
    _taken_then = 0  # bytes the client had taken when the write timer was armed
    _written = 0  # bytes handed to the socket
    _waited_s = 0.0  # seconds bytes waited for the client, in waits that ended
    _taken_waiting = 0  # bytes the client took in those waits
    _wait_began: float | None = None  # when the current wait began (None: no bytes wait)
    _taken_at_wait = 0  # bytes it had taken when the current wait began
    _lingering = False
    _socket: asyncio.Transport

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _Connection(h11.SERVER, MAX_HEAD_BYTES)
        # uvicorn answers over --max-connections with its own text/plain 503 and no
        # Retry-After; the same limit, checked as uvicorn checks it, is answered by _bounded
        self._limit, self.limit_concurrency = self.limit_concurrency, None
        self._app, self.app = self.app, self._bounded

    async def _bounded(self, scope: Any, receive: Any, send: Any) -> None:
        # uvicorn counted the tasks before adding this request's, and this connection is one
        # of ``connections`` (added in connection_made): with ``>=`` over both, N allowed
        # connections served N-1, and --max-connections 1 none. A pipelined request's task
        # starts before its predecessor's, done, leaves ``tasks``: only those running count
        if self._limit is not None and (
            len(self.connections) > self._limit
            or (
                len(self.tasks) > self._limit
                and sum(not task.done() for task in self.tasks) > self._limit
            )
        ):
            self.logger.warning("Exceeded concurrency limit.")
            await problem(
                503,
                f"the server is serving its {self._limit:,} connections at most; try again",
                instance=str(scope.get("path", "")),
                headers={"Retry-After": "2", "Connection": "close"},
            )(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._socket = transport
        super().connection_made(cast(asyncio.Transport, _ClosingAfterBody(transport, self)))
        self._arm()

    def data_received(self, data: bytes) -> None:
        if not self._lingering:  # after a refusal, what still arrives is dropped
            super().data_received(data)

    def _should_upgrade(self) -> bool:
        """Never: no route takes a WebSocket or another protocol, so an ``Upgrade`` is ignored
        and the request answered as HTTP/1.1 (RFC 9110 7.8). uvicorn handed a WebSocket
        handshake to the websockets library (a ``403`` text/plain, the route and the token
        never read) and logged two warnings for every other upgrade anyone sent."""
        return False

    def send_400_response(self, msg: str) -> None:
        """Answer what h11 (or ``_check``) refused, as problem+json, then close."""
        error = self.conn.refused if isinstance(self.conn, _Connection) else None
        status = error.error_status_hint if error is not None else 400
        if status == 431:
            detail = f"the request line and headers are over {MAX_HEAD_BYTES:,} bytes"
        elif status == 505:
            detail = loggable(str(error))[:200]
        else:
            status = 400
            detail = "not a valid HTTP/1.1 request: " + loggable(str(error or msg))[:200]
        self.logger.warning("refused a request: %s %s", status, detail)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app, if it still reads, is told the client left
            cycle.message_event.set()
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # nothing answered yet
            body = dumps(problem_body(status, detail), indent=None).encode("utf-8")
            head = h11.Response(
                status_code=status,
                reason=STATUS_PHRASES[status],
                headers=[
                    *self.server_state.default_headers,  # date, server: as every answer has
                    (b"content-type", MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            )
            for event in (head, h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event) or b"")
        self._close_after_reading()

    def _close_after_reading(self) -> None:
        if self._lingering or self._socket.is_closing():
            return
        self._lingering = True
        self._disarm()
        self._unset_keepalive_if_required()
        if self._socket.can_write_eof():
            self._socket.write_eof()  # the answer, then FIN; the client's EOF closes it
        self.flow.resume_reading()
        self.loop.call_later(LINGER_S, self._socket.close)
        self._watch_writes()  # the answer is sent, or the client dropped

    def _close(self) -> None:
        """Close the connection; while the client is still sending a request's body (a 413
        or 408 answered before it was read), once it stops: uvicorn closed at once, and the
        reset overtook the answer (urllib, which sends the whole body before it reads, got
        'Connection reset by peer' for a 20 MB body instead of the 413)."""
        if self.conn.their_state is h11.SEND_BODY:
            self._close_after_reading()
        else:
            self._socket.close()
            self._watch_writes()  # a close waits for the bytes not yet sent

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._disarm()
        self._unwatch_writes()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._watch_writes()

    def resume_writing(self) -> None:
        super().resume_writing()  # the client took bytes: its time starts again
        self._unwatch_writes()
        if self._socket.is_closing():
            self._watch_writes()

    def _watch_writes(self) -> None:
        """Give the client ``write_timeout`` seconds to take some of the bytes waiting to be
        sent, if any wait (and it has not got them already)."""
        if self._write_timer is None and self._socket.get_write_buffer_size() > 0:
            self._taken_then = self._taken()
            if self._wait_began is None:
                self._wait_began, self._taken_at_wait = self.loop.time(), self._taken_then
            self._write_timer = self.loop.call_later(self.write_timeout, self._write_expired)

    def _unwatch_writes(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        self._waited_s, self._taken_waiting = self._waiting()
        self._wait_began = None

    def _taken(self) -> int:
        """Bytes of this connection's answers the client has taken so far: handed to the
        socket, less those in the transport's buffer and (Linux) in the kernel's send queue."""
        return self._written - self._socket.get_write_buffer_size() - _queued(self._socket)

    def _waiting(self) -> tuple[float, int]:
        """Seconds bytes have waited for the client over the connection's life, the current
        wait included, and the bytes it took meanwhile."""
        if self._wait_began is None:
            return self._waited_s, self._taken_waiting
        waited = self._waited_s + self.loop.time() - self._wait_began
        return waited, self._taken_waiting + self._taken() - self._taken_at_wait

    def _write_expired(self) -> None:
        self._write_timer = None
        if not self._socket.get_write_buffer_size():
            return
        waited, taken = self._waiting()
        if self._taken() <= self._taken_then:
            self.logger.info(
                "dropping a connection whose client took none of its answer for %g s",
                self.write_timeout,
            )
            self._drop()
        elif taken < self.write_min_rate * waited:
            self.logger.info(
                "dropping a connection whose client took its answer at %.0f bytes/s over "
                "%.0f s, under the floor of %g bytes/s",
                taken / waited,
                waited,
                self.write_min_rate,
            )
            self._drop()
        else:  # it took some, fast enough: as long again for the rest
            self._watch_writes()

    def _drop(self) -> None:
        """Abort the connection, the bytes the kernel still holds for the client discarded (a
        reset): a plain close left them to it, and the dropped reader went on taking them."""
        sock = self._socket.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._socket.abort()

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        cycle = self.cycle
        if cycle is None:
            return
        if cycle is not before:  # a request's headers are in: its handler runs now
            self._disarm()
            cycle.scope.setdefault("extensions", {})[DECLARED] = {"pending": 0}
        declared = cycle.scope.get("extensions", {}).get(DECLARED)
        pending = _chunk_pending(self.conn)
        if declared is None or declared["pending"] == pending or cycle.response_complete:
            return
        declared["pending"] = pending
        if pending and not cycle.message_event.is_set():
            cycle.message_event.set()  # a size line without its data: the app may judge it

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and not self.transport.is_closing():
            self.logger.info(
                "closing a connection whose request headers took over %g s", self.header_timeout
            )
            self.transport.close()


class _ClosingAfterBody:
    """The connection's transport as uvicorn sees it: ``close`` waits for the rest of a
    request's body (``HeaderDeadlineProtocol._close``); the rest is the socket's."""

    def __init__(self, transport: asyncio.Transport, owner: HeaderDeadlineProtocol) -> None:
        self._transport, self._owner = transport, owner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._owner._written += len(data)  # what the client is to take (the floor's count)
        self._transport.write(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def close(self) -> None:
        self._owner._close()

    def is_closing(self) -> bool:
        return self._owner._lingering or self._transport.is_closing()


def _chunk_pending(conn: h11.Connection) -> int:
    """The bytes the chunk h11 is reading still declares (its size line read, not all its
    data yet); 0 when no chunk is being read."""
    pending = getattr(getattr(conn, "_reader", None), "_bytes_in_chunk", 0)
    return pending if isinstance(pending, int) and pending > 0 else 0


def _queued(transport: asyncio.Transport) -> int:
    """Bytes in the kernel's send queue of ``transport``'s socket, not yet taken by the client
    (``SIOCOUTQ``, Linux); 0 where it cannot be asked."""
    sock = transport.get_extra_info("socket")
    if sys.platform != "linux" or sock is None or sock.fileno() < 0:
        return 0
    import fcntl
    import termios

    out = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, out, True)
    except OSError:
        return 0
    return max(out[0], 0)


def protocol(
    header_timeout: float,
    write_timeout: float = WRITE_TIMEOUT_S,
    write_min_rate: float = WRITE_MIN_RATE,
) -> type[Any]:
    """The protocol class, with ``header_timeout`` seconds for the headers, ``write_timeout``
    for a client to take some of an answer's waiting bytes and ``write_min_rate`` bytes a
    second it must take them at, on average."""
    return type(
        "HeaderDeadlineProtocol",
        (HeaderDeadlineProtocol,),
        {
            "header_timeout": header_timeout,
            "write_timeout": write_timeout,
            "write_min_rate": write_min_rate,
        },
    )
