"""The database: SQLite by default, PostgreSQL by URL; migrations run when a store opens.

``STRAITS_DATABASE_URL`` (or ``--db``) picks the database; unset, it is ``./straits.db``.
SQLite runs in WAL mode with a busy timeout so several processes can share the file, and every
write transaction that appends to the ledger starts with ``BEGIN IMMEDIATE``, which takes the
database's write lock before the ledger's head is read. On PostgreSQL the same transaction
takes a transaction-scoped advisory lock. Either way appends are serialized across processes,
so the chain never forks. :meth:`Store.transaction` retries a transaction that lost a race for
a lock.

PostgreSQL waits are bounded as SQLite's are: a connection attempt gives up after
``connect_timeout`` (10 s unless the URL sets it; psycopg's own default is 130 s), and a
statement waits at most ``lock_timeout`` (30 s, SQLite's busy timeout, unless the URL's
``options``, the role or the database set one) for a lock: a session that holds the ledger's
advisory lock or a row lock and never ends (an operator's forgotten ``psql`` transaction) made
every recorder wait forever. A stored time PostgreSQL holds but Python cannot (``infinity``,
year 10000 and later) reads as the raw text, which :class:`~straits.store.tables.Time` refuses
as an altered row, as it does SQLite's ``'garbage'``.

An in-memory URL (``sqlite://``) is a temporary file (not SQLite's own: one connection, which
threads cannot share), removed by :meth:`Store.close`; a closed store refuses every use.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any, TypeVar

from sqlalchemy import Select, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.orm import Session, sessionmaker

from straits.errors import InputError, StoreError
from straits.store import watchdog
from straits.store.closed import ClosedSessions
from straits.store.contention import Contended, holder_hint, refuses_writes, transient
from straits.store.dialects import (
    DamagedDatabaseError,
    not_tables_query,
    postgres_setup,
    sqlite_setup,
)
from straits.store.sqlite_file import FileGuard, unopened_hint, uri_target

ENV = "STRAITS_DATABASE_URL"
DEFAULT_URL = "sqlite:///straits.db"
#: the advisory-lock key PostgreSQL appends take (any constant shared by every process)
LEDGER_LOCK = 0x5354524149545301
#: seconds a PostgreSQL connection attempt may take (libpq's ``connect_timeout``)
PG_CONNECT_TIMEOUT_S = 10
#: seconds a SQLite write waits for this process's earlier writes (SQLite's busy timeout)
WRITE_QUEUE_S = 30.0
T = TypeVar("T")
log = logging.getLogger("straits.store")


def database_url(url: str | None = None) -> str:
    """The URL to use: the argument, else ``$STRAITS_DATABASE_URL``, else ``./straits.db``."""
    return url or os.environ.get(ENV) or DEFAULT_URL


@functools.cache
def _schema_probe() -> Select[Any]:
    """One statement that reads no row but names every column of every table: the database
    resolves each name, so a dropped table or column fails it (built once: building it on
    every probe took 2.5 ms of a SQLite probe's 3.2)."""
    from sqlalchemy import false, literal, or_, select

    from straits.store.tables import Base

    tables = Base.metadata.sorted_tables
    return select(literal(1)).where(
        or_(*(select(*t.columns).where(false()).exists() for t in tables))
    )


@functools.cache
def _kind_probe(dialect: str) -> Any:
    """The statement naming Straits' tables that are a view (or another relation) in the
    database, not a table (``dialects.not_tables_query``; built once, as the probe)."""
    from straits.store.tables import Base

    return not_tables_query(dialect, sorted(Base.metadata.tables))


#: PostgreSQL's undefined_table, undefined_column; insufficient_privilege
_PG_MISSING, _PG_DENIED = {"42P01", "42703"}, "42501"


def _probe_failure(exc: Exception) -> str:
    """Why the schema probe failed, said as it is: a name the database does not know (a table
    or column dropped or renamed), a table the role may not read, or no answer in time (a lock
    held by another session: a migration's ``ALTER TABLE``, a ``LOCK TABLE``, which is no
    reason to restore a backup; the probe said "missing ... restore it from a backup")."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None)
    first = str(orig if orig is not None else exc).strip().splitlines()
    if code in _PG_MISSING or (
        code is None and first and first[0].startswith(("no such table", "no such column"))
    ):
        return (
            "the database answers, but a table or column Straits needs is missing "
            f"({exc.__class__.__name__}): the database was altered; restore it from a backup"
        )
    if code == _PG_DENIED:
        return (
            "the database answers, but the role may not read a table Straits needs "
            f"({exc.__class__.__name__}): grant it SELECT again"
        )
    return (
        "the database answers, but not a query of Straits' tables "
        f"({exc.__class__.__name__}: a lock held on one by another session, a migration "
        "running, a connection cut): try again"
    )


class Store:
    """A database with Straits' schema, migrated to the latest revision."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = database_url(url)
        self._tmpdir: str | None = None
        self._file: FileGuard | None = None
        try:
            parsed = make_url(self.url)
            if parsed.get_dialect().is_async:  # asyncpg, aiosqlite: a traceback at first use
                raise ValueError(f"{parsed.drivername} is an asyncio driver: Straits is not")
            if parsed.get_backend_name() == "sqlite":
                ephemeral = parsed.database in (None, "", ":memory:")
                target = uri_target(parsed).render_as_string(hide_password=False)
                if ephemeral:  # a temporary file: connections per thread, as for any file
                    self._tmpdir = tempfile.mkdtemp(prefix="straits-memory-")
                    atexit.register(shutil.rmtree, self._tmpdir, True)
                    target = parsed.set(
                        database=os.path.join(self._tmpdir, "straits.db")
                    ).render_as_string(hide_password=False)
                self.engine = create_engine(target, connect_args={"timeout": 30})
                database = make_url(target).database
                if database and not parsed.query:  # a plain file (not a URI's own mode=ro)
                    self._file = FileGuard(database)
                    self._file.install(self.engine)
                sqlite_setup(self.engine, durable=not ephemeral)
            else:
                connect_args: dict[str, Any] = {}
                if "connect_timeout" not in parsed.query:
                    connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
                if "client_encoding" not in parsed.query:  # SQL_ASCII's bytes: a traceback
                    connect_args["client_encoding"] = "utf8"
                self.engine = create_engine(self.url, pool_pre_ping=True, connect_args=connect_args)
                if self.engine.dialect.name == "postgresql":
                    postgres_setup(self.engine)
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise InputError(
                f"cannot use database URL {safe_url(self.url)!r}: {exc}",
                path=ENV,
                expected="sqlite:///FILE or postgresql+psycopg://USER@HOST/DB",
            ) from None
        except ImportError as exc:
            raise InputError(
                f"the driver for {safe_url(self.url)!r} is not installed ({exc})",
                path=ENV,
                expected="pip install 'straits[postgres]'",
            ) from None
        self.dialect = self.engine.dialect.name
        # a snapshot taken before the lock (default_transaction_isolation) read a stale head
        self._write_options: dict[str, Any] = {"straits_write": True}
        if self.dialect == "postgresql":
            self._write_options["isolation_level"] = "READ COMMITTED"
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # threads of one process queue here rather than in SQLite's busy handler, which
        # sleeps in growing steps; other processes still wait on the database's own lock
        self._write_lock: threading.Lock | None = (
            threading.Lock() if self.dialect == "sqlite" else None
        )
        if migrate:
            self.migrate()
        if self._file is not None:
            with contextlib.suppress(FileNotFoundError):  # not opened yet (migrate=False)
                self._file.pin()

    def __repr__(self) -> str:
        return f"Store({safe_url(self.url)!r})"

    def migrate(self) -> None:
        """Bring the schema to the latest revision (safe to run from several processes). A
        lock SQLite would not wait for (setting up a new file's journal while another process
        migrates it: "database is locked" at once) is tried again, the revision read anew."""
        delay = 0.1
        for attempt in range(1, 7):
            try:
                return self._migrate_once()
            except Contended as exc:
                if attempt == 6:
                    raise StoreError(
                        f"cannot open the database {safe_url(self.url)!r}: "
                        f"{exc.orig.orig or exc.orig}"
                        f"{holder_hint(exc.orig, self.dialect)}"
                    ) from None
                time.sleep(delay * (0.5 + random.random()))
                delay *= 2

    def _migrate_once(self) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory
        from alembic.util.exc import CommandError

        cfg = Config()
        cfg.set_main_option(
            "script_location", str(resources.files("straits.store").joinpath("migrations"))
        )
        script = ScriptDirectory.from_config(cfg)
        head = script.get_current_head()
        try:
            with self.engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
                if current is not None and current != head:
                    self._known_revision(script, current)
                if current == head:
                    self._check_tables(conn)
                    return
            with (
                self.engine.connect().execution_options(
                    **self._write_options, straits_stall_s=0
                ) as conn,
                conn.begin(),
            ):
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEDGER_LOCK})
                if MigrationContext.configure(conn).get_current_revision() is None:
                    # under the lock: a process migrating the same new database at once has
                    # either made all of its tables or none
                    self._refuse_foreign(conn)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
            if self.dialect == "sqlite":
                # a migration can write a big transaction (0002 builds the ledger's tree): fold
                # its WAL back now, or every read goes through it (a receipt at 10^6 entries
                # took 12 ms instead of 2.5 until the WAL was checkpointed)
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except DBAPIError as exc:  # also a file that is not a database (DatabaseError)
            if self.dialect == "sqlite" and transient(exc, self.dialect):
                raise Contended(exc) from None
            raise StoreError(
                f"cannot open the database {safe_url(self.url)!r}: {exc.orig or exc}"
                + (unopened_hint(self.engine.url.database) if self.dialect == "sqlite" else "")
            ) from None
        except DamagedDatabaseError as exc:  # a file that is not a database, or a damaged one
            raise StoreError(
                f"cannot open the database {safe_url(self.url)!r}: {exc.reason}"
            ) from None
        except CommandError as exc:  # alembic_version altered: two rows, or a row per branch
            raise StoreError(
                f"cannot open the database {safe_url(self.url)!r}: its alembic_version table "
                f"cannot be read as one schema revision ({exc}); the table was altered"
            ) from None

    def _known_revision(self, script: Any, current: str) -> None:
        """Refuse a schema this Straits has no migration for (a newer Straits made it, or the
        ``alembic_version`` row was altered): migrating from it is impossible and guessing
        would write to tables of an unknown shape."""
        if current not in {r.revision for r in script.walk_revisions()}:
            raise StoreError(
                f"cannot open the database {safe_url(self.url)!r}: its schema is at "
                f"revision {current[:40]!r}, which this Straits does not know "
                "(made by a newer Straits, or the alembic_version table was "
                f"altered); this Straits migrates up to {script.get_current_head()}"
            )

    def _refuse_foreign(self, conn: Any) -> None:
        """A database with no schema revision must be empty: one holding tables of another
        application (a mistyped ``--db``, a shared PostgreSQL database) had Straits' tables
        created among them, or failed half-way on a name both use (``plans``)."""
        from sqlalchemy import inspect

        found = sorted(set(inspect(conn).get_table_names()) - {"alembic_version"})
        if found:
            shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
            raise StoreError(
                f"cannot open the database {safe_url(self.url)!r}: it is not a Straits database "
                f"(it has no schema revision but holds the tables {shown}); give Straits an "
                "empty database of its own or an existing Straits one"
            )

    def _check_tables(self, conn: Any) -> None:
        """At the latest revision every table and column must be there: one dropped by hand
        made the first query that touched it fail with a traceback, long after the store
        opened."""
        from sqlalchemy import inspect

        from straits.store.tables import Base

        found = inspect(conn)
        missing = sorted(set(Base.metadata.tables) - set(found.get_table_names()))
        if not missing:
            columns = found.get_multi_columns()
            missing = [
                f"{name}.{column}"
                for name, table in sorted(Base.metadata.tables.items())
                for column in table.columns.keys()  # noqa: SIM118 (names, not Column objects)
                if column not in {c["name"] for c in columns.get((None, name), [])}
            ]
            what = "column"
        else:
            what = "table"
        if missing:
            raise StoreError(
                f"cannot open the database {safe_url(self.url)!r}: it is at the "
                f"latest schema revision but has no {what} {', '.join(missing)} "
                "(the database was altered; restore it from a backup)"
            )

    def session(self) -> Session:
        """A session for reading (and for writes that need no ordering)."""
        return self._sessions()

    def ping(self) -> None:
        """Ask the database a trivial question, then one that names every table and column
        (readiness); :class:`StoreError` when it cannot answer (a server down or unreachable,
        a file gone) or a table or column was dropped since the store opened (every request
        reading it was a 503 while ``/readyz`` said ready), or a table is a view in the
        database (a view of its columns in its place said ready: led65)."""
        stall = {"straits_stall_s": watchdog.PING_S}  # a server that stops answering is cut off
        answered = False
        try:
            with self._sessions() as session:
                session.execute(text("SELECT 1").execution_options(**stall))
                answered = True
                session.execute(_schema_probe().execution_options(**stall))
                found = session.execute(_kind_probe(self.dialect).execution_options(**stall))
                views = sorted(str(r[0]) for r in found)
        except SQLAlchemyError as exc:
            name = exc.__class__.__name__
            if not answered:
                raise StoreError(f"the database does not answer: {name}") from None
            raise StoreError(_probe_failure(exc)) from None
        if views:  # a view of a table's columns in its place (led65): not the table
            raise StoreError(
                f"the database answers, but {', '.join(views)} is not a table (a view or "
                "another relation in its place): the database was altered; restore it "
                "from a backup"
            )

    @contextmanager
    def write(self, *, ledger: bool = True) -> Iterator[Session]:
        """One write transaction: commits on success, rolls back on any error. On SQLite it
        holds the database's write lock from its first statement (``BEGIN IMMEDIATE``), so it
        never fails half-way for a lock another connection took after it started reading. On
        PostgreSQL, ``ledger=True`` also takes the ledger's advisory lock, which serializes
        appends across processes; ledger appends happen only inside one of these."""
        try:
            with self._raw_write(ledger=ledger) as session:
                yield session
        except DBAPIError as exc:
            if not isinstance(exc, OperationalError) and not refuses_writes(exc):
                raise  # a constraint a caller handles (an IntegrityError: recorded meanwhile)
            raise StoreError(
                f"database write failed: {exc.orig or exc}{holder_hint(exc, self.dialect)}"
            ) from None

    @contextmanager
    def _raw_write(self, *, ledger: bool) -> Iterator[Session]:
        with self._queued(), self._sessions() as session:
            try:
                self._begin(session, ledger)
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def _queued(self) -> Iterator[None]:
        """This process's turn to write (SQLite), waited for at most :data:`WRITE_QUEUE_S`:
        while another process held the database's write lock (a forgotten ``sqlite3`` shell
        in ``BEGIN IMMEDIATE``, a stopped recorder), each write waited its 4 x 30 s in turn,
        so the tenth request of a server waited 20 minutes and every API thread was taken."""
        lock = self._write_lock
        if lock is None:
            yield
            return
        if not lock.acquire(timeout=WRITE_QUEUE_S):
            raise StoreError(
                f"database write failed: this process's earlier writes have waited "
                f"{WRITE_QUEUE_S:g} s for the database (another process holds its write lock)"
            )
        try:
            yield
        finally:
            lock.release()

    def _begin(self, session: Session, ledger: bool, attempts: int = 4) -> None:
        """Start the write transaction (and take the ledger lock), retrying lock contention
        and dropped connections: nothing has been done yet, so every caller of :meth:`write`
        gets these retries; :meth:`transaction` also retries failures after the start."""
        delay = 0.05
        for attempt in range(1, attempts + 1):
            try:
                conn = session.connection(execution_options=self._write_options)
                if self.dialect == "postgresql" and ledger:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LEDGER_LOCK})
                return
            except DBAPIError as exc:
                if attempt == attempts or not transient(exc, self.dialect):
                    raise
                session.rollback()
                time.sleep(delay * (0.5 + random.random()))
                delay *= 2

    def transaction(
        self, work: Callable[[Session], T], *, ledger: bool = False, attempts: int = 6
    ) -> T:
        """Run ``work`` in a write transaction (see :meth:`write`) and commit, retrying the
        whole transaction (with jittered exponential backoff, 0.05 s doubling to 1.6 s) when
        the database reports lock contention: SQLite's ``database is locked``/``busy``;
        PostgreSQL's serialization failures, deadlocks, lock timeouts and dropped connections.
        ``work`` may run more than once, each time in a fresh transaction. Any other error, or
        contention that outlasts the attempts, is a :class:`StoreError`."""
        delay = 0.05
        for attempt in range(1, attempts + 1):
            try:
                with self._raw_write(ledger=ledger) as session:
                    return work(session)
            except DBAPIError as exc:
                again = transient(exc, self.dialect)
                if attempt == attempts or not again:
                    what = "still contended after retries" if again else "failed"
                    hint = holder_hint(exc, self.dialect)
                    raise StoreError(f"database write {what}: {exc.orig or exc}{hint}") from None
                log.info(
                    "database contention (%s); retrying in %.2f s",
                    str(exc.orig or exc).splitlines()[0],
                    delay,
                )
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.6)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.engine.dispose()
        self._sessions = ClosedSessions(safe_url(self.url))  # every later use a StoreError
        if self._tmpdir is not None:  # an in-memory URL's database ends with its store
            shutil.rmtree(self._tmpdir, ignore_errors=True)


def safe_url(url: str) -> str:
    """The URL without its password (after the user, or libpq's ``?password=``), for messages."""
    try:
        parsed = make_url(url)
        if "password" in parsed.query:
            parsed = parsed.update_query_dict({"password": "***"})
        return parsed.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=***")
    except (ArgumentError, ValueError):
        return "<unparseable URL>"
