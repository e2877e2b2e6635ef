"""Planning: place every stage on a lawful (site, pool), over capacity and time, and say why
every other option lost."""

from __future__ import annotations

from typing import Literal

from straits.model.scenario import Scenario
from straits.plan.greedy import GreedyPlanner
from straits.plan.result import Assignment, Plan, Rejection, StageDiagnosis
from straits.rules.engine import RuleSet, ruleset

Solver = Literal["greedy"]


def make_plan(scenario: Scenario, *, regime: str | None = None, objective: str | None = None,
              rules: RuleSet | None = None, solver: Solver = "greedy") -> Plan:
    """Plan ``scenario`` under ``regime`` (default: the scenario's) for ``objective``."""
    planner = GreedyPlanner(
        scenario, rules or ruleset(), regime=regime or scenario.regime,
        objective=objective or scenario.objective, date=scenario.date)
    return planner.run()


__all__ = ["Assignment", "Plan", "Rejection", "StageDiagnosis", "make_plan"]
