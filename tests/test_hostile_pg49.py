"""The hostile pass pg49 (PostgreSQL's ledger and store): database URLs an operator may write
that the store cannot use, and the database's password kept out of every message (the CLI
runner of test_hostile_operators.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from conftest import PG_URL, fresh_postgres
from straits.errors import StoreError
from straits.store import Store
from straits.store import ledger as ledger_mod
from test_hostile_operators import REQUEST, cli


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://u:pw@127.0.0.1:9/x",
        "postgresql+psycopg_async://u@127.0.0.1:9/x",
        "sqlite+aiosqlite:///{tmp}/x.db",
    ],
)
def test_an_asyncio_driver_is_exit_2_naming_the_url(tmp_path: Path, url: str) -> None:
    """A traceback at the first query (a TypeError for asyncpg's ``connect_timeout``,
    MissingGreenlet for the others); nothing is written."""
    db = url.format(tmp=tmp_path)
    code, err = cli("check", "--record", "--db", db, stdin=REQUEST)
    assert code == 2
    assert "asyncio" in err
    assert not (tmp_path / "x.db").exists()


SECRET = "s3cretPW"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://u:{SECRET}@127.0.0.1:9/x",
        f"postgresql+psycopg://u@127.0.0.1:9/x?password={SECRET}",
        f"postgresql+psycopg:///x?host=127.0.0.1&port=9&user=u&password={SECRET}",
    ],
)
def test_the_database_password_is_never_printed(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """libpq takes the password after the user name or as ``?password=``: the second was
    printed whole in every message naming the database, and ``config show`` printed both
    (it hides tokens)."""
    import typer
    from click.testing import CliRunner

    from straits.cli import app
    from straits.cli.common import state
    from straits.store.db import safe_url

    assert SECRET not in safe_url(url) and "***" in safe_url(url)
    code, err = cli("ledger", "verify", "--db", url)  # nothing listens on port 9
    assert code == 1 and SECRET not in err
    monkeypatch.setenv("STRAITS_DATABASE_URL", url)
    for fmt in ("table", "json"):
        state._config = None
        r = CliRunner(mix_stderr=False).invoke(
            typer.main.get_command(app), ["config", "show", "-o", fmt]
        )
        assert r.exit_code == 0 and "database" in r.stdout
        assert SECRET not in r.stdout + r.stderr


@pytest.mark.skipif(PG_URL is None, reason="no PostgreSQL server (STRAITS_TEST_POSTGRES_URL)")
def test_a_connection_ended_by_idle_in_transaction_timeout_is_a_lost_database() -> None:
    """PostgreSQL ends a session idle in a transaction for longer than its
    ``idle_in_transaction_session_timeout`` (a DBA's guard against forgotten transactions)
    with an InternalError (25P03): a full ``ledger verify`` or ``verify --tenant`` that met
    it was a traceback (a 500 on the API), a write's re-raised as is. Now the database lost,
    as any connection is: an OperationalError (exit 1, 503), a write's a StoreError."""
    assert PG_URL is not None
    store = Store(fresh_postgres(PG_URL))
    with store.session() as s:
        s.execute(text("SET idle_in_transaction_session_timeout = 100"))
        s.execute(text("SELECT 1"))  # in the session's transaction
        time.sleep(0.6)
        with pytest.raises(OperationalError) as caught:
            s.execute(text("SELECT 1"))
    assert caught.value.connection_invalidated
    with pytest.raises(StoreError), store.write() as w:
        w.execute(text("SET idle_in_transaction_session_timeout = 100"))
        time.sleep(0.6)
        w.execute(text("SELECT 1"))
    store.ping()  # the pool replaced the connection it lost
    store.close()


@pytest.mark.skipif(PG_URL is None, reason="no PostgreSQL server (STRAITS_TEST_POSTGRES_URL)")
@pytest.mark.parametrize("encoding", ["LATIN1", "SQL_ASCII"])
def test_a_database_not_in_utf8_is_refused_at_open(encoding: str) -> None:
    """A SQL_ASCII database was a traceback at open (its text came back as bytes); a LATIN1
    one opened, then a check citing a Chinese rule failed as "the database was altered", and
    a tenant or token label in other letters was a traceback at every query."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    assert PG_URL is not None
    name = f"straits_pg49_{encoding.lower()}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        conn.exec_driver_sql(
            f"CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"
        )
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        with pytest.raises(StoreError, match=encoding):
            Store(url)
        code, err = cli("ledger", "verify", "--db", url)
        assert code == 1 and "UTF8" in err
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@contextmanager
def _database(**settings: str) -> Iterator[str]:
    """A database of its own on the test server, with ``ALTER DATABASE ... SET`` settings."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    assert PG_URL is not None
    name = "straits_pg49_" + "_".join(settings).lower()
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
        for key, value in settings.items():
            conn.exec_driver_sql(f"ALTER DATABASE {name} SET {key} = '{value}'")
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.mark.skipif(PG_URL is None, reason="no PostgreSQL server (STRAITS_TEST_POSTGRES_URL)")
@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_appends_and_migrations_hold_under_a_stricter_default_isolation(isolation: str) -> None:
    """A database (or role) whose ``default_transaction_isolation`` is stricter than READ
    COMMITTED took a write's snapshot at its first statement, the lock's: an append that
    waited for another read the head as it was before it, and failed as "the log's tables
    disagree ... the database was altered" (a duplicate ledger_pkey) or a serialization
    failure; servers migrating one new database at once failed ("alembic_version already
    exists"). Writes now run at READ COMMITTED, which the lock was designed for."""
    with _database(default_transaction_isolation=isolation) as url:
        stores: list[Store] = []
        errors: list[BaseException] = []

        def open_one() -> None:
            try:
                stores.append(Store(url))
            except BaseException as exc:  # reported below
                errors.append(exc)

        openers = [threading.Thread(target=open_one) for _ in range(4)]
        for t in openers:
            t.start()
        for t in openers:
            t.join()
        assert not errors, errors
        store = stores[0]

        def record_one() -> None:
            try:
                ledger_mod.record(store, tenant="b", actor="cli:b", kind="check", body={"n": 2})
            except BaseException as exc:  # reported below
                errors.append(exc)

        waiter = threading.Thread(target=record_one)
        with store.write() as s:  # holds the ledger's lock while the other begins and waits
            ledger_mod.append(s, tenant="a", actor="cli:a", kind="check", body={"n": 1})
            waiter.start()
            time.sleep(0.5)
        waiter.join()
        assert not errors, errors
        assert ledger_mod.count(store) == 2
        assert ledger_mod.verify_chain(ledger_mod.entries(store), ledger_mod.head(store)).ok
        for each in stores:
            each.close()
