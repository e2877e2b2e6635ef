"""The store under a killed migration, old databases opened at once, and a full disk (mig31).

An old SQLite database (each revision 0001 to 0008) holding recorded checks, a recorded plan, a
signed checkpoint, a queued plan job and a token is built with today's code and taken down to
its revision by the migrations' own downgrades (the entries are recorded with an empty salt, as
0001 knew no salts, so the 0002 backfill gives them back their hashes). Then:

* the upgrade chain without kills: the revision is the head, ``ledger verify`` passes, and every
  row the old schema held reads back the same (``ledger export`` identical to the head's);
* the upgrade killed (SIGKILL) before each statement it runs: the database is left at its old
  revision with its old schema, or at the head, never in between, and the next open finishes it;
* processes opening one old database at once (``ledger verify`` and ``check --record`` twice
  each): all exit 0, no traceback;
* a file system that takes no more (``RLIMIT_FSIZE`` in a child): the recording commands and
  ``ledger export -o`` exit 1, nothing half-written, and the same command works afterwards (in
  tests/test_hostile_migrations_mig31_full_disk.py, with this module's ``old`` fixture).

docs/robustness.md, "mig31".
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event

from straits.store import Store, checkpoints, ledger, queue
from straits.store.note import Signer
from straits.store.records import record_check, record_plan
from straits.store.tokens import create_token

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008")
SIGNER = Signer.generate("straits.test/mig31")

#: the corpus of kills: revision -> which statements of its upgrade the kill comes before
#: ("all" is every statement, a number n every n-th, and the last); the quick run takes the
#: first, a middle one and the last of 0001's and 0008's upgrades. By hand every statement of
#: all eight revisions' upgrades held (1,121 kills)
KILLS: dict[str, str | int] = {
    "0001": 2,
    "0002": 5,
    "0003": 5,
    "0004": 5,
    "0005": 5,
    "0006": 5,
    "0007": 5,
    "0008": 2,
}


class _NoSalt:
    """``secrets`` for ``straits.store.ledger`` while the fixture records: 0001 had no salts."""

    @staticmethod
    def token_hex(_n: int | None = None) -> str:
        return ""


def _alembic_to(path: Path | str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("straits.store").joinpath("migrations"))
    )
    engine = create_engine(path if isinstance(path, str) else f"sqlite:///{path}")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    engine.dispose()


def _fill(url: str) -> None:
    from straits.api import check_json, parse_check_document
    from straits.loading import load_scenario
    from straits.plan import make_plan
    from straits.rules import ruleset

    store = Store(url)
    rules = ruleset()
    sc = load_scenario(EXAMPLES / "offshore-2025.yaml")
    plan = make_plan(sc, rules=rules, solver="greedy")
    record_plan(store, sc, plan, rules, {"solver": "greedy"}, tenant="hz-cloud", actor="bob")
    request = json.loads((EXAMPLES / "request.json").read_text())
    for i in range(3):
        reqs, was_list = parse_check_document(request, "test")
        answer = check_json(rules, reqs, was_list)
        tenant = "alpha" if i % 2 else "beta"
        record_check(store, rules, reqs, answer, tenant=tenant, actor="t")
    checkpoints.issue(store, SIGNER)
    options = {"solver": "greedy", "objective": None, "regime": None, "time_limit": 5.0, "seed": 0}
    queue.enqueue(
        store, sc, options, tenant="hz-cloud", actor="x", record=True, rules_digest=rules.digest
    )
    create_token(store, "hz-cloud", "planner")
    store.close()


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The head database and a copy of it at each older revision."""
    d = tmp_path_factory.mktemp("old")
    head = d / "head.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ledger, "secrets", _NoSalt)
        _fill(f"sqlite:///{head}")
    found = {"head": head}
    for revision in REVISIONS:
        path = d / f"{revision}.db"
        shutil.copy(head, path)
        _alembic_to(path, revision)
        found[revision] = path
    return found


def _schema(path: Path) -> tuple[list[Any], list[Any]]:
    """The revision and every table's and index's definition (its lines, sorted), read with
    sqlite3 (no Store)."""
    con = sqlite3.connect(path)
    try:
        version = con.execute("SELECT version_num FROM alembic_version").fetchall()
        objects = con.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        con.close()
    # a table copied by a batch migration lists its constraints in another order
    return version, [
        (kind, name, sorted(line.strip().rstrip(",") for line in (sql or "").splitlines()))
        for kind, name, sql in objects
    ]


def _rows(path: Path, columns: dict[str, list[str]] | None = None) -> dict[str, list[Any]]:
    """Every table's rows (the columns given per table, else all), in a stable order."""
    con = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'alembic_version'"
            )
        ]
        out: dict[str, list[Any]] = {}
        for table in tables:
            cols = (columns or {}).get(table) or [
                r[1] for r in con.execute(f"PRAGMA table_info({table})")
            ]
            listed = ", ".join(cols)
            out[table] = sorted(con.execute(f"SELECT {listed} FROM {table}").fetchall(), key=repr)
    finally:
        con.close()
    return out


def _columns(path: Path) -> dict[str, list[str]]:
    con = sqlite3.connect(path)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        con.close()


def _served(url: str) -> tuple[list[dict[str, Any]], bool]:
    store = Store(url)
    try:
        return [e.to_json() for e in ledger.entries(store)], ledger.verify(store, None).ok
    finally:
        store.close()


def _copy(src: Path, dest: Path) -> Path:
    for stale in dest.parent.glob(dest.name + "*"):
        stale.unlink()
    shutil.copy(src, dest)
    return dest


# --- the upgrade chain, without kills ----------------------------------------------------------
@pytest.mark.parametrize("revision", REVISIONS)
def test_an_old_database_upgrades_with_its_rows_as_they_were(
    old: dict[str, Path], tmp_path: Path, revision: str
) -> None:
    db = _copy(old[revision], tmp_path / "s.db")
    before_columns = _columns(db)
    before = _rows(db)
    entries, ok = _served(f"sqlite:///{db}")
    assert ok
    assert _schema(db)[0] == _schema(old["head"])[0]
    assert _schema(db)[1] == _schema(old["head"])[1]  # the schema a new database gets
    assert entries == _served(f"sqlite:///{old['head']}")[0]
    after = _rows(db, before_columns)
    for table, rows in before.items():
        assert after[table] == rows, table


# --- the upgrade killed part way ---------------------------------------------------------------
_COUNT: dict[str, int | None] = {"n": 0, "at": None}


@event.listens_for(Engine, "before_cursor_execute")
def _kill_at(*_args: Any) -> None:
    _COUNT["n"] = int(_COUNT["n"] or 0) + 1
    at = _COUNT["at"]
    if at is not None and int(_COUNT["n"] or 0) >= at:
        os.kill(os.getpid(), signal.SIGKILL)


def _statements(db: Path) -> int:
    """How many statements opening ``db`` runs (the upgrade, then the WAL's checkpoint)."""
    _COUNT["n"], _COUNT["at"] = 0, None
    Store(f"sqlite:///{db}").close()
    return int(_COUNT["n"] or 0)


def _open_killed_at(db: Path, n: int) -> bool:
    """Open ``db`` in a forked child killed (SIGKILL) before the n-th statement; whether the
    kill came (the child opened it whole otherwise)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        _COUNT["n"], _COUNT["at"] = 0, n
        try:
            Store(f"sqlite:///{db}").close()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.fixture
def counting() -> Iterator[None]:
    yield
    _COUNT["n"], _COUNT["at"] = 0, None


def _kill_points(revision: str, total: int, quick: bool) -> list[int]:
    if quick:
        return sorted({1, total // 2, total})
    step = KILLS[revision]
    return [*range(1, total + 1, 1 if step == "all" else int(step)), total]


def _sweep(old: dict[str, Path], tmp_path: Path, revision: str, quick: bool) -> None:
    src = old[revision]
    before = _schema(src)
    head = _schema(old["head"])
    expected = _served(f"sqlite:///{old['head']}")[0]
    db = tmp_path / "k.db"
    total = _statements(_copy(src, db))
    for n in _kill_points(revision, total, quick):
        _copy(src, db)
        killed = _open_killed_at(db, n)
        left = _schema(db)
        # never a half-migrated schema: the old one whole, or the head's
        assert left in (before, head), (revision, n)
        assert killed or left == head
        entries, ok = _served(f"sqlite:///{db}")  # the next open finishes the upgrade
        assert (ok, entries) == (True, expected), (revision, n)
        assert _schema(db) == head


@pytest.mark.usefixtures("counting")
@pytest.mark.parametrize("revision", ["0001", "0008"])
def test_an_upgrade_killed_leaves_the_old_schema_or_the_new(
    old: dict[str, Path], tmp_path: Path, revision: str
) -> None:
    _sweep(old, tmp_path, revision, quick=True)


@pytest.mark.slow
@pytest.mark.usefixtures("counting")
@pytest.mark.parametrize("revision", sorted(KILLS))
def test_an_upgrade_killed_before_any_statement_leaves_the_old_schema_or_the_new(
    old: dict[str, Path], tmp_path: Path, revision: str
) -> None:
    _sweep(old, tmp_path, revision, quick=False)


# --- processes opening one old database at once ------------------------------------------------
def _cli(*args: str, fsize: int | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("STRAITS_DATABASE_URL", None)

    def limit() -> None:  # pragma: no cover (in the child)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.Popen(
        [sys.executable, "-m", "straits", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
    )


def _ran(p: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = p.communicate(timeout=300)
    return p.returncode, err


@pytest.mark.slow
@pytest.mark.parametrize("revision", ["0001", "0005", "0008"])
def test_commands_opening_one_old_database_at_once_all_run(
    old: dict[str, Path], tmp_path: Path, revision: str
) -> None:
    db = _copy(old[revision], tmp_path / "c.db")
    url = f"sqlite:///{db}"
    request = str(EXAMPLES / "request.json")
    runs = [
        _cli("ledger", "verify", "--db", url),
        _cli("check", request, "--record", "--db", url, "--tenant", "gamma"),
        _cli("ledger", "verify", "--db", url),
        _cli("check", request, "--record", "--db", url, "--tenant", "gamma", "--request-id", "r1"),
    ]
    results = [_ran(p) for p in runs]
    assert [rc for rc, _ in results] == [0, 0, 0, 0], [err[-400:] for _, err in results]
    assert not any("Traceback" in err for _, err in results)
    entries, ok = _served(url)
    assert ok and len(entries) == 6


# --- PostgreSQL: the upgrade killed ------------------------------------------------------------
#: the corpus on PostgreSQL: revision -> the statements of its upgrade the kill comes before
#: (0001's upgrade runs 49 statements there, 0008's 13; by hand every one of both and every
#: fifth of the others', about 100 kills, held)
PG_KILLS = {"0001": (1, 5, 12, 25, 40, 49), "0008": (1, 6, 12, 13)}


def _pg_schema(url: str) -> tuple[list[Any], list[Any], list[Any]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        columns = conn.exec_driver_sql(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, "
            "column_default FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY 1, 2"
        ).all()
        indexes = conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "ORDER BY 1"
        ).all()
    engine.dispose()
    return list(version), list(columns), list(indexes)


def _pg_kill(revision: str, n: int) -> None:
    from conftest import PG_URL, fresh_postgres

    assert PG_URL is not None
    url = fresh_postgres(PG_URL)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ledger, "secrets", _NoSalt)
        _fill(url)
    expected = _served(url)[0]
    _alembic_to(url, revision)
    before = _pg_schema(url)
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        _COUNT["n"], _COUNT["at"] = 0, n
        try:
            Store(url).close()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    _COUNT["at"] = None
    left = _pg_schema(url)
    assert _served(url) == (expected, True)  # the next open finishes the upgrade
    head = _pg_schema(url)
    assert left in (before, head)  # the old schema whole, or the head's
    assert os.WIFSIGNALED(status) or left == head


@pytest.mark.slow
@pytest.mark.usefixtures("counting")
@pytest.mark.parametrize(
    ("revision", "n"), [(r, n) for r, points in PG_KILLS.items() for n in points]
)
def test_an_upgrade_killed_on_postgresql_leaves_the_old_schema_or_the_new(
    revision: str, n: int
) -> None:
    from conftest import PG_URL

    if PG_URL is None:
        pytest.skip("no PostgreSQL (STRAITS_TEST_POSTGRES_URL)")
    _pg_kill(revision, n)
