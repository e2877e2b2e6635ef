"""``/readyz`` and the schema (stop 62): a table or column dropped (or renamed) while the server
runs made every request that reads it a 503, while ``/readyz`` went on answering 200 ready (it
asked ``SELECT 1`` only; pg51 left this out). The readiness query now also names every column
of every table in one statement that reads no row, so the probe says what the routes will."""

from __future__ import annotations

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
