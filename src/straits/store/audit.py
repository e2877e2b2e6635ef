"""Refused requests, kept in the database and written to the ``straits.audit`` log.

The server gives each client (its address) a budget (:class:`Budget`, on ``app.state``): at
most :data:`PER_MINUTE` refusals a minute are kept one by one (``STRAITS_AUDIT_PER_MINUTE``,
``Settings.audit_per_minute``); the rest of that minute are counted, and the count is
kept as one summary row (``reason`` says how many) when the client is next refused after the
minute, or when it is forgotten (:data:`MAX_CLIENTS` are remembered). Before, every refusal
was a row and a log line: a client without a token grew the table and held SQLite's write lock
as fast as it could send.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from straits.errors import StoreError
from straits.store.db import Store
from straits.store.tables import AuditRow

log = logging.getLogger("straits.audit")


def loggable(text: object) -> str:
    """``text`` for one log line: every character that is not printable (a newline, a carriage
    return, an ANSI escape) written as ``\\xNN`` / ``\\uNNNN``. A request path is the client's
    text, percent-decoded by the server (``/x%0Arefused GET ...`` is ``/x``, a newline and a
    line of the client's making): it forged whole lines of this log."""
    value = str(text)
    if value.isprintable():
        return value
    return "".join(
        c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        for c in value
    )


PER_MINUTE = 60
"""refusals of one client kept one by one a minute (default of ``STRAITS_AUDIT_PER_MINUTE``)"""
MAX_CLIENTS = 10_000
"""clients whose minute is remembered; the least recently refused is forgotten (summarised)"""
WINDOW_S = 60.0


@dataclass
class _Minute:
    start: float
    kept: int = 0
    dropped: int = 0
    status: int = 0
    """the last dropped refusal's status"""


class Budget:
    """Which refusals are kept one by one: :meth:`admit` says whether this one is, and which
    counts of dropped refusals (client, how many, last status) are due as summary rows."""

    def __init__(
        self,
        per_minute: int,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute, self.max_clients, self.clock = per_minute, max_clients, clock
        self._minutes: OrderedDict[str, _Minute] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, client: str, status: int) -> tuple[bool, list[tuple[str, int, int]]]:
        now = self.clock()
        due: list[tuple[str, int, int]] = []
        with self._lock:
            m = self._minutes.pop(client, None)
            if m is not None and now - m.start >= WINDOW_S:
                if m.dropped:
                    due.append((client, m.dropped, m.status))
                m = None
            m = m or _Minute(now)
            self._minutes[client] = m  # the most recently refused last
            while len(self._minutes) > self.max_clients:
                old, gone = self._minutes.popitem(last=False)
                if gone.dropped:
                    due.append((old, gone.dropped, gone.status))
            if m.kept < self.per_minute:
                m.kept += 1
                return True, due
            m.dropped += 1
            m.status = status
            return False, due


def log_refusal(
    store: Store,
    *,
    method: str,
    path: str,
    status: int,
    reason: str,
    token_id: str | None = None,
    tenant: str | None = None,
    client: str | None = None,
    budget: Budget | None = None,
) -> None:
    """Log and store one refusal; with a ``budget``, only as it admits (and the summaries it
    says are due)."""
    if budget is not None:
        kept, due = budget.admit(client or "", status)
        for who, n, last in due:
            _summary(store, who, n, last, budget.per_minute)
        if not kept:
            return
    log.warning(
        "refused %s %s -> %d (%s) token=%s tenant=%s client=%s",
        loggable(method),
        loggable(path),
        status,
        loggable(reason),
        loggable(token_id),
        loggable(tenant),
        loggable(client),
    )
    _keep(
        store,
        AuditRow(
            method=method[:10],
            path=path[:500],
            status=status,
            reason=reason[:2000],
            token_id=token_id,
            tenant=tenant,
            client=(client or "")[:100] or None,
        ),
    )


def _keep(store: Store, row: AuditRow) -> None:
    try:
        with store.write(ledger=False) as s:
            s.add(row)
    except StoreError as exc:  # the database is away: one line, not a traceback a minute
        log.warning("could not store an audit event (%s %s): %s", row.status, row.reason[:200], exc)
    except Exception:  # the refusal stands even if it cannot be stored; the log has it
        log.exception("could not store an audit event")


def _summary(store: Store, client: str, n: int, status: int, per_minute: int) -> None:
    """One row (and one log line) for ``n`` refusals of ``client`` past its budget."""
    reason = (
        f"{n} more refusal{'s' if n != 1 else ''} of this client within a minute, not kept one "
        f"by one (audit budget: {per_minute} a minute; the last was a {status})"
    )
    log.warning("refused %d more from client=%s (audit budget)", n, loggable(client))
    _keep(
        store,
        AuditRow(method="-", path="-", status=status, reason=reason, client=client[:100] or None),
    )


def refusals(store: Store, limit: int = 100) -> list[AuditRow]:
    with store.session() as s:
        return list(s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)))
