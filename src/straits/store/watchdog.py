"""A bound on how long a PostgreSQL statement may go unanswered.

A server that stops answering without closing its connections (its process frozen by
``SIGSTOP``, a VM paused, a host whose network drops packets silently) leaves a client waiting
forever: the server's own timeouts run on the server, libpq has no read timeout, and the kernel
of a frozen server's host still acknowledges every packet, so TCP keepalives and
``tcp_user_timeout`` never fire. Measured before this module: ``/readyz`` waited past 80 s
(forever) with the server frozen, each probe holding one of the API's worker threads.

:data:`WATCHDOG` watches the statements the store runs, the commits and rollbacks that end its
transactions, and the pool's ping before it hands out a connection: one still unanswered after
its limit has its connection's socket shut down, so the driver's wait ends with a disconnection
error (the connection is discarded, the caller sees the store's usual "database does not
answer" error: exit 1, HTTP 503). The limit is generous for statements, commits and rollbacks
(:data:`STATEMENT_S`: a large read takes seconds, and a statement waiting for a lock ends by
``lock_timeout`` first) and short for pings (:data:`PING_S`).
Migrations' statements run unwatched (a backfill may legitimately take minutes; their commit is
watched).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

#: seconds a statement may go unanswered (the execution option ``straits_stall_s`` overrides
#: it; 0 leaves a statement unwatched)
STATEMENT_S = 120.0
#: seconds the pool's ping of an idle connection, and the readiness query, may go unanswered
PING_S = 5.0
#: how often the watchdog looks (seconds)
POLL_S = 0.25
OPTION = "straits_stall_s"
log = logging.getLogger("straits.store")


class Watchdog:
    """Statements in flight, by thread, and a daemon thread that cuts the overdue ones."""

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self._lock = threading.Lock()
        self._due: dict[int, tuple[float, Any]] = {}
        """thread ident -> (monotonic deadline, DBAPI connection)"""
        self._thread: threading.Thread | None = None
        self.cuts = 0
        """connections cut so far (for tests and logs)"""

    def arm(self, dbapi_con: Any, seconds: float) -> None:
        """Watch the statement this thread is about to run on ``dbapi_con``."""
        with self._lock:
            self._due[threading.get_ident()] = (time.monotonic() + seconds, dbapi_con)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, daemon=True, name="straits-db-watchdog"
                )
                self._thread.start()

    def disarm(self) -> None:
        """The statement this thread ran has been answered (or failed)."""
        with self._lock:
            self._due.pop(threading.get_ident(), None)

    def _run(self) -> None:
        while True:
            time.sleep(self.poll_s)
            now = time.monotonic()
            # cut under the lock, so that what is cut is the statement found overdue: a
            # thread cannot arm its next statement between this check and the cut
            with self._lock:
                overdue = [(k, con) for k, (due, con) in self._due.items() if due <= now]
                for k, con in overdue:
                    del self._due[k]
                    self._cut(con)

    def _cut(self, dbapi_con: Any) -> None:
        """Shut the connection's socket down: the driver's wait on it ends at once."""
        try:
            fd = dbapi_con.fileno()
        except Exception:  # already closed
            return
        try:
            dup = os.dup(fd)
        except OSError:
            return
        s = socket.socket(fileno=dup)
        try:
            s.shutdown(socket.SHUT_RDWR)
            self.cuts += 1
            log.warning("the database did not answer a statement in time: connection cut")
        except OSError:
            pass
        finally:
            s.close()


WATCHDOG = Watchdog()


def watch(engine: Any, watchdog: Watchdog = WATCHDOG) -> None:
    """Watch every statement ``engine`` runs, and the pool's ping of idle connections."""
    from sqlalchemy import event

    @event.listens_for(engine, "before_cursor_execute")
    def _before(
        conn: Any, cursor: Any, _stmt: Any, _params: Any, context: Any, _many: bool
    ) -> None:
        options = context.execution_options if context is not None else {}
        if OPTION not in options:
            options = conn.get_execution_options()
        seconds = options.get(OPTION, STATEMENT_S)
        if seconds:
            watchdog.arm(cursor.connection, float(seconds))

    @event.listens_for(engine, "after_cursor_execute")
    def _after(*_args: Any) -> None:
        watchdog.disarm()

    @event.listens_for(engine, "handle_error")
    def _error(_ctx: Any) -> None:
        watchdog.disarm()

    def watched(call: Callable[[Any], Any], ping: bool) -> Callable[[Any], Any]:
        def run(dbapi_con: Any) -> Any:
            watchdog.arm(dbapi_con, PING_S if ping else STATEMENT_S)  # read now: tests set them
            try:
                return call(dbapi_con)
            finally:
                watchdog.disarm()

        return run

    # the pool pings an idle connection before handing it out (pool_pre_ping), and a
    # transaction ends with the driver's commit() or rollback() (the pool also rolls back a
    # connection given back to it): none of these pass through the cursor events, and each
    # waited as long as a frozen server stayed frozen
    dialect = engine.dialect
    dialect.do_ping = watched(dialect.do_ping, ping=True)
    dialect.do_commit = watched(dialect.do_commit, ping=False)
    dialect.do_rollback = watched(dialect.do_rollback, ping=False)
