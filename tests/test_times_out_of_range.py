"""Times whose offset takes them out of Python's years (``0001-01-01T00:00:00+01:00`` is
year 0 in UTC, ``9999-12-31T23:59:59-01:00`` year 10000): ``astimezone`` raised
OverflowError, which no handler expected, so a list filter and a plan document holding one
were 500s on the API and tracebacks in the CLI (hostile pass atk79). Every time a user gives
is put in UTC through ``straits.limits.as_utc``, which says so as a ValueError; the CLI's
commands over such a plan document are in test_hostile_plan_documents.py."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from straits.limits import as_utc
from test_api import Api, running_api
from test_cli_conventions import run

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


@pytest.fixture(scope="module")
def plan_doc() -> dict[str, Any]:
    p = run(
        "plan", str(ROOT / "examples" / "offshore-2025.yaml"), "--solver", "greedy", "-o", "json"
    )
    assert p.returncode == 0, p.stderr
    doc: dict[str, Any] = json.loads(p.stdout)
    del doc["id"], doc["digest"]  # an edited plan, made a new one
    return doc


@pytest.mark.parametrize("text", OUTSIDE)
def test_as_utc_says_a_time_outside_python_s_years_is_no_time(text: str) -> None:
    with pytest.raises(ValueError, match="year 1 or after year 9999"):
        as_utc(dt.datetime.fromisoformat(text))


def test_as_utc_takes_a_time_without_a_zone_as_utc() -> None:
    naive = dt.datetime(2025, 6, 1, 12)
    assert as_utc(naive) == naive.replace(tzinfo=dt.UTC)
    shifted = dt.datetime.fromisoformat("2025-06-01T12:00:00+05:00")
    assert as_utc(shifted).isoformat() == "2025-06-01T07:00:00+00:00"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("since", "9999-12-31T23:59:59-23:59"),
        ("until", "0001-01-01T00:00:00+00:01"),
        ("since", "0001-01-01T00:00:00+01:00"),
        ("until", "9999-12-31T23:59:59-01:00"),
    ],
)
def test_a_list_filter_outside_python_s_years_is_a_400(api: Api, name: str, value: str) -> None:
    r = api.client.get("/v1/plans", params={name: value}, headers=api.auth("t1", "viewer"))
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["path"] == name and "9999" in r.json()["detail"]


def test_list_filters_at_the_ends_of_python_s_years_are_taken(api: Api) -> None:
    h = api.auth("t1", "viewer")
    for params in (
        {"since": "0001-01-01T00:00:00+00:00"},
        {"until": "9999-12-31T23:59:59Z"},
        {"since": "0001-01-01T00:00:00-01:00", "until": "9999-12-31T23:59:59+01:00"},
    ):
        r = api.client.get("/v1/plans", params=params, headers=h)
        assert r.status_code == 200 and r.json() == [], (params, r.text)


@pytest.mark.parametrize("field", ["start", "end"])
@pytest.mark.parametrize("text", OUTSIDE)
def test_a_plan_document_with_such_a_time_is_a_400_on_exports_and_impact(
    api: Api, plan_doc: dict[str, Any], field: str, text: str
) -> None:
    doc = copy.deepcopy(plan_doc)
    doc["assignments"][0][field] = text
    h = api.auth("t1", "planner")
    exported = api.client.post("/v1/exports", params={"to": "slurm"}, json=doc, headers=h)
    impact = api.client.post(
        "/v1/impact",
        json={"date": "2025-07-01", "documents": [doc], "replan": False},
        headers=h,
    )
    for r in (exported, impact):
        assert r.status_code == 400, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert f"assignments[0].{field}" in r.text
        assert "outside the dates Straits plans" in r.json()["detail"]
