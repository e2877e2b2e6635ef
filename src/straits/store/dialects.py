"""How Straits sets up each database's connections: SQLite's pragmas and write lock, PostgreSQL's
lock timeout, encoding check, lenient time loader and lost-connection handling, and the error
for a damaged database (split from :mod:`straits.store.db`, which opens the store)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import OperationalError

from straits.errors import StoreError
from straits.store import watchdog

#: PostgreSQL errors for damaged storage: data_corrupted, index_corrupted
_PG_DAMAGED = {"XX001", "XX002"}
#: PostgreSQL errors for a table or column that is not there or may not be read:
#: undefined_table, undefined_column, insufficient_privilege
_PG_CANNOT_READ = {"42P01", "42703", "42501"}
#: milliseconds a PostgreSQL statement waits for a lock (SQLite's busy timeout)
PG_LOCK_TIMEOUT_MS = 30000
#: SQLite's primary result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB
_SQLITE_DAMAGED = (11, 26)


def sqlite_setup(engine: Engine, *, durable: bool = True) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_con: Any, _record: Any) -> None:
        dbapi_con.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cur = dbapi_con.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        # a throwaway database (an in-memory URL) need not survive a power cut
        cur.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("straits_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @event.listens_for(engine, "handle_error")
    def _unreadable(ctx: Any) -> None:
        original = ctx.original_exception
        message = str(original)
        if message.startswith("Could not decode to UTF-8"):
            # SQLite keeps any bytes as TEXT (`SET body = CAST(x'ff' AS TEXT)`); the driver's
            # decode then fails the whole read with an OperationalError, which was taken for
            # a database gone (503 with Retry-After; the CLI's "became unavailable"): an
            # altered row, as a BLOB where Straits keeps text is (tables.Str)
            from straits.store.tables import AlteredRowError

            raise AlteredRowError(
                f"a stored text is not UTF-8 ({message.split(' with text ')[0][:80]}): "
                "the database was altered"
            ) from None
        if (getattr(original, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_DAMAGED:
            # a page of the file damaged (a disk fault, a torn copy, a file edited or replaced
            # under the server): a DatabaseError, which no caller expects, was a traceback on
            # the CLI and a 500 on the API wherever a read reached the page
            raise DamagedDatabaseError(message)


class DamagedDatabaseError(StoreError):
    """SQLite found the database file damaged (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``), or
    PostgreSQL its data (``data_corrupted``, ``index_corrupted``): exit 1 on the CLI, 503 on
    the API, as a database that cannot be reached."""

    def __init__(self, reason: str, *, postgres: bool = False) -> None:
        self.reason = reason
        super().__init__(
            f"the database reports damaged data ({reason}): restore it from a backup "
            "(`pg_amcheck` shows what is damaged)"
            if postgres
            else f"the database file is damaged ({reason}): restore it from a backup "
            "(`sqlite3 FILE 'PRAGMA integrity_check'` shows what is damaged)"
        )


def postgres_setup(engine: Engine) -> None:
    from straits.store.contention import connection_lost

    @event.listens_for(engine, "connect")
    def _connect(dbapi_con: Any, _record: Any) -> None:
        adapters = getattr(dbapi_con, "adapters", None)  # psycopg 3 (psycopg2 has none)
        if adapters is not None:
            for name in ("timestamptz", "timestamp"):
                for fmt in (0, 1):  # text, binary
                    inner = adapters.get_loader(adapters.types[name].oid, fmt)
                    if inner is not None:
                        adapters.register_loader(name, _lenient(inner))
        cur = dbapi_con.cursor()
        cur.execute("SELECT current_setting('server_encoding'), current_setting('lock_timeout')")
        encoding, timeout = cur.fetchone() or ("UTF8", "0")
        if str(encoding).upper() != "UTF8":  # LATIN1, SQL_ASCII: tracebacks, false alarms
            raise StoreError(
                f"cannot open the database: its encoding is {encoding}, not UTF8 (CREATE "
                "DATABASE ... ENCODING 'UTF8' holds every text Straits records)"
            )
        if timeout in ("0", 0):  # not set by the URL, role or database
            cur.execute(f"SET lock_timeout = {PG_LOCK_TIMEOUT_MS}")
        cur.close()
        dbapi_con.commit()

    @event.listens_for(engine, "handle_error")
    def _damaged(ctx: Any) -> OperationalError | None:
        if (lost := connection_lost(ctx)) is not None:
            return lost
        code = getattr(ctx.original_exception, "sqlstate", None)
        if code in _PG_DAMAGED:
            # a page or an index the server found damaged ("invalid page in block 7 of
            # relation base/16384/16401"): an InternalError, which no caller expects, was a
            # 500 on the API and a traceback on the CLI; as SQLite's damaged file, a
            # database that cannot be used (503, exit 1)
            first = str(ctx.original_exception).splitlines()[0][:200]
            raise DamagedDatabaseError(f"{code}: {first}", postgres=True)
        if code in _PG_CANNOT_READ:
            # a table or column taken away under a running process (a `pg_restore --clean`,
            # a schema dropped and loaded again), or one the role may not read: a
            # ProgrammingError, a 500 on every request that read it and a traceback on the
            # CLI; SQLite's "no such table" is an OperationalError, a database that cannot
            # be used (503, exit 1), and so are these now (pg51). A write the role may not
            # make stays the store's "database write failed" (contention.refuses_writes)
            return OperationalError(ctx.statement, ctx.parameters, ctx.original_exception)
        return None

    watchdog.watch(engine)


def _lenient(inner: Any) -> Any:
    """A psycopg loader that gives a time Python cannot hold (``infinity``, year 10000 and
    later) as its text, instead of failing the whole fetch with a DataError: the column's
    :class:`~straits.store.tables.Time` then names it as an altered value."""
    from psycopg import DataError
    from psycopg.adapt import Loader

    class Lenient(Loader):
        format = inner.format

        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._inner = inner(oid, context)

        def load(self, data: Any) -> Any:
            try:
                return self._inner.load(data)
            except DataError:
                return bytes(data).decode("utf-8", "replace")

    return Lenient


def not_tables_query(dialect: str, names: list[str]) -> Any:
    """A statement that lists the names of ``names`` the database resolves, as Straits'
    queries do, to something other than a table: a view of the same columns put in a
    table's place passed the schema probe, which names every column and reads no row
    (led65). PostgreSQL: the relation the search path finds (``to_regclass``), an ordinary
    or a partitioned table; SQLite: a ``view`` or a virtual table of that name in the main
    schema, in any case (``LEDGER`` is ``ledger`` to SQLite; a virtual table's rows are
    whatever its module makes, an FTS5 table's those of a view; a trigger of that name is
    not one: rev65). A name that resolves to nothing is the schema probe's to report."""
    from sqlalchemy import bindparam, text

    if dialect == "postgresql":
        return text(
            "SELECT n FROM unnest(CAST(:names AS text[])) AS n "
            "JOIN pg_catalog.pg_class c ON c.oid = to_regclass(n) "
            "WHERE c.relkind NOT IN ('r', 'p')"
        ).bindparams(names=names)
    # a trigger may share its table's name (its own namespace): only a view or a virtual
    # table (a 'table' with no b-tree of its own: rootpage 0) takes the place; SQLite's names
    # match without regard to ASCII case, as its lower() folds them (rev65)
    return text(
        "SELECT lower(name) FROM sqlite_master "
        "WHERE (type = 'view' OR (type = 'table' AND rootpage = 0)) AND lower(name) IN :names"
    ).bindparams(bindparam("names", [n.lower() for n in names], expanding=True))
