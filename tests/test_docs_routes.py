"""docs/server-and-ledger.md's route table is the API's: every operation of the OpenAPI spec has
a row, every row an operation, and the query parameters a row shows (`?a=&b=`, `[?c=true]`) are
the operation's."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from straits.server import create_app
from straits.store import Store

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "server-and-ledger.md").read_text(encoding="utf-8")


def documented() -> dict[tuple[str, str], set[str]]:
    rows: dict[tuple[str, str], set[str]] = {}
    for line in PAGE.splitlines():
        if not re.match(r"\| `(GET|POST|DELETE|PUT|PATCH) /", line):
            continue
        first = line.replace("\\|", "/").split("|")[1]
        for method, target in re.findall(r"`(GET|POST|DELETE|PUT|PATCH) ([^`]+)`", first):
            path = re.split(r"[\[?]", target)[0]
            rows[(method, path)] = set(re.findall(r"[?&\[]+(\w+)=", target))
    return rows


def test_the_route_table_is_the_apis(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'routes.db'}")
    try:
        with TestClient(create_app(store)) as client:
            spec = client.get("/openapi.json").json()
    finally:
        store.close()
    real: dict[tuple[str, str], set[str]] = {("GET", "/openapi.json"): set()}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            key = (
                method.upper(),
                re.sub(r"\{\w+\}", lambda m: "{id}" if "plan" in m.group(0) else m.group(0), path),
            )
            real[key] = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
    rows = documented()
    assert sorted(set(real) - set(rows)) == [], "operations without a row"
    assert sorted(set(rows) - set(real)) == [], "rows without an operation"
    wrong = {
        f"{m} {p}": (sorted(rows[(m, p)]), sorted(real[(m, p)]))
        for (m, p) in rows
        if rows[(m, p)] and not real[(m, p)] >= rows[(m, p)]
    }
    assert wrong == {}, "parameters a row shows that the operation does not take"
    # a row that lists parameters lists them all
    partial = [
        f"{m} {p}: {sorted(real[(m, p)] - q)}"
        for (m, p), q in rows.items()
        if q and real[(m, p)] - q
    ]
    assert partial == [], "parameters an operation takes that its row leaves out"
