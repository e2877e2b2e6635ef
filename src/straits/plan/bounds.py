"""A bound that needs no search: what no plan over the optimizer's choices can beat.

A stage is *placeable alone* when one of its choices could end by its workload's hard deadline
and stay within its budget on an otherwise empty fleet, after its predecessors ended at their
earliest (weights moving in no time). Every plan leaves the other stages unplaced (and their
successors), and a plan that leaves no more unplaced places every placeable stage, so it pays
at least each one's cheapest such choice on the objective's additive terms (compute and data
movement, energy, carbon; weights, bought chips and late penalties only add), ends no earlier
than the latest of their earliest ends, and completes each workload no earlier than its
stages' earliest ends. The search takes, lexicographically, the larger of this and CP-SAT's own
bound, so the gap is stated even when the search is cut short on a large portfolio.

Everything here is optimistic on purpose (exact hours where the model rounds up, a release an
hour early, capacity ignored), so the bound holds for any plan over these choices, including
the greedy plan.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from straits.plan.cpsat_model import Score
from straits.plan.objectives import COMPLETION, TIME, Objective
from straits.plan.portfolio import Portfolio
from straits.plan.schedule import StageKey, hard_deadline_hours
from straits.plan.ticks import tick_hours


def standalone_bound(pf: Portfolio, objective: Objective) -> Score:
    """(stages no plan can place, least value of a plan placing all the others)."""
    return _standalone(pf, objective).bound


def placeable(pf: Portfolio, objective: Objective) -> set[StageKey]:
    """The stages that could be placed alone on an empty fleet."""
    return _standalone(pf, objective).placeable


class _Standalone(NamedTuple):
    bound: Score
    placeable: set[StageKey]


def _standalone(pf: Portfolio, objective: Objective) -> _Standalone:
    ok: set[StageKey] = set()
    impossible = 0
    additive = 0.0
    makespan = 0.0
    completion = 0.0
    for w in pf.sc.workloads:
        due = hard_deadline_hours(pf.sc, w)
        budget = w.budget_usd if w.budget_usd is not None else math.inf
        ends: dict[str, float | None] = {}
        for stage in w.topological_stages():
            st = pf.stages.get((w.id, stage.id))
            preds = [ends.get(p) for p in stage.after]
            if st is None or any(p is None for p in preds):
                ends[stage.id] = None
                impossible += 1
                continue
            after = max((p for p in preds if p is not None), default=0.0)
            best_end, best_value = math.inf, math.inf
            for c in st.choices:
                end = max(after, tick_hours(c.release - 1)) + c.est.hours
                spend = c.option.cost(c.est) + c.egress
                if end <= due + 1e-6 and spend <= budget + 1e-6:
                    best_end = min(best_end, end)
                    best_value = min(best_value, objective.additive_value(spend, c.mwh, c.tco2e))
            if math.isinf(best_end):
                ends[stage.id] = None
                impossible += 1
                continue
            ends[stage.id] = best_end
            ok.add((w.id, stage.id))
            additive += best_value
            makespan = max(makespan, best_end)
        done = [e for e in ends.values() if e is not None]
        if done:
            completion += w.weight * max(done)
    value = additive + objective.weight(TIME) * makespan + objective.weight(COMPLETION) * completion
    return _Standalone(Score(impossible, value), ok)


def stronger(a: Score | None, b: Score) -> Score:
    """The lexicographically larger of two bounds (both hold, so the larger is the tighter)."""
    return b if a is None or b > a else a
