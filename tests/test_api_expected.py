"""A query parameter refused by its declared type says what it takes (stop 62): ``expected``
was null on every such 400 (``?risk=P90``, ``?time_limit=0.1``, ``?limit=0``) where the CLI
says ``expected p50 or p90`` (risk51 left it out). It now comes from the validation error's
type and context (``errors.validation_expected``)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from straits.errors import validation_expected


@pytest.fixture(scope="module")
def api(planner_api: tuple[TestClient, dict[str, str]]) -> tuple[TestClient, dict[str, str]]:
    return planner_api


@pytest.mark.parametrize(
    ("method", "url", "path", "expected"),
    [
        ("POST", "/v1/plans?risk=P90", "risk", "'p50' or 'p90'"),
        ("POST", "/v1/plans?risk=", "risk", "'p50' or 'p90'"),
        ("POST", "/v1/plans?regime=none", "regime", "'enacted' or 'ai-diffusion'"),
        ("POST", "/v1/plans?time_limit=0.1", "time_limit", "a number >= 0.5"),
        ("POST", "/v1/plans?time_limit=4000", "time_limit", "a number <= 3600"),
        ("POST", "/v1/plans?seed=-1", "seed", "a number >= 0"),
        ("POST", "/v1/plans?record=maybe", "record", "true or false"),
        ("POST", "/v1/plans?objective=" + "x" * 201, "objective", "at most 200 characters"),
        ("GET", "/v1/plans?limit=0", "limit", "a number >= 1"),
    ],
)
def test_a_refused_query_parameter_says_what_it_takes(
    api: tuple[TestClient, dict[str, str]], method: str, url: str, path: str, expected: str
) -> None:
    client, headers = api
    r = client.request(method, url, headers=headers, content="{}")
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert (body["path"], body["expected"]) == (path, expected)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"type": "missing"}, None),  # a type with nothing to say
        ({"type": "value_error", "ctx": {"error": ValueError("x")}}, None),
        ({"type": "greater_than_equal"}, None),  # no context: no guess
        ({"type": "greater_than_equal", "ctx": {"gt": 1}}, None),  # another context
        ({"type": "literal_error", "ctx": {"expected": "'a' or 'b'"}}, "'a' or 'b'"),
        ({"type": "string_pattern_mismatch", "ctx": {"pattern": "^{x}$"}}, "text matching ^{x}$"),
        ({"type": "string_too_short", "ctx": {"min_length": 1}}, "at least 1 character"),
        ({"type": "string_too_long", "ctx": {"max_length": 1}}, "at most 1 character"),
        ({"type": "string_too_short", "ctx": {"min_length": 4}}, "at least 4 characters"),
    ],
)
def test_expected_of_any_validation_error(error: dict[str, Any], expected: str | None) -> None:
    assert validation_expected(error) == expected


def test_an_empty_idempotency_key_says_one_character(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    """An empty ``Idempotency-Key`` header: 'at least 1 character', not '1 characters'."""
    client, headers = api
    r = client.post("/v1/plans", headers={**headers, "Idempotency-Key": ""}, content="{}")
    assert r.status_code == 400, r.text
    assert (r.json()["path"], r.json()["expected"]) == ("Idempotency-Key", "at least 1 character")
