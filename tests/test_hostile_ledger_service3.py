"""Hostile ledger files and service inputs, third round: an export whose lines carry fields of
the wrong JSON type is bad input naming the line, not a log that verifies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hostile_corpus import DESIGN_REQUEST


def _straits(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    """Two recorded checks, exported."""
    d = tmp_path_factory.mktemp("export")
    db = f"sqlite:///{d / 'l.db'}"
    for _ in range(2):
        p = _straits(
            "check", "--json", "--record", "--db", db, cwd=d, stdin=json.dumps(DESIGN_REQUEST)
        )
        assert p.returncode == 0, p.stderr
    p = _straits("ledger", "export", "--db", db, "-o", "e.jsonl", cwd=d)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in (d / "e.jsonl").read_text().splitlines()]


# a string where Straits writes a number (`"seq": "2"`, and any digits int() reads: "٢" is
# Arabic-Indic 2) verified, exit 0, as did a number where it writes a string; a list or an
# object where it writes a string was "entry 2 was altered", exit 1: the file is not an export
RETYPED = [
    ("seq", "2"),
    ("seq", " 2 "),
    ("seq", "\u0662"),
    ("tenant_seq", "2"),
    ("tenant", 5),
    ("actor", ["cli:x"]),
    ("body", {}),
    ("recorded_at", None),
    ("salt", 0),
    # numbers no entry holds: seq 0 or -1 was "the file holds one tenant's entries only"
    ("seq", 0),
    ("seq", -1),
    ("tenant_seq", -1),
]


@pytest.mark.parametrize(("field", "value"), RETYPED, ids=[f"{f}={v!r}" for f, v in RETYPED])
def test_an_export_line_of_the_wrong_types_is_bad_input_naming_the_line(
    export: list[dict[str, object]], tmp_path: Path, field: str, value: object
) -> None:
    docs = [dict(d) for d in export]
    docs[1][field] = value
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    p = _straits("ledger", "verify", "--file", "x.jsonl", cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "line 2" in p.stderr and field in p.stderr and "Traceback" not in p.stderr


def test_the_export_as_written_still_verifies(
    export: list[dict[str, object]], tmp_path: Path
) -> None:
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(d) + "\n" for d in export))
    p = _straits("ledger", "verify", "--file", "x.jsonl", cwd=tmp_path)
    assert p.returncode == 0, p.stderr


# --- a ledger body nested deeper than the JSON parser recurses ------------------------------------
# a database writer set an entry's body to 3,000 nested arrays: `ledger show` and `ledger verify
# --tenant` ended in a RecursionError traceback, and the API answered 500 to an admin's
# GET /v1/ledger/entries and /entries/1 and to a tenant's GET /v1/ledger/verify (json.loads
# raises RecursionError, not ValueError, and only ValueError was taken as "not a JSON object")
DEEP = "[" * 3000 + "]" * 3000


def _deepen(url: str, table: str, column: str = "body") -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {table} SET {column} = :b"), {"b": DEEP})
    engine.dispose()


def test_a_deeply_nested_entry_body_is_an_altered_entry_on_the_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    p = _straits(
        "check", "--json", "--record", "--db", db, cwd=tmp_path, stdin=json.dumps(DESIGN_REQUEST)
    )
    assert p.returncode == 0, p.stderr
    _deepen(db, "ledger")
    for args in (("ledger", "show"), ("ledger", "show", "1"), ("ledger", "show", "--json")):
        p = _straits(*args, "--db", db, cwd=tmp_path)
        assert p.returncode == 1 and "Traceback" not in p.stderr, (args, p.stderr[-400:])
    p = _straits("ledger", "verify", "--tenant", "default", "-o", "json", "--db", db, cwd=tmp_path)
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr[-400:]
    assert json.loads(p.stdout)["ok"] is False


def test_a_deeply_nested_entry_body_is_no_500(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store import Store
    from test_api import Api

    url = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(url)
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        api = Api(client, store)
        a, admin = api.auth("a", "planner"), api.auth("ops", "admin")
        r = client.post("/v1/check", params={"record": "true"}, json=DESIGN_REQUEST, headers=a)
        assert r.status_code == 200
        _deepen(url, "ledger")
        for route, h in (
            ("/v1/ledger/entries", admin),
            ("/v1/ledger/entries/1", admin),
            ("/v1/ledger/entries", a),
            ("/v1/ledger/verify", a),
            ("/v1/ledger/verify", admin),
        ):
            r = client.get(route, headers=h)
            assert r.status_code in (200, 409), (route, r.text)
            if r.status_code == 200 and route.endswith("verify"):
                assert r.json()["ok"] is False
            assert "Traceback" not in r.text
    store.close()


def test_a_deeply_nested_scenario_row_is_an_altered_scenario(
    tmp_path: Path, rules: Any, example_path: Path
) -> None:
    """The scenario a recorded plan points to, nested thousands deep: verify and every read
    of the plan took only ValueError as "altered" (a RecursionError traceback, a 500)."""
    from fastapi.testclient import TestClient

    from straits.loading import load_scenario
    from straits.plan import make_plan
    from straits.server import create_app
    from straits.store import Store, ledger
    from straits.store.records import record_plan
    from test_api import Api

    url = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(url)
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, solver="greedy")
    plan_id, e = record_plan(
        store, sc, plan, rules, {"solver": "greedy"}, tenant="hz-cloud", actor="bob"
    )
    _deepen(url, "scenarios")
    v = ledger.verify(Store(url))
    assert not v.ok and v.first_bad == e.seq and v.code == "scenario-altered"
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        h = Api(client, store).auth("hz-cloud", "planner")
        for route in (f"/v1/plans/{plan_id}", f"/v1/plans/{plan_id}/plan", "/v1/plans"):
            r = client.get(route, headers=h)
            assert r.status_code in (200, 409), (route, r.text)
    p = _straits("ledger", "verify", "-o", "json", "--db", url, cwd=tmp_path)
    assert p.returncode == 1 and json.loads(p.stdout)["code"] == "scenario-altered", p.stderr
    store.close()


# the plan and decision rows' JSON columns, nested thousands deep: the row checks and the plan
# reads took only ValueError and TypeError as "not JSON" (a RecursionError traceback, a 500)
@pytest.mark.parametrize(
    ("table", "column", "code"),
    [
        ("plans", "result", "plan-row"),
        ("plans", "options", "plan-row"),
        ("decisions", "answer", "decision-row"),
        ("decisions", "request", "decision-row"),
    ],
)
def test_a_deeply_nested_row_column_is_an_altered_row(
    tmp_path: Path, rules: Any, example_path: Path, table: str, column: str, code: str
) -> None:
    from fastapi.testclient import TestClient

    from straits.loading import load_scenario
    from straits.plan import make_plan
    from straits.server import create_app
    from straits.store import Store, ledger
    from straits.store.records import record_plan
    from test_api import Api

    url = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(url)
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, solver="greedy")
    plan_id, _ = record_plan(
        store, sc, plan, rules, {"solver": "greedy"}, tenant="hz-cloud", actor="bob"
    )
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        h = Api(client, store).auth("hz-cloud", "planner")
        r = client.post("/v1/check", params={"record": "true"}, json=DESIGN_REQUEST, headers=h)
        assert r.status_code == 200
        _deepen(url, table, column)
        v = ledger.verify(Store(url))
        assert not v.ok and v.code == code, v
        for route in (f"/v1/plans/{plan_id}", "/v1/plans", "/v1/ledger/verify"):
            r = client.get(route, headers=h)
            assert r.status_code in (200, 409), (route, r.text)
    store.close()


# --- a tenant's last entry renumbered to 0 or below -----------------------------------------------
# a tenant's verification read its entries numbered above 0 only: its last entry's tenant_seq
# set to 0 (or -5) hid it, and the check said "ok, N-1 entries" (the quick check counted N)
@pytest.mark.parametrize("number", [0, -5])
@pytest.mark.parametrize("which", ["only", "last"])
def test_a_tenants_entry_renumbered_below_1_fails_its_check(
    tmp_path: Path, rules: Any, number: int, which: str
) -> None:
    from straits.api import check_json, parse_check_document
    from straits.store import Store
    from straits.store.keys import Keys
    from straits.store.records import record_check
    from straits.store.tenant_verify import verify_tenant

    url = f"sqlite:///{tmp_path / 'l.db'}"
    store = Store(url)
    reqs, was_list = parse_check_document(DESIGN_REQUEST, "test")
    answer = check_json(rules, reqs, was_list)
    for tenant in ["a", "b"] if which == "only" else ["a", "a", "b"]:
        e = record_check(store, rules, reqs, answer, tenant=tenant, actor="x")
    assert verify_tenant(store, Keys(), "a").ok
    last = 1 if which == "only" else 2
    _sql(
        url,
        "UPDATE ledger SET tenant_seq = :n WHERE tenant = 'a' AND tenant_seq = :t",
        n=number,
        t=last,
    )
    v = verify_tenant(store, Keys(), "a")
    assert not v.ok and v.code == "entry-altered", v
    assert e.seq == 3 or which == "only"
    store.close()


def _sql(url: str, statement: str, **params: object) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


# --- `ledger show` over a body whose result has another shape -------------------------------------
# an entry's body rewritten to a JSON object whose result is not what its kind records: the
# table's summary took it as that shape (AttributeError, TypeError, ValueError tracebacks)
ODD_RESULTS = [
    ("plan", {"result": 5}),
    ("plan", {"result": {"plan": 5}}),
    ("plan", {"result": {"plan": {"total_cost_usd": "x"}}}),
    ("plan", {"result": {"plan": {"assignments": 5}}}),
    ("replay", {"result": 5}),
    ("replay", {"result": {"replayed": 5}}),
    ("admission", {"result": 5, "inputs": 5}),
]


@pytest.mark.parametrize(("kind", "body"), ODD_RESULTS, ids=[str(b) for _, b in ODD_RESULTS])
def test_ledger_show_lists_an_entry_whose_result_has_another_shape(
    export: list[dict[str, object]], tmp_path: Path, kind: str, body: dict[str, Any]
) -> None:
    from straits.cli.ledger_summary import summary as _summary
    from straits.store.ledger import Entry

    e = Entry.from_json({**export[0], "kind": kind, "body": json.dumps(body)})
    assert isinstance(_summary(e), str)


@pytest.mark.parametrize("text", [None, "not json", "[" * 100_000 + "]" * 100_000, b"\xff"])
def test_a_stored_column_straits_never_wrote_is_one_value_error(text: object) -> None:
    from straits.store.canonical import loads_stored

    with pytest.raises(ValueError):
        loads_stored(text)
    assert loads_stored('{"a": [1]}') == {"a": [1]}
