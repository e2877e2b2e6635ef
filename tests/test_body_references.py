"""An unknown field of a check, estimate or impact body names the reference of that body, not
the scenario reference (left64): `unknown field (check the spelling against ...)` pointed at
docs/scenario-reference.md for bodies it does not describe. The API's problems and the CLI's
request files alike; `expected` lists the body's own fields, as before."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from straits.model.request import CheckRequest, EstimateRequest
from straits.server.plan_routes import ImpactRequest
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
def api(planner_api: tuple[TestClient, dict[str, str]]) -> tuple[TestClient, dict[str, str]]:
    client, auth = planner_api
    return client, {**auth, "Content-Type": "application/json"}


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


def _unknown_case(tmp_path: Path, doc: dict[str, Any]) -> str:
    from straits.errors import PackError
    from straits.rules.cases import _load_file

    f = tmp_path / "cases.yaml"
    f.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(PackError) as err:
        _load_file("p", f)
    return str(err.value)


EXPECT = {"decision": "allow"}
#: a rule pack's case, its `expect` and its boundary table, and the published runs file: each
#: an unknown field `colour` (9b3031a: "check the spelling against the scenario reference")
FILES: dict[str, Any] = {
    "case-expect": lambda tmp: (
        _unknown_case(
            tmp, {"cases": [{"name": "n", "request": CHECK, "expect": {**EXPECT, "colour": 1}}]}
        ),
        "Expectation",
    ),
    "boundary": lambda tmp: (
        _unknown_case(
            tmp,
            {
                "cases": [],
                "boundaries": [
                    {
                        "name": "b",
                        "rules": ["r"],
                        "date": "2025-06-01",
                        "request": CHECK,
                        "before": EXPECT,
                        "after": EXPECT,
                        "colour": 1,
                    }
                ],
            },
        ),
        "Boundary",
    ),
}


@pytest.mark.parametrize("kind", FILES, ids=FILES.keys())
def test_a_pack_case_names_its_reference(tmp_path: Path, kind: str) -> None:
    from straits.rules import cases

    message, model = FILES[kind](tmp_path)
    assert "colour" in message and "scenario" not in message, message
    assert getattr(cases, model).REFERENCE in message


def test_the_runs_file_names_its_reference() -> None:
    import yaml

    from straits.errors import CatalogError
    from straits.estimate.runs import RunsFile, parse_runs

    doc = yaml.safe_load((ROOT / "src" / "straits" / "estimate" / "runs.yaml").read_text())
    with pytest.raises(CatalogError) as err:
        parse_runs(yaml.safe_dump({**doc, "colour": 1}))
    assert "colour" in str(err.value) and "scenario" not in str(err.value)
    assert RunsFile.REFERENCE in str(err.value)


@pytest.mark.parametrize("model", ["Expectation", "Boundary", "RunsFile"])
def test_each_file_names_a_reference_that_describes_it(model: str) -> None:
    from straits.estimate import runs
    from straits.rules import cases

    test_each_body_names_a_reference_that_describes_it(
        getattr(cases, model, None) or getattr(runs, model)
    )
