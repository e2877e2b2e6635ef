"""A hostile pass on the API's request bodies (body63): deep nesting, 10 MB strings, NUL bytes,
lone surrogates, duplicated keys, numbers beyond a float, bytes that are no UTF-8 and content
types of every kind, over every route that reads a body. Each case here failed before its
fix; what held is in docs/robustness.md."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from test_api import assert_problem


@pytest.fixture(scope="module")
def api(planner_api: tuple[TestClient, dict[str, str]]) -> tuple[TestClient, dict[str, str]]:
    client, auth = planner_api
    return client, {**auth, "Content-Type": "application/json"}


# --- a number beyond a float is no number -------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "body"),
    [
        # answered 200 with the request back holding `Infinity`, which is no JSON
        ("/v1/skypilot/policy", '{"task": "name: x\\n",\n "skypilot_config": {"a": 1e400}}'),
        ("/v1/impact", '{"date": "2025-06-01",\n "documents": [{"x": -1e400}]}'),
        ("/v1/exports?to=slurm", '{"id": "x",\n "cost": 1e400}'),
        # `'inf' is not a date`: the number was read as infinity
        ("/v1/check", '{"action": "train",\n "date": 1E+400}'),
    ],
)
def test_a_number_beyond_a_float_is_refused_where_it_is_written(
    api: tuple[TestClient, dict[str, str]], url: str, body: str
) -> None:
    client, headers = api
    problem = assert_problem(client.post(url, headers=headers, content=body), 400)
    assert (problem["expected"], problem["line"]) == ("a finite number", 2)


# --- SkyPilot's request as a JSON string is read as strictly as a body --------------------------
@pytest.mark.parametrize(
    ("inner", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, None),  # a RecursionError: a 500
        ('{"task": "name: x\\n", "a": 1, "a": 2}', "each key once per object"),
        ('{"task": "name: x\\n", "a": NaN}', "SkyPilot's UserRequest"),
    ],
    ids=["deep", "duplicate-key", "nan"],
)
def test_a_skypilot_request_in_a_string_is_strict_json(
    api: tuple[TestClient, dict[str, str]], inner: str, expected: str | None
) -> None:
    client, headers = api
    r = client.post("/v1/skypilot/policy", headers=headers, content=json.dumps(inner))
    problem = assert_problem(r, 400)
    if expected is not None:
        assert problem["expected"] == expected


# --- bodies validated off the event loop --------------------------------------------------------
def test_an_impact_body_is_validated_off_the_event_loop(
    api: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /v1/impact validated its body on the event loop: 2 MiB of unknown keys are
    150,000 problems, over half a second in which no other request (another tenant's,
    `/healthz`) was answered. The other body routes validate in the thread pool (api29)."""
    import straits.server.plan_routes as routes
    from straits.loading import validate_as

    on_loop: list[str] = []

    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append("validate_as")
        except RuntimeError:
            pass
        return validate_as(*args, **kwargs)

    monkeypatch.setattr(routes, "validate_as", watched)
    client, headers = api
    body = {"date": "2025-06-01", **{f"k{i}": 0 for i in range(1000)}}
    problem = assert_problem(client.post("/v1/impact", headers=headers, json=body), 400)
    assert problem["path"] == "k0"
    assert on_loop == []


# --- a lone surrogate is no text -----------------------------------------------------------------
SURROGATE = '{"task": "name: x\\n", "skypilot_config": {"a": ["ok", "\\ud800"]}}'


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (SURROGATE, "skypilot_config.a[1]"),  # answered 200, the request back holding it
        (json.dumps(SURROGATE), "skypilot_config.a[1]"),  # SkyPilot's form: a JSON string
        ('{"task": "name: x\\n", "skypilot_config": {"\\udfff": 1}}', "skypilot_config"),
    ],
    ids=["value", "in-a-string", "key"],
)
def test_a_lone_surrogate_in_a_body_is_a_400_naming_its_field(
    api: tuple[TestClient, dict[str, str]], body: str, path: str
) -> None:
    client, headers = api
    problem = assert_problem(client.post("/v1/skypilot/policy", headers=headers, content=body), 400)
    assert (problem["path"], problem["expected"]) == (path, "text in UTF-8")


def test_a_surrogate_pair_is_a_character(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    body = '{"task": "name: x\\n", "skypilot_config": {"a": "\\ud83d\\ude00"}}'
    r = client.post("/v1/skypilot/policy", headers=headers, content=body)
    assert r.status_code == 200, r.text
    assert json.loads(r.json())["skypilot_config"] == {"a": "\U0001f600"}


# --- a long key is named, not copied ---------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "body", "path"),
    [
        ("/v1/impact", {"date": "2025-06-01", "k" * 500_000: 1}, "k" * 57 + "..."),
        ("/v1/check", [{"k" * 500_000: 1}], "[0]"),
        ("/v1/estimate", {"model": {"k" * 500_000: 1}}, "model"),
    ],
    ids=["impact", "check-list", "estimate"],
)
def test_an_unknown_key_of_half_a_megabyte_is_named_shortened(
    api: tuple[TestClient, dict[str, str]], url: str, body: object, path: str
) -> None:
    """Its problem wrote the whole key three times (`path`, `errors`, `error`): 1.5 MB
    answered for 0.5 MB sent."""
    client, headers = api
    r = client.post(url, headers=headers, content=json.dumps(body))
    problem = assert_problem(r, 400)
    assert len(r.content) < 10_000
    assert problem["path"].startswith(path)


# --- the console's list of a scenario's problems ------------------------------------------------
def test_a_scenarios_problems_are_located_in_one_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's submit page lists a scenario's problems with their lines
    (`scenario_listing.scenario_problems`): the text was composed again for each problem, so
    2,000 unknown keys (27 KB) took 27 s and a 2 MiB form hours of a server thread. It is
    composed once, for the first MAX_PROBLEMS, as many as the API lists."""
    import yaml

    from straits import safe_yaml
    from straits.errors import MAX_PROBLEMS
    from straits.scenario_listing import scenario_problems

    root = Path(__file__).resolve().parents[1]
    sc = yaml.safe_load((root / "examples/offshore-2025.yaml").read_text())
    text = yaml.safe_dump({**sc, **{f"k{i}": 0 for i in range(300)}})
    compose, composed = safe_yaml.compose, []

    def counted(text: str) -> Any:
        composed.append(1)
        return compose(text)

    monkeypatch.setattr(safe_yaml, "compose", counted)
    problems = scenario_problems(text, source="pasted scenario")
    assert len(problems) == MAX_PROBLEMS and len(composed) == 1
    lines = [p.line or 0 for p in problems]
    assert min(lines) > 0 and lines == sorted(set(lines))
    assert all(p.expected and "workloads" in p.expected for p in problems)
