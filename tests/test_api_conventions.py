"""The API as an integrator reads it: a problem's ``errors`` lists every problem the request
has (not the first one with "and 3 more" in its prose), with the paths of the API's own
parameters (not the CLI's flags), and the Python client hands them on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from straits.client_io import error_for
from straits.errors import MAX_PROBLEMS, InputError, join_path
from test_api import Api, assert_problem, running_api
from test_rules_engine import DESIGN_REQUEST


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


def _paths(body: dict[str, Any]) -> list[str | None]:
    return [item["path"] for item in body["errors"]]


def test_every_problem_of_a_check_is_listed(api: Api) -> None:
    r = api.client.post("/v1/check", json={}, headers=api.auth("t", "viewer"))
    body = assert_problem(r, 400)
    assert set(_paths(body)) >= {"date", "action", "tenant", "site"}
    assert body["path"] == body["errors"][0]["path"]
    assert all("more problem" not in item["detail"] for item in body["errors"])


def test_problems_in_a_list_of_checks_are_under_their_index(api: Api) -> None:
    bad = {k: v for k, v in DESIGN_REQUEST.items() if k not in ("date", "action")}
    r = api.client.post("/v1/check", json=[DESIGN_REQUEST, bad], headers=api.auth("t", "viewer"))
    body = assert_problem(r, 400)
    assert set(_paths(body)) == {"[1].date", "[1].action"}


def test_every_problem_of_an_estimate_is_listed(api: Api) -> None:
    r = api.client.post(
        "/v1/estimate", json={"tokens": -1, "chip": ""}, headers=api.auth("t", "viewer")
    )
    body = assert_problem(r, 400)
    assert {"model", "tokens", "chip"} <= set(_paths(body))


def test_a_scenario_with_many_problems_lists_them_up_to_the_cap(api: Api) -> None:
    sites = [{"id": f"s{i}", "country": "SG"} for i in range(MAX_PROBLEMS + 50)]
    doc = {"straits": 1, "name": "x", "date": "2025-06-01", "sites": sites}
    r = api.client.post("/v1/plans", json=doc, headers=api.auth("t", "planner"))
    body = assert_problem(r, 400)
    assert len(body["errors"]) == MAX_PROBLEMS
    assert "sites[0].operator_hq" in _paths(body)


def test_impact_changes_list_their_problems_under_their_index(api: Api) -> None:
    r = api.client.post(
        "/v1/impact",
        json={"date": "2025-06-01", "capacity": [{}]},
        headers=api.auth("t", "viewer"),
    )
    body = assert_problem(r, 400)
    paths = _paths(body)
    assert len(paths) > 1 and all(str(p).startswith("capacity[0].") for p in paths)


@pytest.mark.parametrize(
    ("params", "name"),
    [({"to": "nomad"}, "to"), ({"to": "slurm", "image": "a b"}, "image")],
)
def test_export_problems_name_the_query_parameter(
    api: Api, params: dict[str, str], name: str
) -> None:
    r = api.client.post("/v1/exports", params=params, json={}, headers=api.auth("t", "viewer"))
    body = assert_problem(r, 400)
    assert body["path"] == name and _paths(body) == [name]
    assert not body["error"].startswith("--")


def test_the_client_hands_on_every_listed_problem() -> None:
    problems = [{"path": "date", "detail": "missing"}, {"path": None, "detail": "x\ny"}]
    junk: list[Any] = [3, {"path": 1, "detail": "kept without its path"}, {"detail": None}]
    r = httpx.Response(
        400,
        json={"detail": "missing", "path": "date", "errors": problems + junk},
        request=httpx.Request("POST", "http://s/v1/check"),
    )
    exc = error_for(r, "http://s")
    assert isinstance(exc, InputError)
    assert exc.problems == [("date", "missing"), (None, "x y"), (None, "kept without its path")]


@pytest.mark.parametrize(
    ("prefix", "inner", "joined"),
    [
        ("[2]", "date", "[2].date"),
        ("sites", "[0].id", "sites[0].id"),
        ("[2]", None, "[2]"),
        ("[2]", "(top level)", "[2]"),
        ("[2]", "[2]", "[2]"),
    ],
)
def test_join_path(prefix: str, inner: str | None, joined: str) -> None:
    assert join_path(prefix, inner) == joined


def _parameter(api: Api, path: str, method: str, name: str) -> dict[str, Any]:
    spec = api.client.get("/openapi.json").json()
    (param,) = [p for p in spec["paths"][path][method]["parameters"] if p["name"] == name]
    schema: dict[str, Any] = param["schema"]
    return schema


def test_the_spec_lists_the_plan_states_the_list_takes(api: Api) -> None:
    schema = _parameter(api, "/v1/plans", "get", "status")
    (states,) = [s["enum"] for s in schema["anyOf"] if "enum" in s]
    for state in states:
        r = api.client.get("/v1/plans", params={"status": state}, headers=api.auth("t", "viewer"))
        assert r.status_code == 200, r.text
    r = api.client.get("/v1/plans", params={"status": "x"}, headers=api.auth("t", "viewer"))
    assert_problem(r, 400)


@pytest.mark.parametrize(
    ("path", "method"), [("/v1/exports", "post"), ("/v1/plans/{plan_id}/export", "get")]
)
def test_the_spec_lists_the_export_targets_the_server_takes(
    api: Api, path: str, method: str
) -> None:
    from straits.api import export_targets

    targets = _parameter(api, path, method, "to")["items"]["enum"]
    assert "all" in targets and len(export_targets(targets)) == len(targets) - 1


@pytest.mark.parametrize("date", ["0", "20250601", "1748736000", "2025-06-01T00:00:00", "June 1"])
def test_a_rules_date_is_a_date(api: Api, date: str) -> None:
    r = api.client.get("/v1/rules", params={"date": date}, headers=api.auth("t", "viewer"))
    assert assert_problem(r, 400)["path"] == "date"


def test_a_rules_date_as_the_api_writes_it(api: Api) -> None:
    r = api.client.get("/v1/rules", params={"date": "2025-06-01"}, headers=api.auth("t", "viewer"))
    assert r.status_code == 200 and r.json()


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"date": 1748736000}, "date"),
        ({"date": "1900-01-01"}, "date"),
        ({"replan": "no"}, "replan"),
        ({"replan": 0}, "replan"),
        ({"all": "yes"}, "all"),
        ({"time_limit": "10"}, "time_limit"),
    ],
)
def test_impact_takes_its_fields_as_written(api: Api, change: dict[str, Any], path: str) -> None:
    body = {"date": "2025-06-01", "replan": False, **change}
    r = api.client.post("/v1/impact", json=body, headers=api.auth("t", "viewer"))
    assert assert_problem(r, 400)["path"] == path


def test_impact_takes_a_whole_number_time_limit(api: Api) -> None:
    body = {"date": "2025-06-01", "replan": False, "time_limit": 10}
    r = api.client.post("/v1/impact", json=body, headers=api.auth("t", "viewer"))
    # the body is valid: what is missing is a recorded plan to re-check
    assert assert_problem(r, 400)["path"] == "plans"


def test_an_admission_date_is_a_date(api: Api) -> None:
    for date in ("1748736000", "1900-01-01"):
        r = api.client.post(
            "/v1/skypilot/policy",
            params={"date": date},
            json={},
            headers=api.auth("t", "viewer"),
        )
        assert assert_problem(r, 400)["path"] == "date"


@pytest.mark.parametrize(
    "body", [{"type": "urn:straits:problem:not-found", "detail": "Not Found"}, None]
)
def test_a_route_the_server_lacks_names_the_url_asked(body: dict[str, Any] | None) -> None:
    from straits.errors import NotFoundError

    request = httpx.Request("GET", "http://s:8000/v1/v1/chips")
    r = (
        httpx.Response(404, json=body, request=request)
        if body
        else httpx.Response(404, request=request)
    )
    exc = error_for(r, "http://s:8000/v1")
    assert isinstance(exc, NotFoundError) and exc.exit_code == 2
    assert "http://s:8000/v1" in str(exc) and "GET /v1/v1/chips" in str(exc)


def test_a_missing_record_keeps_the_servers_words() -> None:
    request = httpx.Request("GET", "http://s/v1/plans/abcd")
    r = httpx.Response(404, json={"detail": "no plan 'abcd'"}, request=request)
    assert str(error_for(r, "http://s")) == "no plan 'abcd'"


def test_every_unknown_query_parameter_is_listed(api: Api) -> None:
    r = api.client.get("/v1/plans?stauts=done&limt=5&stauts=x", headers=api.auth("t", "viewer"))
    body = assert_problem(r, 400)
    assert body["path"] == "stauts" and _paths(body) == ["stauts", "limt"]


def test_check_and_estimate_take_yaml_as_the_cli_does(api: Api) -> None:
    import yaml

    from test_api import ESTIMATE

    headers = {**api.auth("t", "viewer"), "Content-Type": "application/yaml"}
    for path, body in (("/v1/check", DESIGN_REQUEST), ("/v1/estimate", ESTIMATE)):
        as_json = api.client.post(path, json=body, headers=api.auth("t", "viewer"))
        as_yaml = api.client.post(path, content=yaml.safe_dump(body), headers=headers)
        assert as_yaml.status_code == 200 == as_json.status_code, as_yaml.text
        assert as_yaml.json() == as_json.json()
    spec = api.client.get("/openapi.json").json()
    for path in ("/v1/check", "/v1/estimate"):
        assert "application/yaml" in spec["paths"][path]["post"]["requestBody"]["content"]
