"""What a database error says about the write that met it: contention worth retrying the
transaction for, a database that refuses every write, and who may hold SQLite's lock."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

#: PostgreSQL errors worth retrying the transaction for: serialization_failure,
#: deadlock_detected, lock_not_available, admin/crash shutdown, cannot_connect_now
PG_TRANSIENT = {"40001", "40P01", "55P03", "57P01", "57P02", "57P03"}
#: PostgreSQL errors that refuse every write: read_only_sql_transaction, insufficient_privilege
PG_REFUSED = {"25006", "42501"}


def transient(exc: DBAPIError, dialect: str) -> bool:
    """Lock contention or a dropped connection: the whole transaction may be tried again."""
    if exc.connection_invalidated:
        return True
    if dialect == "sqlite":
        text_ = str(exc.orig).lower()
        return isinstance(exc, OperationalError) and ("locked" in text_ or "busy" in text_)
    return getattr(exc.orig, "sqlstate", None) in PG_TRANSIENT


def connection_lost(ctx: Any) -> OperationalError | None:
    """A connection the server closed with an error of another class than OperationalError
    (PostgreSQL's ``idle_in_transaction_session_timeout``, 25P03, is an InternalError): an
    OperationalError, as every other lost connection is (the CLI's exit 1, the API's 503, a
    write tried again); it was a traceback and a 500. For SQLAlchemy's ``handle_error``."""
    if not ctx.is_disconnect or isinstance(ctx.sqlalchemy_exception, OperationalError):
        return None
    orig = ctx.original_exception
    return OperationalError(ctx.statement, ctx.parameters, orig, connection_invalidated=True)


def refuses_writes(exc: DBAPIError) -> bool:
    """PostgreSQL refusing every write, as SQLite's read-only file does: a read-only database
    or role (``default_transaction_read_only``), a role without the privilege. These were
    tracebacks (InternalError, ProgrammingError); SQLite's are OperationalErrors."""
    return getattr(exc.orig, "sqlstate", None) in PG_REFUSED


def holder_hint(exc: DBAPIError, dialect: str) -> str:
    """Who may hold SQLite's write lock: SQLite does not say, and "database is locked" alone
    left users looking for a bug in the command they ran."""
    if dialect == "sqlite" and "disk I/O error" in str(exc.orig):
        from straits.store.sqlite_file import room_hint  # a file SQLite could not grow

        return room_hint()
    if dialect != "sqlite" or not transient(exc, dialect):
        return ""
    return (
        " (another process writes to this file and held its lock throughout: a `straits "
        "serve`, a `straits worker` or a command recording; SQLite takes one writer at a "
        "time, PostgreSQL many)"
    )


class Contended(Exception):
    """A migration met SQLite's lock: tried again by ``Store.migrate``."""

    def __init__(self, orig: DBAPIError) -> None:
        self.orig = orig
        super().__init__(str(orig))
