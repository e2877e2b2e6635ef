"""A SQLite file damaged under Straits (a disk fault, a torn copy, a file edited or replaced
while the server runs): a page of the log's table overwritten. Every command that reads it is
one line, exit 1, naming the damage; the API answers 503 problem+json, never a 500. Before,
SQLite's DatabaseError ('database disk image is malformed') was a traceback on the CLI and an
incident on the API wherever a read reached the page."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from straits.store import Store, ledger
from straits.store.tokens import create_token
from test_ledger_cli import straits

REQUEST = (
    '{"date": "2025-06-01", "regime": "enacted", "action": "finetune", '
    '"tenant": {"hq": "CN", "authorizations": []}, '
    '"site": {"country": "SG", "operator_hq": "SG"}, "chip": "H100-SXM"}'
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database of 300 entries whose ledger table's root page was overwritten."""
    db = tmp_path_factory.mktemp("damaged") / "d.db"
    url = f"sqlite:///{db}"
    store = Store(url)
    for i in range(300):
        ledger.record(store, tenant="t", actor="a", kind="check", body={"i": i, "pad": "x" * 500})
    store.close()
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = 'ledger'").fetchone()[0]
    con.close()
    with db.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\x0d\xff\xff\xff" * 16)
    return db


def damaged(tmp_path: Path, pristine: Path) -> str:
    shutil.copy(pristine, tmp_path / "d.db")
    return f"sqlite:///{tmp_path / 'd.db'}"


@pytest.mark.parametrize(
    "args",
    [
        ("ledger", "verify"),
        ("ledger", "show"),
        ("ledger", "show", "5"),
        ("ledger", "receipt", "5"),
        ("check", "--record", "-"),
    ],
)
def test_a_damaged_file_is_one_line_exit_1(
    tmp_path: Path, pristine: Path, args: tuple[str, ...]
) -> None:
    url = damaged(tmp_path, pristine)
    stdin = REQUEST if args[-1] == "-" else None
    p = straits(*args, "--db", url, stdin=stdin)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: "), p.stderr
    assert "damaged" in lines[-1] and "malformed" in lines[-1], lines[-1]


def test_a_damaged_file_is_a_503_on_the_api(tmp_path: Path, pristine: Path) -> None:
    from fastapi.testclient import TestClient

    from straits.server import create_app

    url = damaged(tmp_path, pristine)
    store = Store(url)  # opens: the schema's pages are whole
    token, _ = create_token(store, "t", "admin")
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        for method, path in (
            ("GET", "/v1/ledger/entries"),
            ("GET", "/v1/ledger/entries/5"),
            ("GET", "/v1/ledger/verify"),
            ("POST", "/v1/check?record=true"),
        ):
            r = client.request(method, path, headers=h, content=REQUEST)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "Traceback" not in r.text


@pytest.fixture
def damaged_postgres() -> Iterator[str]:
    """A PostgreSQL database whose ledger table reads as damaged storage does: the server's
    own error, data_corrupted (XX001, 'invalid page in block ...'), raised as the table is
    read. (A row-level security policy whose check raises it, for a role that is not a
    superuser, which policies bind: a page really overwritten under a running server stays
    in its buffers until a restart.)"""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from conftest import PG_URL, reset_postgres

    if PG_URL is None:
        pytest.skip("no PostgreSQL server (STRAITS_TEST_POSTGRES_URL)")
    reset_postgres(PG_URL)
    store = Store(PG_URL)
    for i in range(5):
        ledger.record(store, tenant="t", actor="a", kind="check", body={"i": i})
    store.close()
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP ROLE IF EXISTS straits_plain")
        conn.exec_driver_sql("CREATE ROLE straits_plain LOGIN NOSUPERUSER NOBYPASSRLS")
        conn.exec_driver_sql("GRANT ALL ON ALL TABLES IN SCHEMA public TO straits_plain")
        conn.exec_driver_sql("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO straits_plain")
        conn.exec_driver_sql("GRANT USAGE, CREATE ON SCHEMA public TO straits_plain")
        conn.exec_driver_sql(
            "CREATE FUNCTION straits_damaged() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'invalid page in block 0 of relation base/16384/16401' "
            "USING ERRCODE = 'data_corrupted'; END $$"
        )
        conn.exec_driver_sql("ALTER TABLE ledger ENABLE ROW LEVEL SECURITY")
        conn.exec_driver_sql("CREATE POLICY damaged ON ledger USING (straits_damaged())")
    try:
        yield make_url(PG_URL).set(username="straits_plain").render_as_string(hide_password=False)
    finally:
        reset_postgres(PG_URL)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP ROLE IF EXISTS straits_plain")
        engine.dispose()


@pytest.mark.parametrize(
    "args", [("ledger", "verify"), ("ledger", "show"), ("ledger", "show", "3")]
)
def test_damaged_postgresql_data_is_one_line_exit_1(
    damaged_postgres: str, args: tuple[str, ...]
) -> None:
    """PostgreSQL's data_corrupted / index_corrupted were an InternalError: a traceback."""
    p = straits(*args, "--db", damaged_postgres)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: ") and "XX001" in lines[-1], p.stderr


def test_damaged_postgresql_data_is_a_503_on_the_api(damaged_postgres: str) -> None:
    """... and a 500 (an incident) on the API."""
    from fastapi.testclient import TestClient

    from straits.server import create_app

    store = Store(damaged_postgres)
    token, _ = create_token(store, "t", "admin")
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        for path in ("/v1/ledger/entries", "/v1/ledger/entries/3", "/v1/ledger/verify"):
            r = client.get(path, headers=h)
            assert r.status_code == 503, (path, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    store.close()
