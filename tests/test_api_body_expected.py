"""A body's field refused by its type says what it takes, as a query parameter does (stop 62
left it out): ``expected`` was null on every field error of a JSON or YAML body (``POST
/v1/impact`` with ``"time_limit": 0.1``, a scenario's ``"regime": "wishful"``, a check's
``"subjects": -1``) where ``?time_limit=0.1`` said ``a number >= 0.5``. One table
(``errors.validation_expected``) now serves query parameters, bodies and files: the CLI's line
for a file says the same ``(expected ...)`` as the problem's ``error``."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from straits.errors import InputError, validation_expected
from straits.server.plan_routes import MAX_IMPACT_PLANS
from straits.server.problems import Problem

ROOT = Path(__file__).resolve().parents[1]
REQUEST: dict[str, Any] = json.loads((ROOT / "src/straits/examples/request.json").read_text())
ESTIMATE: dict[str, Any] = json.loads((ROOT / "src/straits/examples/estimate.json").read_text())
SCENARIO: dict[str, Any] = json.loads(
    json.dumps(yaml.safe_load((ROOT / "examples/offshore-2025.yaml").read_text()), default=str)
)
DAY = {"date": "2025-06-01"}


@pytest.fixture(scope="module")
def api(planner_api: tuple[TestClient, dict[str, str]]) -> tuple[TestClient, dict[str, str]]:
    return planner_api


def scenario(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    sc = copy.deepcopy(SCENARIO)
    change(sc)
    return sc


def check(**data: Any) -> dict[str, Any]:
    return {**REQUEST, "data": {**REQUEST["data"], **data}}


# (url, body, field path, what `expected` must hold: the bound's value, the names)
CASES: list[tuple[str, Any, str, tuple[str, ...]]] = [
    ("/v1/impact", {**DAY, "time_limit": 0.1}, "time_limit", (">=", "0.5")),
    ("/v1/impact", {**DAY, "time_limit": 4000}, "time_limit", ("<=", "3600")),
    ("/v1/impact", {**DAY, "time_limit": "10"}, "time_limit", ("a number",)),
    ("/v1/impact", {**DAY, "regime": "none"}, "regime", ("'enacted'", "'ai-diffusion'")),
    ("/v1/impact", {**DAY, "replan": "no"}, "replan", ("true", "false")),
    ("/v1/impact", {**DAY, "plans": ["x"]}, "plans[0]", ("at least 4 characters",)),
    ("/v1/impact", {**DAY, "plans": ["x" * 65]}, "plans[0]", ("at most 64 characters",)),
    (
        "/v1/impact",
        {**DAY, "plans": ["abcd"] * (MAX_IMPACT_PLANS + 1)},
        "plans",
        (f"at most {MAX_IMPACT_PLANS} items",),
    ),
    ("/v1/impact", {**DAY, "documents": [1]}, "documents[0]", ("a mapping",)),
    ("/v1/impact", {**DAY, "bogus": 1}, "bogus", ("date", "replan", "time_limit")),
    ("/v1/impact", {}, "date", ("date",)),
    ("/v1/impact", {"date": "2025-06-01T00:00:00"}, "date", ("YYYY-MM-DD",)),
    ("/v1/check", {**REQUEST, "action": "rent"}, "action", ("'train'", "'transfer-weights'")),
    ("/v1/check", check(subjects=-1), "data.subjects", (">=", "0")),
    ("/v1/check", [REQUEST, check(subjects="x")], "[1].data.subjects", (">= 0", "10^10")),
    ("/v1/check", {**REQUEST, "site": {"country": "SG"}}, "site.operator_hq", ("operator_hq",)),
    ("/v1/estimate", {**ESTIMATE, "chips": 0}, "chips", (">=", "1")),
    ("/v1/estimate", {**ESTIMATE, "chips": 1.5}, "chips", ("an integer",)),
    (
        "/v1/plans",
        scenario(lambda s: s["sites"][0]["pools"][0].update(count=-5)),
        "sites[0].pools[0].count",
        (">=", "0"),
    ),
    ("/v1/plans", scenario(lambda s: s.update(regime="wishful")), "regime", ("'enacted'",)),
    ("/v1/plans", scenario(lambda s: s.update(date="2025-13-01")), "date", ("YYYY-MM-DD",)),
    (
        "/v1/plans",
        scenario(lambda s: s["sites"][0].update(wan_gpbs=5)),
        "sites[0].wan_gpbs",
        ("wan_gbps", "egress_usd_per_gb"),
    ),
    (
        "/v1/plans",
        scenario(lambda s: s["workloads"][0]["stages"][0].update(chips="many")),
        "workloads[0].stages[0].chips",
        (">= 1", "10^7"),
    ),
    ("/v1/plans", scenario(lambda s: s.pop("sites")), "sites", ("sites",)),
]


@pytest.mark.parametrize(("url", "body", "path", "holds"), CASES, ids=[c[2] for c in CASES])
def test_a_refused_body_field_says_what_it_takes(
    api: tuple[TestClient, dict[str, str]],
    url: str,
    body: Any,
    path: str,
    holds: tuple[str, ...],
) -> None:
    client, headers = api
    r = client.post(url, headers=headers, json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    Problem.model_validate(problem)  # the documented shape: `expected` a string or null
    assert problem["path"] == path
    expected = problem["expected"]
    assert isinstance(expected, str)
    for part in holds:
        assert part in expected, expected
    # the CLI's line (`error`) says it too, once
    assert problem["error"].count(expected) == 1, problem["error"]


def test_a_yaml_body_says_it_as_json_does(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    text = yaml.safe_dump(scenario(lambda s: s["sites"][0]["pools"][0].update(count=-5)))
    r = client.post(
        "/v1/plans", headers={**headers, "Content-Type": "application/yaml"}, content=text
    )
    assert r.status_code == 400, r.text
    problem = r.json()
    assert (problem["path"], problem["expected"]) == ("sites[0].pools[0].count", "a number >= 0")
    assert isinstance(problem["line"], int)


def test_a_query_value_check_says_what_its_message_says(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    """A query parameter's own check (``?date=20250601``) said ``(expected YYYY-MM-DD)`` in
    its detail and null in ``expected``."""
    client, headers = api
    r = client.get("/v1/rules?date=20250601", headers=headers)
    assert r.status_code == 400, r.text
    assert (r.json()["path"], r.json()["expected"]) == ("date", "YYYY-MM-DD")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"type": "missing", "loc": ("body", "date")}, "a value for date"),
        ({"type": "too_long", "ctx": {"max_length": 50}}, "at most 50 items"),
        ({"type": "too_short", "ctx": {"min_length": 1}}, "at least 1 item"),
        ({"type": "date_from_datetime_parsing", "ctx": {"error": "x"}}, "a date, YYYY-MM-DD"),
        ({"type": "value_error", "msg": "Value error, 'x' is not a date (expected Y-M)"}, "Y-M"),
        ({"type": "value_error", "msg": "Value error, expected cost or time"}, "cost or time"),
        ({"type": "value_error", "msg": "1.5 is odd: expected a whole number"}, "a whole number"),
        ({"type": "value_error", "msg": "Value error, unknown chip 'x'"}, None),
    ],
)
def test_expected_of_more_validation_errors(error: dict[str, Any], expected: str | None) -> None:
    assert validation_expected(error) == expected


def test_a_line_says_what_was_expected_once() -> None:
    """The message already saying it (a literal's ``Input should be 'a' or 'b'``, a check's
    ``(expected YYYY-MM-DD)``), the line does not add it again; otherwise it does."""
    said = InputError("Input should be 'a' or 'b', got 'c'", path="x", expected="'a' or 'b'")
    assert str(said).count("'a' or 'b'") == 1 and said.expected_unsaid() is None
    own = InputError("'x' is not a date (expected YYYY-MM-DD)", expected="YYYY-MM-DD")
    assert str(own).count("YYYY-MM-DD") == 1
    bound = InputError("Input should be greater than or equal to 1", expected="a number >= 1")
    assert str(bound).endswith("(expected a number >= 1)")


def test_the_cli_says_what_the_api_says(
    api: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    """``straits check FILE`` and ``POST /v1/check`` with the same bad request: one line, the
    same field, the same ``(expected ...)`` (the scenario loader and validators are shared)."""
    client, headers = api
    bad = check(subjects=-1)
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    p = subprocess.run(
        [sys.executable, "-m", "straits", "check", str(tmp_path / "bad.json")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2, p.stderr
    problem = client.post("/v1/check", headers=headers, json=bad).json()
    assert problem["expected"] == "a number >= 0"
    line = " ".join(p.stderr.split())
    where = f"{tmp_path / 'bad.json'}:1: "
    assert line == "error: " + where + problem["error"].removeprefix("request body:1: ")
