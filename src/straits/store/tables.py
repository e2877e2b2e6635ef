"""The stored records (SQLAlchemy 2 declarative models). The migrations in ``migrations/``
create exactly these; a test compares the two."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from straits.errors import LedgerError
from straits.limits import as_utc

#: the longest tenant id, as a scenario names one (``model.types``; migration 0009)
MAX_TENANT = 128
#: the longest token label (its column's length: PostgreSQL refuses a longer one)
MAX_LABEL = 200


class Base(DeclarativeBase):
    pass


class Time(TypeDecorator[dt.datetime]):
    """A time with its zone. A stored value that does not parse as one (the database was
    edited: ``created_at = 'garbage'``, ``2025-13-45``) is an :class:`AlteredRowError` naming
    the value, never a ValueError from inside SQLAlchemy (a 500 on every plan listing, and a
    plan queue that no worker could read past). The schema is the plain DateTime's."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], dt.datetime | None] | None:
        inner = self.impl_instance.result_processor(dialect, coltype)

        def process(value: Any) -> dt.datetime | None:
            try:
                out = inner(value) if inner is not None else value
            except (ValueError, TypeError, OverflowError):
                out = value
            # PostgreSQL's driver gives a time Python cannot hold (infinity, year 20000) as
            # its text (straits.store.db): the same refusal as SQLite's 'garbage'
            if out is None:
                return out
            if isinstance(out, dt.datetime):
                # in UTC with its zone on every backend: SQLite gives naive times (stored as
                # UTC), PostgreSQL times in its session's zone (`tokens list` showed a
                # Pacific/Kiritimati server's wall clock as the creation time; date51)
                try:
                    return out.replace(tzinfo=dt.UTC) if out.tzinfo is None else as_utc(out)
                except ValueError:  # before year 1 or after 9999 in UTC
                    pass
            raise AlteredRowError(
                f"a stored time {str(value)[:40]!r} is not a time: the database was altered"
            )

        return process


class Count(TypeDecorator[int]):
    """A whole number (a sequence number, a count). SQLite stores any value in an INTEGER
    column; one that is not a whole number (``tenant_seq = 'zz'``) is an
    :class:`AlteredRowError`, never a TypeError in arithmetic (a 500 on the next append)."""

    impl = Integer
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise AlteredRowError(
            f"a stored number {str(value)[:40]!r} is not a whole number: the database was altered"
        )


class Str(TypeDecorator[str]):
    """Text. SQLite stores any value in a TEXT column; one that is not text (a BLOB:
    ``body = x'ff00'``) is an :class:`AlteredRowError`, never a TypeError where the hashes
    are computed (a 500 on every proven read, the receipt and the full verify)."""

    impl = String
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raise AlteredRowError(
            f"a stored text {str(value)[:40]!r} is not text: the database was altered"
        )


class LongStr(Str):
    impl = Text
    cache_ok = True


class BigCount(Count):
    impl = BigInteger
    cache_ok = True


class AlteredRowError(LedgerError):
    """A stored value Straits never writes (and cannot read): the database was edited."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ScenarioRow(Base):
    """A scenario as validated, in canonical JSON, addressed by its SHA-256."""

    __tablename__ = "scenarios"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(Str(200))
    body: Mapped[str] = mapped_column(LongStr)
    created_at: Mapped[dt.datetime] = mapped_column(Time(), default=utcnow)


class PlanRow(Base):
    """A plan job: queued, running, done, failed or cancelled; its result is the plan JSON
    contract. A running job is leased to one worker until ``lease_until``; the worker renews
    the lease (and writes its progress) while it plans (``straits.store.queue``)."""

    __tablename__ = "plans"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(Str(MAX_TENANT), index=True)
    actor: Mapped[str] = mapped_column(Str(200))
    scenario_digest: Mapped[str] = mapped_column(ForeignKey("scenarios.digest"))
    options: Mapped[str] = mapped_column(LongStr)
    status: Mapped[str] = mapped_column(Str(16))
    progress: Mapped[str | None] = mapped_column(LongStr, nullable=True)
    result: Mapped[str | None] = mapped_column(LongStr, nullable=True)
    error: Mapped[str | None] = mapped_column(LongStr, nullable=True)
    ledger_seq: Mapped[int | None] = mapped_column(Count, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(Time(), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(Time(), nullable=True)
    record: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """Append the finished plan to the ledger."""
    rules_digest: Mapped[str | None] = mapped_column(Str(64), nullable=True)
    """The rules the accepting server had: only a worker with the same rules runs it."""
    attempts: Mapped[int] = mapped_column(Count, default=0, server_default="0")
    worker: Mapped[str | None] = mapped_column(Str(200), nullable=True)
    """The worker holding (or that last held) the lease: ``host:pid:nonce``."""
    lease_until: Mapped[dt.datetime | None] = mapped_column(Time(), nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(Time(), nullable=True)
    started_at: Mapped[dt.datetime | None] = mapped_column(Time(), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    idempotency_key: Mapped[str | None] = mapped_column(Str(200), nullable=True)
    """the key its submitter sent (``Idempotency-Key``, the console's form): unique per tenant"""


Index("ix_plans_status", PlanRow.status)
Index("ix_plans_ledger_seq", PlanRow.ledger_seq)
Index("ix_plans_tenant_started", PlanRow.tenant, PlanRow.started_at)
Index("ix_plans_queue", PlanRow.status, PlanRow.tenant, PlanRow.created_at)
Index("ux_plans_idempotency", PlanRow.tenant, PlanRow.idempotency_key, unique=True)


class DecisionRow(Base):
    """A recorded check: the requests and the answer, as the ``check`` contract has them."""

    __tablename__ = "decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(Str(MAX_TENANT), index=True)
    actor: Mapped[str] = mapped_column(Str(200))
    request: Mapped[str] = mapped_column(LongStr)
    answer: Mapped[str] = mapped_column(LongStr)
    ledger_seq: Mapped[int] = mapped_column(Count)
    created_at: Mapped[dt.datetime] = mapped_column(Time(), default=utcnow)
    idempotency_key: Mapped[str | None] = mapped_column(Str(200), nullable=True)
    """the key its recorder sent (``Idempotency-Key``, ``check --request-id``): unique per
    tenant; not in the ledger entry"""


Index("ux_decisions_idempotency", DecisionRow.tenant, DecisionRow.idempotency_key, unique=True)
# the full verify joins both tables to the ledger on ledger_seq (store.integrity): migration 0005
Index("ix_decisions_ledger_seq", DecisionRow.ledger_seq)


class LedgerRow(Base):
    """One ledger entry. ``hash`` = SHA-256 of the canonical JSON of every other field;
    ``prev_hash`` is the previous entry's hash (64 zeros for the first). Both are unique, so
    two entries can never claim the same predecessor."""

    __tablename__ = "ledger"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recorded_at: Mapped[str] = mapped_column(Str(40))
    tenant: Mapped[str] = mapped_column(Str(MAX_TENANT), index=True)
    actor: Mapped[str] = mapped_column(Str(200))
    kind: Mapped[str] = mapped_column(Str(16))
    body: Mapped[str] = mapped_column(LongStr)
    prev_hash: Mapped[str] = mapped_column(Str(64), unique=True)
    hash: Mapped[str] = mapped_column(Str(64), unique=True)
    tenant_seq: Mapped[int] = mapped_column(Count)
    """1, 2, 3 within the tenant: the number a tenant sees (global numbers stay private)"""
    salt: Mapped[str] = mapped_column(Str(32))
    """random hex in the entry's Merkle leaf, so a sibling hash in another tenant's receipt
    cannot be matched against guessed content ('' for entries recorded before the tree)"""


Index("ix_ledger_tenant_seq", LedgerRow.tenant, LedgerRow.tenant_seq, unique=True)


class LedgerNode(Base):
    """The RFC 6962 hash of every perfect subtree of the Merkle tree over the entries: level 0
    holds leaf ``idx`` (entry ``idx + 1``), level ``L`` the subtree of leaves
    ``[idx * 2**L, (idx + 1) * 2**L)``. Written in the entry's transaction; any proof reads
    ``O(log n)`` of them."""

    __tablename__ = "ledger_nodes"
    # SQLite: clustered on (level, idx), so a node is one B-tree descent, not an index search
    # and a rowid lookup (PostgreSQL ignores the option)
    __table_args__ = ({"sqlite_with_rowid": False},)
    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))


class LedgerCheckpoint(Base):
    """A signed checkpoint (c2sp.org/tlog-checkpoint) the log issued: kept so receipts and
    verification can use the latest; the signature, not the row, is what is trusted."""

    __tablename__ = "ledger_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigCount, index=True)
    root: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(8))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(Time(), default=utcnow)


class LedgerHead(Base):
    """The last entry's number and hash, written in the same transaction as the entry: a
    deleted tail no longer matches it."""

    __tablename__ = "ledger_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Count)
    hash: Mapped[str] = mapped_column(String(64))


class TokenRow(Base):
    """An API token: only the SHA-256 of its secret is stored."""

    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(Str(MAX_TENANT))
    role: Mapped[str] = mapped_column(Str(16))
    secret_hash: Mapped[str] = mapped_column(Str(64))
    label: Mapped[str] = mapped_column(Str(MAX_LABEL), default="")
    created_at: Mapped[dt.datetime] = mapped_column(Time(), default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(Time(), nullable=True)


class AuditRow(Base):
    """A refused API request (401, 403, 404 on another tenant's record, 413)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(Time(), default=utcnow)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    status: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    token_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    tenant: Mapped[str | None] = mapped_column(String(MAX_TENANT), nullable=True)
    client: Mapped[str | None] = mapped_column(String(100), nullable=True)


Index("ix_audit_events_at", AuditRow.at)
