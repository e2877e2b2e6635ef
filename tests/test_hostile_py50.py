"""py50: the same question through the Python API, the CLI and the server; the public
functions a library user calls (``straits.plan.make_plan``) keep to the one exception tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.errors import RequestError
from straits.loading import load_scenario
from straits.plan import make_plan

EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "straits" / "examples"


@pytest.fixture(scope="module")
def scenario():  # type: ignore[no-untyped-def]
    return load_scenario(EXAMPLES / "offshore-2025.yaml")


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"regime": "diffusion"}, "regime"),  # was pydantic's ValidationError
        ({"time_limit": -1}, "time_limit"),  # was a ValueError
        ({"time_limit": float("nan")}, "time_limit"),
        ({"rules": "packs"}, "rules"),  # was an AttributeError
        ({"seed": "7"}, "seed"),  # was taken and ignored
    ],
)
def test_make_plan_refuses_arguments_of_the_wrong_kind(scenario, kwargs, path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestError) as err:
        make_plan(scenario, solver="greedy", **kwargs)
    assert err.value.path == path


def test_make_plan_refuses_a_scenario_that_is_none() -> None:
    with pytest.raises(RequestError) as err:
        make_plan(None)  # type: ignore[arg-type]
    assert err.value.path == "scenario"
