"""obj51: a weighted sum's weight is a whole number of thousandths, judged on the text.

The check compared the weight times 1,000 with its nearest integer within a relative 1e-9, so
near the top of the range a weight finer than 0.001 passed (``cost+500000.0001*time`` was
planned, its model counting $500,000 an hour while the plan's value priced $500,000.0001)."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.errors import InputError
from straits.plan.objectives import objective
from test_cli_conventions import run

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "offshore-2025.yaml")


@pytest.mark.parametrize(
    "goal",
    [
        "cost+500000.0001*time",
        "cost+999999.9995*carbon",
        "cost+100000.00001*energy",
        "cost+50000.0000001*completion",
        "0.0010000000000000001*cost",
        "cost+1.0000000000000000001e3*time",
    ],
)
def test_a_weight_finer_than_a_thousandth_is_refused_at_any_size(goal: str) -> None:
    with pytest.raises(InputError) as err:
        objective(goal)
    assert err.value.path == "objective"


@pytest.mark.parametrize(
    ("goal", "weight"),
    [
        ("cost+999999.999*time", 999999.999),
        ("cost+1000000.000000*time", 1e6),
        ("cost+0.001*time", 0.001),
        ("cost+1e-3*time", 0.001),
        ("cost+1.5e2*carbon", 150.0),
        ("cost+12345.678*energy", 12345.678),
        ("cost+5.*time", 5.0),
        ("cost+0.0010*time", 0.001),
    ],
)
def test_a_whole_number_of_thousandths_is_taken(goal: str, weight: float) -> None:
    got = objective(goal)
    assert got.terms[-1][1] == weight


@pytest.mark.parametrize("goal", ["cost+500000.0001*time", "cost+999999.9995*carbon"])
def test_a_refused_weight_is_exit_2_naming_objective_on_the_command_line(goal: str) -> None:
    r = run("plan", EXAMPLE, "--objective", goal, "-o", "json")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert "--objective" in r.stderr and "500000.0001" not in r.stdout, r.stderr
