"""Hostile operators on every backend: the faults of test_hostile_operators.py and what
PostgreSQL adds (times Python cannot hold, a session that holds the ledger's lock and never
ends, a server that accepts and never answers), each case run on SQLite and, when
STRAITS_TEST_POSTGRES_URL names a server, on PostgreSQL. The same tampering gives the same exit
code on both: 1 and a clear error for a database that cannot be used or a ledger that does not
verify, 409 on the API, never a traceback, a 500 or a hang. (docs/robustness.md, "Faults and
operators".)"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from conftest import PG_URL, reset_postgres
from straits.errors import StoreError
from straits.loading import load_scenario
from straits.store import Store, dialects, watchdog
from straits.store import db as db_mod
from straits.store import ledger as ledger_mod
from straits.store.tables import AlteredRowError, PlanRow
from test_hostile_operators import REQUEST, cli
from test_ledger_log import sql


def _scalar(url: str, statement: str) -> object:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text(statement)).scalar()
    engine.dispose()
    return value


def _count(url: str) -> int:
    return int(str(_scalar(url, "SELECT count(*) FROM ledger")))


@pytest.fixture
def recorded(db_url: str) -> str:
    """Three recorded checks on a fresh database of each backend."""
    for _ in range(3):
        assert cli("check", "--record", "--db", db_url, stdin=REQUEST)[0] == 0
    return db_url


@pytest.fixture
def with_plan(recorded: str, example_path: Path) -> tuple[str, str]:
    """Three checks and a recorded plan: (url, plan id)."""
    code, _ = cli(
        "plan", str(example_path), "--record", "--solver", "greedy", "--db", recorded, "-q"
    )
    assert code == 0
    return recorded, str(_scalar(recorded, "SELECT id FROM plans"))


# --- the schema ----------------------------------------------------------------------------------
UNOPENABLE = [
    ("schema of a newer Straits", "UPDATE alembic_version SET version_num='0099'"),
    ("schema revision emptied", "UPDATE alembic_version SET version_num=''"),
    ("two schema revisions", "INSERT INTO alembic_version VALUES ('0001')"),
    ("a table dropped", "DROP TABLE ledger_nodes"),
    ("a column dropped", "ALTER TABLE plans DROP COLUMN progress"),
    ("a ledger column dropped", "ALTER TABLE ledger DROP COLUMN salt"),
]


@pytest.mark.parametrize("statement", [c[1] for c in UNOPENABLE], ids=[c[0] for c in UNOPENABLE])
@pytest.mark.parametrize("command", ["verify", "record", "show"])
def test_a_schema_this_straits_cannot_use_is_refused_at_open(
    recorded: str, statement: str, command: str
) -> None:
    """A dropped column and a second alembic_version row were tracebacks on both backends."""
    sql(recorded, statement)
    argv = {
        "verify": ("ledger", "verify", "--db", recorded),
        "record": ("check", "--record", "--db", recorded),
        "show": ("ledger", "show", "--db", recorded),
    }[command]
    code, err = cli(*argv, stdin=REQUEST)
    assert code == 1 and "cannot open the database" in err


def test_an_append_an_altered_column_type_refuses_is_a_ledger_error(recorded: str) -> None:
    """ledger.body renamed and replaced by an INTEGER column: SQLite fails the renamed
    column's NOT NULL, PostgreSQL the type; either way the same LedgerError, nothing
    appended (PostgreSQL's was a ProgrammingError traceback), and a NULL body shown is an
    altered entry (a TypeError traceback on both)."""
    sql(recorded, "ALTER TABLE ledger RENAME COLUMN body TO body_old")
    sql(recorded, "ALTER TABLE ledger ADD COLUMN body INTEGER")
    code, err = cli("check", "--record", "--db", recorded, stdin=REQUEST)
    assert code == 1 and "tables disagree" in err
    assert _count(recorded) == 3
    assert cli("ledger", "show", "--db", recorded)[0] == 1
    assert cli("ledger", "verify", "--db", recorded)[0] == 1


NOT_UTF8 = "t\udcff"  # what Python makes of the argv bytes b"t\xff"
WHO = [
    ("check", "--record", "--tenant", NOT_UTF8),
    ("check", "--record", "--actor", NOT_UTF8),
    ("tokens", "create", "--tenant", NOT_UTF8, "--role", "admin"),
    ("tokens", "create", "--tenant", "t", "--role", "admin", "--label", NOT_UTF8),
]


@pytest.mark.parametrize("argv", WHO, ids=["check tenant", "check actor", "tenant", "label"])
def test_a_name_that_is_not_utf8_is_exit_2_and_nothing_is_written(
    recorded: str, argv: tuple[str, ...]
) -> None:
    """Bytes that are not UTF-8 in argv reached the database as lone surrogates, which
    neither backend can encode: a UnicodeEncodeError traceback."""
    code, err = cli(*argv, "--db", recorded, stdin=REQUEST)
    assert code == 2 and argv[argv.index(NOT_UTF8) - 1] in err  # the option named
    assert _count(recorded) == 3
    assert _scalar(recorded, "SELECT count(*) FROM tokens") == 0


# --- stored times Python cannot hold -------------------------------------------------------------
# PostgreSQL's timestamptz holds infinity and years to 294276; psycopg cannot give them to Python
# and failed the whole fetch with a DataError (a traceback; a 500). SQLite stores the same text.
TIMES = [
    "UPDATE plans SET created_at='infinity'",
    "UPDATE plans SET finished_at='-infinity'",
    "UPDATE plans SET created_at='20000-01-01 00:00:00+00'",
    "UPDATE decisions SET created_at='infinity'",
]


@pytest.mark.parametrize("statement", TIMES)
def test_a_stored_time_python_cannot_hold_is_an_altered_row(
    with_plan: tuple[str, str], statement: str
) -> None:
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token

    url, plan_id = with_plan
    sql(url, statement)
    assert cli("ledger", "verify", "--db", url)[0] == 1
    if statement.startswith("UPDATE plans"):
        code, err = cli("export", plan_id, "--to", "slurm", "-o", "-", "--db", url)
        assert code == 1 and "not a time" in err
    store = Store(url)
    token = create_token(store, "hz-cloud", "admin")[0]
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        h = {"Authorization": f"Bearer {token}"}
        for path in (f"/v1/plans/{plan_id}", "/v1/plans", "/v1/ledger", "/v1/ledger/verify"):
            r = client.get(path, headers=h)
            assert r.status_code < 500, (path, r.status_code)
            if r.status_code >= 400:
                assert r.headers["content-type"].startswith("application/problem+json")
    store.close()


def _two_jobs(store: Store, example_path: Path) -> tuple[str, str]:
    """Two plans queued one after the other (ids in queue order)."""
    from straits.store import queue

    sc = load_scenario(example_path)
    first, second = (
        queue.enqueue(
            store,
            sc.model_copy(update={"name": name}),
            {"solver": "greedy"},
            tenant="t",
            actor="a",
            record=False,
            rules_digest=None,
        )
        for name in ("first", "second")
    )
    return first, second


def test_a_job_queued_at_minus_infinity_does_not_block_the_queue(
    db_url: str, example_path: Path
) -> None:
    """On PostgreSQL '-infinity' sorts first: every claim failed on it, so no worker ever
    took the jobs behind it."""
    from straits.store import queue

    store = Store(db_url)
    first, second = _two_jobs(store, example_path)
    sql(db_url, "UPDATE plans SET created_at='-infinity' WHERE id=:i", i=second)
    policy = queue.QueuePolicy(lease_s=30, max_attempts=3, queue_timeout_s=3600)
    claim = queue.claim(store, "w:1:x", None, policy)
    assert claim is not None and claim.plan_id == first
    assert _scalar(db_url, f"SELECT status FROM plans WHERE id='{second}'") == "failed"
    with store.session() as s, pytest.raises(AlteredRowError):
        s.get(PlanRow, second)
    store.close()


@pytest.mark.parametrize("attempts", [2**31 - 1, -1])
def test_a_job_whose_attempt_count_was_altered_does_not_block_the_queue(
    db_url: str, example_path: Path, attempts: int
) -> None:
    """At PostgreSQL's INTEGER maximum the claim's increment failed ('integer out of range')
    on every try, so no worker took the jobs behind it; SQLite counted on."""
    from straits.store import queue

    store = Store(db_url)
    first, second = _two_jobs(store, example_path)
    sql(db_url, "UPDATE plans SET attempts=:n WHERE id=:i", n=attempts, i=first)
    policy = queue.QueuePolicy(lease_s=30, max_attempts=3, queue_timeout_s=3600)
    claim = queue.claim(store, "w:1:x", None, policy)
    assert claim is not None and claim.plan_id == second
    assert _scalar(db_url, f"SELECT status FROM plans WHERE id='{first}'") == "failed"
    store.close()


# --- bounded waits (PostgreSQL) ------------------------------------------------------------------
@pytest.fixture
def pg_url() -> str:
    if PG_URL is None:
        pytest.skip("needs STRAITS_TEST_POSTGRES_URL")
    reset_postgres(PG_URL)
    return PG_URL


def test_statements_wait_for_a_lock_at_most_the_lock_timeout(pg_url: str) -> None:
    """The default is SQLite's busy timeout; a value set by the URL is kept."""
    for url, expected in ((pg_url, "30s"), (f"{pg_url}?options=-c%20lock_timeout%3D7s", "7s")):
        store = Store(url)
        with store.session() as s:
            assert s.execute(text("SHOW lock_timeout")).scalar() == expected
        store.close()


def test_a_session_holding_the_ledger_lock_is_a_store_error_not_a_hang(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator's psql left holding the advisory lock made every recorder wait forever."""
    monkeypatch.setattr(dialects, "PG_LOCK_TIMEOUT_MS", 200)
    store = Store(pg_url)
    ledger_mod.record(store, tenant="t", actor="a", kind="check", body={})
    holder = create_engine(pg_url)
    with holder.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": db_mod.LEDGER_LOCK})
        with pytest.raises(StoreError, match="lock timeout"):
            ledger_mod.record(store, tenant="t", actor="a", kind="check", body={})
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": db_mod.LEDGER_LOCK})
    holder.dispose()
    ledger_mod.record(store, tenant="t", actor="a", kind="check", body={})
    assert ledger_mod.verify(store).entries == 2
    store.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    for c in held:
        c.close()
    sock.close()


def test_a_server_that_never_answers_is_a_store_error(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psycopg waited 130 s by default; Straits sets libpq's connect_timeout (2 s here, the
    least libpq takes) unless the URL does. Needs no PostgreSQL server, only the driver."""
    pytest.importorskip("psycopg")
    monkeypatch.setattr(db_mod, "PG_CONNECT_TIMEOUT_S", 2)
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(f"postgresql+psycopg://straits@127.0.0.1:{silent_server}/x")


@contextmanager
def _frozen(pid: int) -> Iterator[None]:
    """The PostgreSQL backend ``pid`` stopped (SIGSTOP): it keeps its connection open and never
    answers, as a frozen server or a paused VM does; its kernel still acknowledges packets."""
    try:
        os.kill(pid, signal.SIGSTOP)
    except PermissionError:
        pytest.skip("cannot signal the PostgreSQL server's processes")
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _backend_pid(session: Any) -> int:
    return int(session.execute(text("SELECT pg_backend_pid()")).scalar())


def test_a_statement_a_frozen_server_never_answers_is_cut_off(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq has no read timeout: a statement sent to a frozen backend waited forever (a CLI
    command hung, an API request held its worker thread). The watchdog cuts the connection
    after its limit; the store gets a disconnection error, and the next session a new
    connection."""
    monkeypatch.setattr(watchdog, "STATEMENT_S", 1.0)
    store = Store(pg_url)
    cuts = watchdog.WATCHDOG.cuts
    with store.session() as s:
        pid = _backend_pid(s)
        with _frozen(pid):
            t0 = time.monotonic()
            with pytest.raises(OperationalError):
                s.execute(text("SELECT 1"))
            assert time.monotonic() - t0 < 10
    assert watchdog.WATCHDOG.cuts == cuts + 1
    ledger_mod.record(store, tenant="t", actor="a", kind="check", body={})
    assert ledger_mod.verify(store).entries == 1
    store.close()


def test_a_frozen_idle_connection_costs_readiness_one_bounded_ping(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool pings an idle connection before handing it out; that ping to a frozen backend
    waited forever (/readyz past 80 s). Now it is cut after PING_S and the pool connects
    again: the store answers, since the server itself still does."""
    monkeypatch.setattr(watchdog, "PING_S", 1.0)
    store = Store(pg_url)
    with store.session() as s:
        pid = _backend_pid(s)  # the pool's one idle connection after this
    with _frozen(pid):
        t0 = time.monotonic()
        store.ping()
        assert time.monotonic() - t0 < 10
        with store.session() as s:
            assert _backend_pid(s) != pid
    store.close()


@pytest.mark.parametrize("end", ["commit", "close"])
def test_a_commit_or_rollback_a_frozen_server_never_answers_is_cut_off(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, end: str
) -> None:
    """The server froze after a transaction's last statement was answered: the COMMIT (or the
    ROLLBACK the pool sends when a session gives its connection back) is no statement the
    cursor events see, and waited as long as the freeze lasted, past STATEMENT_S (a request
    caught between its last statement and its commit held its API thread). It is cut off
    after the same limit: the database error, as for a statement."""
    monkeypatch.setattr(watchdog, "STATEMENT_S", 1.0)
    store = Store(pg_url)
    s = store.session()
    pid = _backend_pid(s)  # answered, in an open transaction
    with _frozen(pid):
        t0 = time.monotonic()
        with pytest.raises(OperationalError):
            s.commit() if end == "commit" else s.close()  # close rolls back
        assert time.monotonic() - t0 < 10
    s.close()
    ledger_mod.record(store, tenant="t", actor="a", kind="check", body={})
    assert ledger_mod.verify(store).entries == 1
    store.close()


def test_an_untouched_database_still_opens_verifies_and_records(recorded: str) -> None:
    """The control case: the checks at open refuse nothing Straits itself wrote."""
    assert cli("ledger", "verify", "--db", recorded)[0] == 0
    assert cli("check", "--record", "--db", recorded, stdin=REQUEST)[0] == 0
    assert _count(recorded) == 4


def _read_only(url: str) -> str:
    """The same database opened read-only: SQLite's ``mode=ro``; PostgreSQL's
    ``default_transaction_read_only`` (what ``ALTER DATABASE/ROLE ... SET`` makes of it)."""
    if url.startswith("sqlite:///"):
        return f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    # added to the libpq options the URL has already (db_url's own schema, its last parameter)
    read_only = "-c%20default_transaction_read_only%3Don"
    if "options=" in url:
        return f"{url}%20{read_only}"
    return f"{url}{'&' if '?' in url else '?'}options={read_only}"


def test_a_read_only_database_refuses_records_with_exit_1(
    recorded: str, example_path: Path
) -> None:
    """PostgreSQL's refusal was an InternalError traceback; SQLite's a StoreError."""
    ro = _read_only(recorded)
    code, err = cli("check", "--record", "--db", ro, stdin=REQUEST)
    assert code == 1 and "database write failed" in err
    code, err = cli("plan", str(example_path), "--record", "--solver", "greedy", "--db", ro, "-q")
    assert code == 1 and "database write failed" in err
    assert cli("ledger", "verify", "--db", ro)[0] == 0
    assert _count(recorded) == 3


# --- the database gone after the store opened ----------------------------------------------------
def _gone(url: str, tmp: Path) -> str:
    """A URL of the same backend whose database cannot be reached."""
    if url.startswith("sqlite"):
        (tmp / "gone.db").mkdir()
        return f"sqlite:///{tmp / 'gone.db'}"
    return "postgresql+psycopg://straits@127.0.0.1:1/gone"


def test_a_read_whose_database_went_away_is_503_not_500(recorded: str, tmp_path: Path) -> None:
    """A PostgreSQL server stopped under a running `straits serve`: reads were 500s (writes
    were already 503)."""
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token

    store = Store(recorded)
    token = create_token(store, "default", "admin")[0]
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        h = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/plans", headers=h).status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        store.engine.dispose()
        store.engine = create_engine(_gone(recorded, tmp_path))
        store._sessions.configure(bind=store.engine)
        for path in ("/v1/plans", "/v1/ledger/verify", "/readyz"):
            r = client.get(path, headers=h)
            assert r.status_code == 503, (path, r.status_code)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["retry-after"]
        # the process lives: liveness stays 200 (no restart), readiness sends no traffic
        assert client.get("/healthz").status_code == 200
    store.close()


def test_the_cli_reports_a_database_lost_mid_command_as_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ledger export` with its PostgreSQL connection terminated mid-read was a traceback."""
    from sqlalchemy.exc import OperationalError

    import straits.cli as cli_mod

    def lost(**_: object) -> None:
        raise OperationalError("SELECT", {}, Exception("terminating connection"))

    monkeypatch.setattr(cli_mod, "app", lost)
    with pytest.raises(SystemExit) as caught:
        cli_mod.main()
    assert caught.value.code == 1
    assert "database became unavailable" in capsys.readouterr().err

    def bug(**_: object) -> None:
        raise KeyError("not the database")

    monkeypatch.setattr(cli_mod, "app", bug)
    with pytest.raises(KeyError):  # anything else is still a bug's traceback
        cli_mod.main()
