"""An unknown field of a check, estimate or impact body names the reference of that body, not
the scenario reference (left64): `unknown field (check the spelling against ...)` pointed at
docs/scenario-reference.md for bodies it does not describe. The API's problems and the CLI's
request files alike; `expected` lists the body's own fields, as before."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from straits.model.request import CheckRequest, EstimateRequest
from straits.server import create_app
from straits.server.plan_routes import ImpactRequest
from straits.store import Store
from straits.store.tokens import create_token
from test_api import assert_problem
from test_cli_conventions import ROOT, run

CHECK = json.loads((ROOT / "examples" / "request.json").read_text(encoding="utf-8"))
ESTIMATE = json.loads((ROOT / "examples" / "estimate.json").read_text(encoding="utf-8"))
OWN_FIELD = {"check": "action", "estimate": "tokens", "impact": "documents"}
MODELS: dict[str, Any] = {
    "check": CheckRequest,
    "estimate": EstimateRequest,
    "impact": ImpactRequest,
}


@pytest.mark.parametrize("model", MODELS.values(), ids=MODELS.keys())
def test_each_body_names_a_reference_that_describes_it(model: Any) -> None:
    """The reference names a page of docs/ and the section of it that lists the body."""
    ref = model.REFERENCE
    page = re.search(r"docs/[\w-]+\.md", ref)
    assert page is not None, ref
    text = (ROOT / page.group()).read_text(encoding="utf-8")
    section = re.search(r"`([^`]+)`", ref)
    assert section is not None and section.group(1) in text, ref
    assert "scenario" not in ref


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = Store(f"sqlite:///{Path(tmp_path_factory.mktemp('api')) / 's.db'}")
    token = create_token(store, "hz-cloud", "planner")[0]
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    store.close()


@pytest.mark.parametrize(
    ("url", "body", "path", "kind"),
    [
        ("/v1/check", {**CHECK, "colour": 1}, "colour", "check"),
        ("/v1/check", [CHECK, {**CHECK, "colour": 1}], "[1].colour", "check"),
        ("/v1/estimate", {**ESTIMATE, "colour": 1}, "colour", "estimate"),
        ("/v1/impact", {"date": "2025-06-01", "colour": 1}, "colour", "impact"),
    ],
    ids=["check", "check-list", "estimate", "impact"],
)
def test_an_unknown_field_of_a_body_names_its_reference(
    api: tuple[TestClient, dict[str, str]], url: str, body: object, path: str, kind: str
) -> None:
    client, headers = api
    problem = assert_problem(client.post(url, headers=headers, content=json.dumps(body)), 400)
    assert problem["path"] == path
    assert "scenario" not in problem["error"]  # c9dafbc: "the scenario reference"
    assert MODELS[kind].REFERENCE in problem["error"]
    assert OWN_FIELD[kind] in problem["expected"]  # the body's own fields, as before


@pytest.mark.parametrize(
    ("command", "body", "kind"),
    [
        ("check", {**CHECK, "colour": 1}, "check"),
        ("estimate", {**ESTIMATE, "colour": 1}, "estimate"),
    ],
)
def test_a_request_file_names_its_reference(
    tmp_path: Path, command: str, body: dict[str, Any], kind: str
) -> None:
    f = tmp_path / "req.json"
    f.write_text(json.dumps(body), encoding="utf-8")
    p = run(command, str(f))
    assert p.returncode == 2
    assert p.stderr.startswith("error: ") and "colour" in p.stderr
    assert "scenario" not in p.stderr
    assert MODELS[kind].REFERENCE in p.stderr
