"""Planning: place every stage on a lawful (site, pool), over capacity and time, and say why
every other option lost."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from straits.model.scenario import Scenario
from straits.plan.candidates import Candidates
from straits.plan.greedy import GreedyPlanner
from straits.plan.optimizer import Progress, optimize
from straits.plan.portfolio import Portfolio
from straits.plan.result import Assignment, Plan, Rejection, StageDiagnosis
from straits.plan.whynot import explain
from straits.rules.engine import RuleSet, ruleset

Solver = Literal["greedy", "cpsat"]
DEFAULT_TIME_LIMIT = 20.0


def make_plan(scenario: Scenario, *, regime: str | None = None, objective: str | None = None,
              rules: RuleSet | None = None, solver: Solver = "cpsat",
              time_limit: float = DEFAULT_TIME_LIMIT, seed: int = 0,
              on_progress: Progress | None = None) -> Plan:
    """Plan ``scenario`` under ``regime`` (default: the scenario's) for ``objective``, with the
    CP-SAT optimizer warm-started by the greedy planner, or with the greedy planner alone."""
    cand = Candidates(scenario, rules or ruleset(), regime=regime or scenario.regime,
                      date=scenario.date)
    goal = objective or scenario.objective
    if solver == "greedy":
        greedy = GreedyPlanner(cand, objective=goal)
        plan = greedy.run()
        if plan.unplaced:
            plan = replace(plan, why_not=explain(Portfolio(cand, greedy), plan, goal))
        return plan
    return optimize(cand, goal, time_limit=time_limit, seed=seed, on_progress=on_progress)


__all__ = ["Assignment", "Plan", "Rejection", "StageDiagnosis", "make_plan"]
