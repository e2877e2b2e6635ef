"""obj51: a scenario's own ``objective`` is checked when the scenario is read.

Only its form was: a well-formed objective the planner refuses (an unknown name, a zero or
out-of-range weight, a metric named twice) was an error without the file or its line on the
command line (``error: objective: unknown objective 'bogus'``), and over HTTP the plan was
queued (202) and failed in the worker, where the same objective as a query parameter is a 400."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from straits.errors import InputError
from test_api import Api, running_api, scenario_doc
from test_cli_conventions import run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "offshore-2025.yaml"
REFUSED = ["bogus", "cost+0*time", "cost+1e400*time", "cost+cost", "cost+500000.0001*time"]


def _scenario(tmp_path: Path, goal: str) -> Path:
    text = EXAMPLE.read_text()
    assert "\nobjective: cost\n" in text
    path = tmp_path / "s.yaml"
    path.write_text(text.replace("\nobjective: cost\n", f"\nobjective: '{goal}'\n"))
    return path


@pytest.mark.parametrize("goal", REFUSED)
def test_the_command_line_names_the_file_and_line(tmp_path: Path, goal: str) -> None:
    path = _scenario(tmp_path, goal)
    line = path.read_text().splitlines().index(f"objective: '{goal}'") + 1
    r = run("plan", str(path), "-o", "json")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.startswith(f"error: {path}:{line}: objective:"), r.stderr


def test_an_override_still_plans_a_good_scenario(tmp_path: Path) -> None:
    path = _scenario(tmp_path, "cost+80*carbon")
    r = run("plan", str(path), "-o", "json", "--solver", "greedy")
    assert r.returncode == 0, r.stderr


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from running_api(f"sqlite:///{tmp_path / 'api.db'}")


@pytest.mark.parametrize("goal", REFUSED)
def test_the_server_refuses_it_at_once(api: Api, goal: str) -> None:
    doc: dict[str, Any] = scenario_doc(EXAMPLE)
    doc["objective"] = goal
    tenant = doc["workloads"][0].get("tenant", "default")
    before = time.monotonic()
    r = api.client.post(
        "/v1/plans",
        params={"time_limit": 1, "record": "false"},
        json=doc,
        headers=api.auth(tenant, "planner"),
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["path"] == "objective"
    assert problem["line"] is not None
    assert time.monotonic() - before < 30


@pytest.mark.parametrize("goal", REFUSED)
def test_the_python_api_refuses_it_naming_the_field(goal: str) -> None:
    from straits.plan import make_plan

    doc: dict[str, Any] = scenario_doc(EXAMPLE)
    doc["objective"] = goal
    with pytest.raises(InputError) as err:
        make_plan(doc, solver="greedy")  # type: ignore[arg-type]
    assert err.value.path == "objective"
