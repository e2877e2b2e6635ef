"""The hostile pass pg51 (the service and the ledger on PostgreSQL under concurrency and
faults): what the pass found, on SQLite and PostgreSQL alike (``db_url``: PostgreSQL when
``STRAITS_TEST_POSTGRES_URL`` is set)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PG_URL, fresh_postgres
from straits.store import Store
from straits.store.checkpoints import latest_row
from straits.store.note import MAX_NAME, Signer
from test_ledger_cli import straits

REQUEST = Path(__file__).resolve().parents[1] / "examples" / "request.json"


def _key(tmp_path: Path, name: str) -> Path:
    """A signing key file under ``name``, written as another tool (Go's ``note.GenerateKey``,
    a hand) may write one: ``keygen`` refuses such names, a key file does not have to come
    from it."""
    key = tmp_path / "ledger.key"
    key.write_text(Signer(name, os.urandom(32)).skey + "\n", encoding="ascii")
    key.chmod(0o600)
    return key


@pytest.mark.parametrize(
    ("what", "name", "status"),
    [
        ("longest", "o" * MAX_NAME, 0),
        ("one over", "o" * (MAX_NAME + 1), 2),
        ("250", "example.com/" + "o" * 238, 2),
        ("control character", "example.com/\x01log", 2),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 and v.isprintable() else None,
)
def test_a_key_named_beyond_the_origin_column_is_refused_on_both_backends(
    tmp_path: Path, db_url: str, what: str, name: str, status: int
) -> None:
    """A key whose name (the checkpoint's origin, stored in a column of 200 characters) was
    longer signed on SQLite and was a ``StringDataRightTruncation`` traceback (exit 1) on
    PostgreSQL, after the key's signed record was written beside it. Both refuse it now,
    exit 2 naming ``--key``, nothing stored or written; 200 characters sign on both."""
    assert (
        straits("check", str(REQUEST), "--record", "--tenant", "a", "--db", db_url).returncode == 0
    )
    key = _key(tmp_path, name)
    r = straits("ledger", "checkpoint", "--key", str(key), "--db", db_url)
    assert r.returncode == status, (what, r.stderr)
    store = Store(db_url)
    try:
        with store.session() as s:
            row = latest_row(s)
            stored = None if row is None else row.origin
    finally:
        store.close()
    if status == 0:
        assert stored == name
        return
    assert "--key" in r.stderr and "Traceback" not in r.stderr
    assert stored is None
    assert not Path(f"{key}.signed").exists()


#: tables and columns an operator's restore (``pg_restore --clean``, a schema dropped and
#: loaded again) takes away under a running server, and a route that reads them
DROPPED = [
    ("plans table", "DROP TABLE plans", "/v1/plans"),
    ("plans column", "ALTER TABLE plans DROP COLUMN progress", "/v1/plans"),
    ("ledger table", "DROP TABLE ledger_checkpoints", "/v1/ledger/verify?quick=true"),
    ("tokens table", "DROP TABLE tokens", "/v1/chips"),
]


@pytest.mark.parametrize(
    ("statement", "route"), [d[1:] for d in DROPPED], ids=[d[0] for d in DROPPED]
)
def test_a_table_dropped_under_a_running_server_is_a_503(
    db_url: str, statement: str, route: str
) -> None:
    """SQLite reports a table or column gone under the server as an OperationalError (``no
    such table``): the 503 of a database that cannot be used. PostgreSQL's
    ``UndefinedTable``/``UndefinedColumn`` are ProgrammingErrors: every request reading
    them was a 500 with a traceback in the log. Both are the same 503 problem now."""
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token
    from test_ledger_log import sql

    store = Store(db_url)
    try:
        used = create_token(store, "hz-cloud", "admin")[0]
        fresh = create_token(store, "hz-cloud", "admin")[0]  # never looked up before the drop
        with TestClient(create_app(store), raise_server_exceptions=False) as client:
            assert client.get(route, headers={"Authorization": f"Bearer {used}"}).is_success
            sql(db_url, statement)
            r = client.get(route, headers={"Authorization": f"Bearer {fresh}"})
            assert r.status_code == 503, (r.status_code, r.text[:300])
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["retry-after"]
    finally:
        store.close()


@pytest.mark.skipif(PG_URL is None, reason="PostgreSQL only: SQLite has no roles")
def test_a_role_that_may_not_read_a_table_is_exit_1_and_a_503() -> None:
    """A role granted SELECT on every table but one (``ledger_checkpoints``): a write it may
    not make was already the store's error (exit 1, 503), but a read was an
    ``InsufficientPrivilege`` ProgrammingError: a traceback from ``ledger show`` and ``ledger
    verify``, a 500 from the API. Both are the database's refusal now (exit 1, 503)."""
    import uuid
    from urllib.parse import parse_qs, urlsplit

    from fastapi.testclient import TestClient
    from sqlalchemy.engine import make_url

    from straits.server import create_app
    from straits.store.tokens import create_token
    from test_ledger_log import sql

    assert PG_URL is not None
    url = fresh_postgres(PG_URL)
    schema = parse_qs(urlsplit(url).query)["application_name"][0]
    assert straits("check", str(REQUEST), "--record", "--tenant", "a", "--db", url).returncode == 0
    owner = Store(url)
    token = create_token(owner, "a", "admin")[0]
    owner.close()
    role = f"t_{uuid.uuid4().hex[:12]}"
    sql(url, f'CREATE ROLE "{role}" LOGIN')
    try:
        sql(url, f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        sql(url, f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        sql(url, f'REVOKE SELECT ON ledger_checkpoints FROM "{role}"')
        reader = make_url(url).set(username=role).render_as_string(hide_password=False)
        for argv in (("ledger", "show"), ("ledger", "verify")):
            p = subprocess.run(  # as `straits` runs: its main() names a lost database
                [sys.executable, "-m", "straits", *argv, "--db", reader],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert p.returncode == 1 and "Traceback" not in p.stderr, (argv, p.stderr)
            assert "permission denied" in p.stderr
        store = Store(reader)
        try:
            with TestClient(create_app(store), raise_server_exceptions=False) as client:
                r = client.get(
                    "/v1/ledger/verify?quick=true", headers={"Authorization": f"Bearer {token}"}
                )
                assert r.status_code == 503, (r.status_code, r.text[:300])
                assert r.headers["content-type"].startswith("application/problem+json")
        finally:
            store.close()
    finally:
        sql(url, f'DROP OWNED BY "{role}"')
        sql(url, f'DROP ROLE "{role}"')
