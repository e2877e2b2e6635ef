"""``/readyz`` and the schema (stop 62): a table or column dropped (or renamed) while the server
runs made every request that reads it a 503, while ``/readyz`` went on answering 200 ready (it
asked ``SELECT 1`` only; pg51 left this out). The readiness query now also names every column
of every table in one statement that reads no row, so the probe says what the routes will."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from straits.errors import StoreError
from straits.server import create_app
from straits.store import Store
from straits.store.tables import Base
from test_ledger_log import sql

TABLES = sorted(Base.metadata.tables)


def _ready(store: Store) -> tuple[int, str]:
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        r = client.get("/readyz")
        assert client.get("/healthz").status_code == 200  # the process itself is fine
        return r.status_code, r.headers["content-type"]


@pytest.mark.parametrize("table", TABLES)
def test_a_table_renamed_away_makes_the_server_unready(db_url: str, table: str) -> None:
    store = Store(db_url)
    assert _ready(store) == (200, "application/json")
    sql(db_url, f"ALTER TABLE {table} RENAME TO {table}_gone")
    status, kind = _ready(store)
    assert (status, kind.split(";")[0]) == (503, "application/problem+json")
    with pytest.raises(StoreError, match="table or column"):
        store.ping()
    sql(db_url, f"ALTER TABLE {table}_gone RENAME TO {table}")
    store.ping()  # back: ready again, nothing cached
    store.close()


def test_a_column_dropped_makes_the_server_unready(db_url: str) -> None:
    store = Store(db_url)
    store.ping()
    sql(db_url, "ALTER TABLE tokens DROP COLUMN label")
    assert _ready(store)[0] == 503
    with pytest.raises(StoreError, match="table or column"):
        store.ping()
    store.close()


def test_every_table_is_in_the_probe() -> None:
    """The probe is built from the tables' metadata: a table added later is in it."""
    from straits.store.db import _schema_probe

    text = str(_schema_probe())
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            assert f"{table.name}.{column.name}" in text, (table.name, column.name)


def test_a_locked_table_is_not_said_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table another session holds locked (a migration's ``ALTER TABLE``, a forgotten
    ``LOCK TABLE``) makes the probe wait, and the watchdog cuts it off: not ready, but the
    reason is no table missing, and no backup is to be restored (it said both)."""
    from sqlalchemy import create_engine, text

    from conftest import PG_URL, fresh_postgres
    from straits.store import watchdog

    if PG_URL is None:
        pytest.skip("no PostgreSQL (STRAITS_TEST_POSTGRES_URL)")
    url = fresh_postgres(PG_URL)
    store = Store(url)
    store.ping()
    monkeypatch.setattr(watchdog, "PING_S", 1.0)
    engine = create_engine(url)
    with engine.connect() as holder, holder.begin():
        holder.execute(text("LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(StoreError) as refused:
            store.ping()
    message = str(refused.value)
    assert "missing" not in message and "backup" not in message, message
    assert "lock" in message, message
    store.ping()  # the lock released: ready again
    engine.dispose()
    store.close()


@pytest.mark.parametrize(
    ("orig", "said"),
    [
        ("no such table: tokens", "is missing"),
        ("no such column: tokens.label", "is missing"),
        ("database is locked", "try again"),
        ("disk I/O error", "try again"),
    ],
)
def test_a_sqlite_probe_failure_is_said_as_it_is(orig: str, said: str) -> None:
    from sqlalchemy.exc import OperationalError

    from straits.store.db import _probe_failure

    assert said in _probe_failure(OperationalError("SELECT 1", {}, Exception(orig)))


def test_a_table_the_role_may_not_read_is_said_so() -> None:
    """A role whose SELECT on a table was revoked: not ready, said as a grant to restore,
    not as a missing table."""
    import uuid

    from sqlalchemy import create_engine

    from conftest import PG_URL, fresh_postgres

    if PG_URL is None:
        pytest.skip("no PostgreSQL (STRAITS_TEST_POSTGRES_URL)")
    url = fresh_postgres(PG_URL)
    Store(url).close()  # migrated by the test's own role
    role = f"t_h4_{uuid.uuid4().hex[:8]}"
    schema = url.rsplit("search_path%3D", 1)[1]
    sql(url, f'CREATE ROLE "{role}"')
    sql(url, f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
    sql(url, f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
    sql(url, f'REVOKE SELECT ON tokens FROM "{role}"')
    store = Store(f"{url}%20-crole%3D{role}")
    try:
        with pytest.raises(StoreError, match="may not read") as refused:
            store.ping()
        assert "missing" not in str(refused.value)
    finally:
        store.close()
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
        engine.dispose()


@pytest.mark.parametrize("table", TABLES)
def test_a_table_replaced_by_a_view_makes_the_server_unready(db_url: str, table: str) -> None:
    """A table renamed away and a view of the same columns put in its place (led65): every
    name the probe asks resolves, so it said ready, while the routes read whatever the view
    shows (on PostgreSQL a simple view also takes writes: a ``WHERE seq <> 3`` hides a row)."""
    store = Store(db_url)
    assert _ready(store) == (200, "application/json")
    sql(db_url, f"ALTER TABLE {table} RENAME TO {table}_real")
    sql(db_url, f"CREATE VIEW {table} AS SELECT * FROM {table}_real")
    status, kind = _ready(store)
    assert (status, kind.split(";")[0]) == (503, "application/problem+json")
    with pytest.raises(StoreError) as refused:
        store.ping()
    assert table in str(refused.value)
    sql(db_url, f"DROP VIEW {table}")
    sql(db_url, f"ALTER TABLE {table}_real RENAME TO {table}")
    store.ping()  # a table again: ready
    store.close()


def test_a_partitioned_table_is_still_ready() -> None:
    """A PostgreSQL table partitioned by its operator (relkind ``p``) is a table: ready."""
    from conftest import PG_URL, fresh_postgres

    if PG_URL is None:
        pytest.skip("no PostgreSQL (STRAITS_TEST_POSTGRES_URL)")
    url = fresh_postgres(PG_URL)
    store = Store(url)
    sql(url, "ALTER TABLE audit_events RENAME TO audit_events_old")
    sql(url, "CREATE TABLE audit_events (LIKE audit_events_old) PARTITION BY RANGE (id)")
    sql(url, "CREATE TABLE audit_events_all PARTITION OF audit_events DEFAULT")
    try:
        store.ping()
        assert _ready(store)[0] == 200
    finally:
        store.close()


@pytest.mark.parametrize("table", ["ledger", "tokens"])
def test_a_trigger_named_as_its_table_is_still_ready(tmp_path: Path, table: str) -> None:
    """An operator's SQLite trigger may share its table's name (triggers have a namespace of
    their own): led65's probe took any ``sqlite_master`` entry of that name that is not a
    ``table`` for a view in the table's place, a 503 "restore it from a backup" for a
    database that is whole (rev65)."""
    url = f"sqlite:///{tmp_path / 'straits.db'}"
    store = Store(url)
    sql(url, "CREATE TABLE audit_copy (n INTEGER)")
    sql(
        url,
        f"CREATE TRIGGER {table} AFTER INSERT ON {table} "
        "BEGIN INSERT INTO audit_copy VALUES (1); END",
    )
    try:
        store.ping()
        assert _ready(store) == (200, "application/json")
    finally:
        store.close()


@pytest.mark.parametrize("name", ["LEDGER", "Tokens"])
def test_a_view_named_in_another_case_makes_the_server_unready(db_url: str, name: str) -> None:
    """SQLite resolves names without regard to case, so a view ``LEDGER`` takes the place of
    ``ledger`` in every query; led65's probe compared ``sqlite_master.name`` with the table's
    name as text, found no ``ledger`` view and said ready (rev65). PostgreSQL folds the
    unquoted name: the same view ``ledger``."""
    table = name.lower()
    store = Store(db_url)
    sql(db_url, f"ALTER TABLE {table} RENAME TO {table}_real")
    sql(db_url, f"CREATE VIEW {name} AS SELECT * FROM {table}_real")
    try:
        status, kind = _ready(store)
        assert (status, kind.split(";")[0]) == (503, "application/problem+json")
        with pytest.raises(StoreError) as refused:
            store.ping()
        assert table in str(refused.value)
    finally:
        store.close()


def test_a_virtual_table_in_a_tables_place_makes_the_server_unready(tmp_path: Path) -> None:
    """A SQLite virtual table is listed as a ``table`` in ``sqlite_master``, but its rows are
    what its module makes of them: an FTS5 table whose external content is a view of the
    renamed table (``WHERE seq <> 3``) served entries 1, 2, 4 under the name ``ledger`` while
    led65's probe said ready (rev65). Straits makes no virtual table."""
    from straits.store import ledger

    url = f"sqlite:///{tmp_path / 'straits.db'}"
    store = Store(url)
    for i in range(4):
        ledger.record(store, tenant="a", actor="t", kind="check", body={"i": i})
    columns = ", ".join(c.name for c in Base.metadata.tables["ledger"].columns)
    sql(url, "ALTER TABLE ledger RENAME TO ledger_real")
    sql(url, "CREATE VIEW ledger_shown AS SELECT * FROM ledger_real WHERE seq <> 3")
    sql(
        url,
        f"CREATE VIRTUAL TABLE ledger USING fts5({columns}, "
        "content='ledger_shown', content_rowid='seq')",
    )
    try:
        assert [e.seq for e in ledger.entries(store)] == [1, 2, 4]  # what the routes read
        status, kind = _ready(store)
        assert (status, kind.split(";")[0]) == (503, "application/problem+json")
        with pytest.raises(StoreError) as refused:
            store.ping()
        assert "ledger" in str(refused.value)
    finally:
        store.close()
