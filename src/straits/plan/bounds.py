"""A bound that needs no search: what no plan over the optimizer's choices can beat.

A stage is *placeable alone* when one of its choices could end by its workload's hard deadline
and stay within its budget on an otherwise empty fleet, after its predecessors ended at their
earliest (weights moving in no time). Every plan leaves the other stages unplaced (and their
successors), and a plan that places all the placeable ones pays at least each one's cheapest
such choice (compute and data movement; weights, bought chips and late penalties only add) and
ends no earlier than the latest of their earliest ends. The optimizer takes, lexicographically,
the larger of this and CP-SAT's own bound, so the gap is stated even when the search is cut
short on a large portfolio.

Everything here is optimistic on purpose (exact hours where the model rounds up, a release an
hour early, capacity ignored), so the bound holds for any plan over these choices, including
the greedy plan.
"""

from __future__ import annotations

import math

from straits.plan.greedy import deadline_hours
from straits.plan.portfolio import Portfolio


def standalone_bound(pf: Portfolio, objective: str) -> tuple[int, float]:
    """(stages no plan can place, least score of a plan placing all the others): the score in
    dollars for ``cost``, hours of makespan for ``time``, 0 for weighted completion."""
    impossible = 0
    cost = 0.0
    makespan = 0.0
    for w in pf.sc.workloads:
        due = deadline_hours(pf.sc, w.deadline) if (
            w.deadline is not None and w.deadline_policy == "hard") else math.inf
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
            best_end, best_cost = math.inf, math.inf
            for c in st.choices:
                end = max(after, c.release - 1.0) + c.est.hours
                spend = c.option.cost(c.est) + c.egress
                if end <= due + 1e-6 and spend <= budget + 1e-6:
                    best_end, best_cost = min(best_end, end), min(best_cost, spend)
            if math.isinf(best_end):
                ends[stage.id] = None
                impossible += 1
                continue
            ends[stage.id] = best_end
            cost += best_cost
            makespan = max(makespan, best_end)
    score = cost if objective == "cost" else makespan if objective == "time" else 0.0
    return impossible, score


def stronger(a: tuple[int, float] | None, b: tuple[int, float]) -> tuple[int, float]:
    """The lexicographically larger of two bounds (both hold, so the larger is the tighter)."""
    return b if a is None or b > a else a
