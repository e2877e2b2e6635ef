from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings

from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.rules import RuleSet, ruleset
from straits.store import Store
from straits.store.keys import Keys
from straits.store.note import Signer

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"
#: the us-ear pack a deployment ran before the H20 letter of 2025-04-09 (docs/rule-packs.md). The
#: shipped packs have the letter, and a purchase is checked on every day the rules change until
#: the chips arrive: planned with them on 2025-04-08, examples/h20-2025.yaml buys no H20 (they
#: would ship after 2025-04-09). Planned with these, as a deployment did that day, it buys 2,048.
H20_BEFORE = ROOT / "examples" / "rule-packs" / "h20-letter" / "before"

# The CLI's tables are a pipe's width (straits.cli.common.PIPE_WIDTH) when COLUMNS is unset, as
# in CI. A pytest-xdist worker starts with COLUMNS=80 (and a shell may export its own): tables and
# messages wrapped where the tests read them. Tests that mean a width set it themselves.
for _var in ("COLUMNS", "LINES"):
    os.environ.pop(_var, None)

settings.register_profile(
    "default",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The CLI's config file and default database live in the XDG directories: point them at a
    temporary folder so no test reads or writes the user's own (subprocesses inherit it)."""
    base = tmp_path_factory.mktemp("xdg")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        os.environ[var] = str(base / var.lower())
    for var in ("STRAITS_CONFIG", "STRAITS_SERVER", "STRAITS_TOKEN", "STRAITS_DATABASE_URL"):
        os.environ.pop(var, None)


@pytest.fixture(autouse=True)
def _signed_record(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test's log gets its own record of what the signing key signed
    (``STRAITS_LEDGER_SIGNED``; subprocesses inherit it): tests share key files across their
    databases, which for the signer are different logs under one key, a fork it refuses to
    sign. Tests of the record beside the key unset it."""
    monkeypatch.setenv("STRAITS_LEDGER_SIGNED", str(tmp_path_factory.mktemp("signed") / "rec"))


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return ruleset()


@pytest.fixture(scope="session")
def rules_before_h20() -> RuleSet:
    """The rules of a deployment on 2025-04-08, before the H20 letter (:data:`H20_BEFORE`)."""
    return ruleset((H20_BEFORE,))


@pytest.fixture(scope="session")
def example_path() -> Path:
    return EXAMPLE


def in_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` in a thread of its own: pytest-playwright's fixtures keep an event
    loop running in the test thread once a browser test of the process ran, and
    ``asyncio.run`` refuses to start inside it (under pytest-xdist a worker may run a browser
    module before any other)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


#: the ledger's origin in tests (test_ledger_log.ORIGIN)
LEDGER_ORIGIN = "straits.test/ledger"


@pytest.fixture(scope="module")
def signer() -> Signer:
    """A fresh signing key for the ledger's checkpoints, one per test module."""
    return Signer.generate(LEDGER_ORIGIN)


@pytest.fixture
def keys(signer: Signer) -> Keys:
    """The trusted keys of a log signed by ``signer``."""
    return Keys(signer)


# --- databases -----------------------------------------------------------------------------------
# SQLite always; PostgreSQL too when STRAITS_TEST_POSTGRES_URL names a server (.ci/run starts
# one). STRAITS_REQUIRE_POSTGRES=1 makes a missing or unreachable server a failure, not a skip.
PG_URL = os.environ.get("STRAITS_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
if os.environ.get("STRAITS_REQUIRE_POSTGRES") == "1" and not PG_URL:
    raise RuntimeError("STRAITS_REQUIRE_POSTGRES=1 but STRAITS_TEST_POSTGRES_URL is not set")


def _worker_database(url: str, worker: str) -> str:
    """``url`` on a database of the pytest-xdist worker's own (``straits_test_gw0``), made if
    missing. ``make test`` runs two workers; :func:`reset_postgres` empties the test database
    and ends its test connections before every test, which on one shared database would pull
    the other worker's schema and connections from under it. Subprocesses get the worker's
    URL through the environment."""
    import time

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    base = make_url(url)
    name = base.database or "straits_test"
    if name.endswith(f"_{worker}"):  # already the worker's (conftest imported again)
        return url
    name = f"{name}_{worker}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        for attempt in range(20):  # two workers copying template1 at once may wait on each other
            try:
                with engine.connect() as conn:
                    found = conn.execute(
                        text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                    ).first()
                    if found is None:
                        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                break
            except OperationalError:
                if attempt == 19:
                    raise
                time.sleep(0.5)
    finally:
        engine.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if PG_URL and XDIST_WORKER:
    PG_URL = _worker_database(PG_URL, XDIST_WORKER)
    os.environ["STRAITS_TEST_POSTGRES_URL"] = PG_URL


#: the schemas a test's database lives in (``db_url``): ``t_`` and 12 hex digits
TEST_SCHEMA = "t_"


def reset_postgres(url: str) -> None:
    """The server's test database emptied: ``public`` and every test schema dropped, and the
    connections earlier tests left open closed. A test's ``Store`` is seldom closed: its pool
    held its connections until the garbage collector came by, and a clean-clone CI run met
    PostgreSQL's ``max_connections`` ("sorry, too many clients already") 1,500 tests in.
    Every test's connections carry its schema's name as ``application_name``
    (``fresh_postgres``), so only those are ended, never the ones a module-scoped fixture
    holds on ``public``."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND left(application_name, 2) = 't_'"
        )
        for (name,) in conn.exec_driver_sql(
            "SELECT nspname FROM pg_namespace WHERE left(nspname, 2) = 't_'"
        ).all():
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


def fresh_postgres(url: str) -> str:
    """``url`` on a schema of its own (``search_path`` in libpq's ``options``), the others
    dropped. Every test had the one ``public`` schema, emptied between tests: a server,
    worker or pool left over from an earlier test (a process not yet gone, a thread) went on
    claiming and reaping the next test's jobs (seen once: a running job taken from the
    test's worker, "no longer this worker's", by nothing in the test's process). A leftover
    now finds its schema gone and touches nothing of the next test's."""
    import uuid

    from sqlalchemy import create_engine

    reset_postgres(url)
    name = f"{TEST_SCHEMA}{uuid.uuid4().hex[:12]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    engine.dispose()
    sep = "&" if "?" in url else "?"
    # options last: a test adds its own libpq options to the end (test_hostile_backends)
    return f"{url}{sep}application_name={name}&options=-csearch_path%3D{name}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each backend under test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'straits.db'}"
    assert PG_URL is not None
    return fresh_postgres(PG_URL)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A store on :func:`db_url`, closed after the test."""
    s = Store(db_url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def sc(example_path: Path) -> Scenario:
    """The shipped offshore example, loaded once a module."""
    return load_scenario(example_path)


@pytest.fixture(scope="module")
def demo_text(example_path: Path) -> str:
    """The shipped offshore example's text, as a user pastes it into the console."""
    return example_path.read_text()


@pytest.fixture()
def console(tmp_path: Path) -> Iterator[tuple[object, Store]]:
    """The web console's app and store over a new database (``test_console.running_console``)."""
    from test_console import running_console

    yield from running_console(tmp_path)


@pytest.fixture(scope="module")
def planner_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    """A module's API over a new SQLite database, with a planner token of tenant ``hz-cloud``.

    Yields the FastAPI test client (server errors answered, not raised) and its bearer header.
    """
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store.tokens import create_token

    store = Store(f"sqlite:///{Path(tmp_path_factory.mktemp('api')) / 's.db'}")
    token = create_token(store, "hz-cloud", "planner")[0]
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {token}"}
    store.close()


# --- slow end-to-end tests -----------------------------------------------------------------------
# Tests marked ``@pytest.mark.slow`` (real servers, browsers, schedulers, soak runs) are skipped by
# a plain ``make test`` so the suite stays quick to run often; ``.ci/run`` sets STRAITS_SLOW=1 and
# runs them all. ``pytest --run-slow`` does the same by hand.
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (CI sets STRAITS_SLOW=1)",
    )


#: test modules that drive the one Slurm cluster ``.ci/run`` starts (its queue, its partitions,
#: its daemons stopped and started by the fault tests): they run on one worker, one at a time
SLURM_MODULES = frozenset(
    {
        "test_cli_export_target_flags",
        "test_concurrent_writes",
        "test_docs_exports",
        "test_export",
        "test_export_bundle",
        "test_export_commands",
        "test_export_layout_env",
        "test_export_names",
        "test_export_slurm",
        "test_export_slurm_begin",
        "test_export_slurm_max_jobs",
        "test_export_slurm_signals",
        "test_export_stage_env",
        "test_export_stage_runs",
        "test_hostile_export_plans",
        "test_hostile_export_scale",
        "test_hostile_exports",
        "test_hostile_risk51",
        "test_slurm_faults",
        "test_slurm_operator_faults",
        "test_slurm_preemption",
        "test_slurm_status",
    }
)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under pytest-xdist with ``--dist loadfile`` (``make test``: two workers) a module's tests
    stay together on one worker, in their order (several modules share a module-scoped
    server or build on an earlier test's files), and the Slurm modules (:data:`SLURM_MODULES`)
    are one unit of work, run one after another on one worker. (xdist's own ``loadgroup``
    marks do nothing under pytest 9.2: it renames a node id attribute pytest no longer reads.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class ModuleScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist: untyped
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "slurm" if Path(path).stem in SLURM_MODULES else path

    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("STRAITS_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow end-to-end test: run with --run-slow or STRAITS_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """examples/offshore-2025.yaml planned by the greedy baseline through the CLI (`-o json`):
    a plan document's path, for tests of what commands do with one (a module may define its
    own)."""
    from test_cli_conventions import run

    path = tmp_path_factory.mktemp("plan") / "plan.json"
    example = Path(__file__).resolve().parents[1] / "examples" / "offshore-2025.yaml"
    r = run("plan", str(example), "--solver", "greedy", "-o", "json")
    assert r.returncode == 0, r.stderr
    path.write_text(r.stdout)
    return str(path)
