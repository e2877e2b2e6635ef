"""The frontier's cost is the plan's cost: rental, data movement and the amortised cost of
bought chips. Before, a point's cost left the purchase out: on the H20 example (chips bought)
the frontier said $6.57M where `straits plan` says $18.35M for the same plan (hostile pass
atk28)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import H20_BEFORE
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.plan.candidates import Candidates
from straits.plan.pareto import frontier
from straits.rules import ruleset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_cheapest_point_costs_what_the_cheapest_plan_costs() -> None:
    """On the H20 example (chips bought, no deadline that the cheapest plan would miss: the
    plan weighs lateness penalties, the frontier trades cost against makespan and leaves the
    choice of a late point to its reader) both are proved optimal and cost the same, up to
    the model's whole dollars. The rules are those of 2025-04-08 (conftest.H20_BEFORE): the
    shipped ones refuse the purchase."""
    sc = load_scenario(EXAMPLES / "h20-2025.yaml")
    rs = ruleset((H20_BEFORE,))
    plan = make_plan(sc, rules=rs, objective="cost", time_limit=20)
    points = frontier(Candidates(sc, rs, regime=sc.regime, date=sc.date), points=2, time_limit=20)
    cheapest = min(points, key=lambda p: p.cost_usd)
    assert plan.status == "optimal" and cheapest.status == "optimal"
    assert cheapest.unplaced == len(plan.unplaced) == 0 and plan.penalty_usd == 0
    assert sum(a.capex_usd for a in plan.assignments) > 0  # the case the frontier got wrong
    assert cheapest.cost_usd == pytest.approx(plan.total_cost_usd, rel=1e-3)
