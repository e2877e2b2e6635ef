"""obj51: ``make_plan``'s objective and solver of the wrong kind are a ``RequestError`` naming
the argument, as py50 made its other arguments: an ``int``, ``bytes``, a list or ``None`` was an
``AttributeError`` or a ``TypeError`` from inside the parsers (``'int' object has no attribute
'strip'``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from straits.errors import InputError, RequestError
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "straits" / "examples"


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario(EXAMPLES / "h20-2025.yaml")


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"objective": 5}, "objective"),
        ({"objective": b"cost"}, "objective"),
        ({"objective": ["cost"]}, "objective"),
        ({"objective": float("nan")}, "objective"),
        ({"solver": 5}, "solver"),
        ({"solver": None}, "solver"),
        ({"solver": b"greedy"}, "solver"),
    ],
)
def test_a_goal_of_the_wrong_kind_is_a_request_error(
    scenario: Scenario, kwargs: dict[str, Any], path: str
) -> None:
    with pytest.raises(RequestError) as err:
        make_plan(scenario, **{"solver": "greedy", **kwargs})
    assert err.value.path == path


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [({"objective": "speed"}, "objective"), ({"solver": "fastest"}, "solver")],
)
def test_an_unknown_name_is_an_input_error_naming_it(
    scenario: Scenario, kwargs: dict[str, Any], path: str
) -> None:
    with pytest.raises(InputError) as err:
        make_plan(scenario, **{"solver": "greedy", **kwargs})
    assert err.value.path == path


def test_names_in_any_case_still_plan(scenario: Scenario) -> None:
    plan = make_plan(scenario, objective=" Cost ", solver=" GREEDY ")
    assert plan.solver == "greedy" and plan.objective == "cost"
