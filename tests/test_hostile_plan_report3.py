"""The plan, its JSON contract and its report as an attacker sees them, a third pass (atk42)."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.loading import load_scenario
from straits.plan import make_plan


@pytest.mark.parametrize("objective", ["time", "completion"])
def test_a_plan_proved_optimal_is_never_worse_than_the_greedy_baseline(
    example_path: Path, objective: str
) -> None:
    """`plan examples/offshore-2025.yaml --objective time` said "CP-SAT: plan proved optimal,
    gap 0.00%" with a makespan of 2,154.567 h while its own greedy baseline made 2,154.538 h:
    CP-SAT's model rounds each duration up to a whole minute, so its optimum was a worse plan
    than the greedy one, and its bound (2,154.567) was above a value the plan itself showed was
    reachable. The better plan stands now, and the bound is never above either."""
    plan = make_plan(load_scenario(example_path), objective=objective, time_limit=5)
    assert plan.objective_value is not None and plan.baseline_value is not None
    assert len(plan.unplaced) == plan.baseline_unplaced == 0
    assert plan.objective_value <= plan.baseline_value + 1e-6
    if plan.bound_value is not None:
        assert plan.bound_value <= plan.objective_value + 1e-6
