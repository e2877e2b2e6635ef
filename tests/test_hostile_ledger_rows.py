"""Rows beside the log and rows of the log deleted (atk69), table-driven, on a log built by the
real CLI (plans and checks recorded for two tenants, a checkpoint signed):

* a plan or decision row of tenant alpha copied under another id to its own entry, or pointing
  past the head, at another tenant's entry or at an entry of another kind: the tenant's check
  (``ledger verify --tenant``, ``GET /v1/ledger/verify``) passed what the full verification
  fails; now both fail with the row's code;
* a row of the ``ledger`` table deleted while the tree and a signed checkpoint still hold it:
  it was served as never recorded (404, a list with a hole, ``ledger show`` exit 0 without it,
  ``ledger show N`` exit 2); now it is a 409 and exit 1 naming the entry, and numbers past the
  log are still 404 / exit 2."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store
from straits.store.keys import Keys
from straits.store.note import Signer
from straits.store.tables import DecisionRow, PlanRow
from test_api import Api
from test_ledger_api import serve_with_key
from test_ledger_cli import straits
from test_rules_engine import DESIGN_REQUEST

SIGNER = Signer.generate("straits.test/hostile-ledger-rows")
# the log: 1 alpha plan (alpha #1), 2 beta check (beta #1), 3 alpha check (alpha #2),
# 4 beta plan (beta #2), 5 alpha check (alpha #3); a checkpoint signed at 5
LOG = [
    ("alpha", "plan"),
    ("beta", "check"),
    ("alpha", "check"),
    ("beta", "plan"),
    ("alpha", "check"),
]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, example_path: Path) -> Path:
    path = tmp_path_factory.mktemp("log") / "s.db"
    db = f"sqlite:///{path}"
    for tenant, kind in LOG:
        if kind == "plan":
            args = ("plan", str(example_path), "--solver", "greedy", "-o", "id")
            r = straits(*args, "--record", "--tenant", tenant, "--db", db)
        else:
            r = straits(
                "check", "--record", "--tenant", tenant, "--db", db,
                stdin=json.dumps(DESIGN_REQUEST),
            )  # fmt: skip
        assert r.returncode == 0, r.stderr
    from straits.store import checkpoints

    store = Store(db)
    checkpoints.issue(store, SIGNER)
    store.close()
    return path


@pytest.fixture
def db(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    with closing(sqlite3.connect(base)) as src, closing(sqlite3.connect(tmp_path / "s.db")) as to:
        src.backup(to)  # with what the WAL holds (the CLI's stores may still be open)
    monkeypatch.delenv("STRAITS_LEDGER_KEY", raising=False)
    monkeypatch.delenv("STRAITS_DATABASE_URL", raising=False)
    return f"sqlite:///{tmp_path / 's.db'}"


def alter(url: str, sql: str) -> None:
    engine = create_engine(url)
    with engine.begin() as c:
        for statement in sql.split(";\n"):
            c.exec_driver_sql(statement)
    engine.dispose()


@pytest.fixture
def api(db: str) -> Iterator[Api]:
    yield from serve_with_key(db, SIGNER)


COPY_ID = "c0ffee00c0ffee00c0ffee00c0ffee00"


def copy_row(table: type[PlanRow] | type[DecisionRow], of_seq: int, to_seq: int) -> str:
    """A statement copying the row pointing to entry ``of_seq`` under another id, pointing
    to ``to_seq``."""
    cols = [c.name for c in table.__table__.columns if c.name not in ("id", "ledger_seq")]
    name = table.__tablename__
    new_id = f"'{COPY_ID}', " if table is PlanRow else ""
    return (
        f"INSERT INTO {name} ({'id, ' if table is PlanRow else ''}{', '.join(cols)}, ledger_seq) "
        f"SELECT {new_id}{', '.join(cols)}, {to_seq} FROM {name} WHERE ledger_seq = {of_seq}"
    )


# what, the statement, the code both verifications report
ROWS: list[tuple[str, str, str]] = [
    ("alpha's plan row copied to its own entry", copy_row(PlanRow, 1, 1), "plan-row"),
    (  # the copy read first, the original last: only the last one read was compared
        "alpha's plan row copied to its own entry, read first",
        copy_row(PlanRow, 1, 1)
        + f";\nUPDATE plans SET rowid = 1000 WHERE ledger_seq = 1 AND id != '{COPY_ID}'",
        "plan-row",
    ),
    ("alpha's plan row copied past the head", copy_row(PlanRow, 1, 99), "plan-row"),
    ("alpha's plan row copied to entry 0", copy_row(PlanRow, 1, 0), "plan-row"),
    ("alpha's plan row copied to beta's plan entry", copy_row(PlanRow, 1, 4), "plan-row"),
    ("alpha's plan row copied to beta's check", copy_row(PlanRow, 1, 2), "plan-row"),
    ("alpha's plan row copied to its own check", copy_row(PlanRow, 1, 3), "plan-row"),
    ("alpha's decision copied past the head", copy_row(DecisionRow, 3, 99), "decision-row"),
    ("alpha's decision copied to beta's check", copy_row(DecisionRow, 3, 2), "decision-row"),
    ("alpha's decision copied to beta's plan", copy_row(DecisionRow, 3, 4), "decision-row"),
    ("alpha's decision copied to its own plan", copy_row(DecisionRow, 3, 1), "decision-row"),
]


def test_the_log_as_built_verifies(db: str, api: Api) -> None:
    assert straits("ledger", "verify", "--db", db).returncode == 0
    for tenant in ("alpha", "beta"):
        r = straits("ledger", "verify", "--tenant", tenant, "--db", db, "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["ok"], r.stdout
        v = api.client.get("/v1/ledger/verify", headers=api.auth(tenant, "viewer")).json()
        assert v["ok"] and v["entries"] == (3 if tenant == "alpha" else 2), v
    a = api.auth("alpha", "viewer")
    assert [e["seq"] for e in api.client.get("/v1/ledger/entries", headers=a).json()] == [1, 2, 3]
    r = straits("ledger", "show", "--db", db, "-o", "json")
    assert r.returncode == 0 and [e["seq"] for e in json.loads(r.stdout)] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(("what", "statement", "code"), ROWS, ids=[r[0] for r in ROWS])
def test_a_row_of_the_tenant_not_its_entrys_one_fails_the_tenants_check(
    db: str, api: Api, what: str, statement: str, code: str
) -> None:
    alter(db, statement)
    full = straits("ledger", "verify", "--db", db, "--json")
    assert full.returncode == 1 and json.loads(full.stdout)["code"] == code, full.stdout
    r = straits("ledger", "verify", "--tenant", "alpha", "--db", db, "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 1 and not out["ok"] and out["code"] == code, out
    v = api.client.get("/v1/ledger/verify", headers=api.auth("alpha", "viewer")).json()
    assert not v["ok"] and v["code"] == code, v
    # nothing of the other tenant, nor a global number, in what alpha is told
    assert "beta" not in v["problem"] and "99" not in v["problem"], v["problem"]


# --- a row of the ledger deleted ----------------------------------------------------------------
def test_a_deleted_entry_is_a_409_to_its_tenant_and_to_admins(db: str, api: Api) -> None:
    alter(db, "DELETE FROM ledger WHERE seq = 3")  # alpha's entry 2
    a, b, ops = (
        api.auth(t, r) for t, r in (("alpha", "viewer"), ("beta", "viewer"), ("ops", "admin"))
    )
    pages = ("", "?since=2", "?limit=1&since=2", "/2", "/2/receipt")
    for path in (f"/v1/ledger/entries{p}" for p in pages):
        r = api.client.get(path, headers=a)
        assert r.status_code == 409, (path, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["ledger_seq"] == 2 and "entry 2 was removed" in r.json()["detail"], r.json()
    # what the log still proves of alpha's is served; numbers past its last are still none
    assert api.client.get("/v1/ledger/entries?limit=1", headers=a).status_code == 200
    assert api.client.get("/v1/ledger/entries?since=3", headers=a).status_code == 200
    assert api.client.get("/v1/ledger/entries/3", headers=a).status_code == 200
    assert api.client.get("/v1/ledger/entries/4", headers=a).status_code == 404
    # beta's entry 2 (entry 4) follows the deleted one: its prev_hash cannot be held (led65)
    assert [e["seq"] for e in api.client.get("/v1/ledger/entries?limit=1", headers=b).json()] == [1]
    for path in ("/v1/ledger/entries", "/v1/ledger/entries/2"):
        r = api.client.get(path, headers=b)
        assert (r.status_code, r.json()["ledger_seq"]) == (409, 2), (path, r.text)
        assert "alpha" not in r.json()["detail"] and "entry 3" not in r.json()["detail"]
    r = api.client.get("/v1/ledger/entries/3", headers=ops)
    assert r.status_code == 409 and r.json()["ledger_seq"] == 3, r.text
    assert api.client.get("/v1/ledger/entries/3/receipt", headers=ops).status_code == 409
    assert api.client.get("/v1/ledger/entries/6", headers=ops).status_code == 404


def test_the_console_does_not_show_a_deleted_entry_as_never_recorded(db: str) -> None:
    import re

    from straits.store.tokens import create_token

    alter(db, "DELETE FROM ledger WHERE seq = 3")  # alpha's entry 2
    store = Store(db)
    app = create_app(store, settings=Settings(max_body_bytes=64 * 1024, max_time_limit=30))
    app.state.ledger_keys = Keys(SIGNER)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as b:
        m = re.search(r'name="csrf" value="([^"]+)"', b.get("/ui/login").text)
        assert m is not None
        token = create_token(store, "alpha", "viewer")[0]
        r = b.post("/ui/login", data={"token": token, "csrf": m.group(1)}, follow_redirects=False)
        assert r.status_code == 303
        page = b.get("/ui/ledger")
        assert "your ledger entry 2 was removed" in page.text, page.text
        assert b.get("/ui/ledger/2/receipt.json").status_code == 409
        assert b.get("/ui/ledger/3/receipt.json").status_code == 200
    store.close()


# `ledger show` of a log with entry 3 deleted: what is printed, the exit status, the message
SHOW: list[tuple[tuple[str, ...], int, str]] = [
    (("ledger", "show", "-o", "json"), 1, "ledger entry 3 was removed"),
    (("ledger", "show", "-o", "yaml"), 1, "ledger entry 3 was removed"),
    (("ledger", "show"), 1, "ledger entry 3 was removed"),
    (("ledger", "show", "--since", "2", "--limit", "1"), 0, ""),
    (("ledger", "show", "--since", "2", "--limit", "2"), 1, "ledger entry 3 was removed"),
    (("ledger", "show", "--tenant", "alpha", "-o", "json"), 1, "ledger entry 3 was removed"),
    (("ledger", "show", "--tenant", "beta", "--limit", "1"), 0, ""),
    (("ledger", "show", "3"), 1, "ledger entry 3 was removed from the database"),
    (("ledger", "show", "4"), 1, "ledger entry 4: the entry before it was removed"),  # led65
    (("ledger", "show", "5"), 0, ""),
    (("ledger", "show", "6"), 2, "no ledger entry 6"),
]


@pytest.mark.parametrize(("args", "code", "says"), SHOW, ids=[" ".join(s[0][1:]) for s in SHOW])
def test_ledger_show_marks_a_deleted_entry_and_fails(
    db: str, args: tuple[str, ...], code: int, says: str
) -> None:
    alter(db, "DELETE FROM ledger WHERE seq = 3")
    r = straits(*args, "--db", db)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert says in r.stderr, r.stderr
    if "json" in args and "3" not in args[2:3]:
        shown = {e["seq"]: e.get("unproven", False) for e in json.loads(r.stdout)}
        # entry 4 follows it: its link to entry 3 cannot be held (led65)
        assert {k for k, v in shown.items() if v} == {3, 4} & shown.keys(), shown
    if args == ("ledger", "show"):
        assert "REMOVED" in r.stdout


def test_the_last_entries_deleted_are_marked_up_to_the_head(db: str) -> None:
    alter(db, "DELETE FROM ledger WHERE seq >= 4")
    r = straits("ledger", "show", "-o", "json", "--db", db)
    assert r.returncode == 1 and "ledger entry 4 was removed" in r.stderr, r.stderr
    assert [(e["seq"], e.get("removed", False)) for e in json.loads(r.stdout)] == [
        (1, False), (2, False), (3, False), (4, True), (5, True),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("before", "limit", "refused"),
    # page [3] then, from its "more" (3), the page [1]: entry 2 is between them
    [(None, 1, False), (4, 1, False), (3, 2, True), (99, 5, True), (2, 1, True)],
)
def test_the_console_pages_find_a_deleted_entry_at_a_page_boundary(
    db: str, before: int | None, limit: int, refused: bool
) -> None:
    """alpha's entries 1, 2, 3 with 2 deleted: the page after the one ending at entry 3
    (before=3, its numbers [1]) was checked from its own highest number, so an entry deleted
    just below a page's end was flagged on neither page (atk76). A page is counted from the
    tenant's entry just above it; a `before` above every entry is no gap by itself."""
    from straits.errors import LedgerError
    from straits.store.tokens import Principal
    from straits.web.views import ledger_lines

    alter(db, "DELETE FROM ledger WHERE seq = 3")  # alpha's entry 2
    store = Store(db)
    who = Principal("tok", "alpha", "viewer")
    try:
        if refused:
            with pytest.raises(LedgerError):
                ledger_lines(store, who, before=before, limit=limit, keys=Keys(SIGNER))
        else:
            ledger_lines(store, who, before=before, limit=limit, keys=Keys(SIGNER))
    finally:
        store.close()
