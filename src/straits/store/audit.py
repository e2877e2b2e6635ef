"""Refused requests, kept in the database and written to the ``straits.audit`` log."""

from __future__ import annotations

import logging

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
) -> None:
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
    try:
        with store.write(ledger=False) as s:
            s.add(
                AuditRow(
                    method=method[:10],
                    path=path[:500],
                    status=status,
                    reason=reason[:2000],
                    token_id=token_id,
                    tenant=tenant,
                    client=(client or "")[:100] or None,
                )
            )
    except StoreError as exc:  # the database is away: one line, not a traceback a minute
        log.warning("could not store an audit event (%s %s): %s", status, reason[:200], exc)
    except Exception:  # the refusal stands even if it cannot be stored; the log has it
        log.exception("could not store an audit event")


def refusals(store: Store, limit: int = 100) -> list[AuditRow]:
    with store.session() as s:
        return list(s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)))
