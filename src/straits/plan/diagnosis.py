"""Diagnosis of a stage after the optimizer changed its placement.

The greedy planner explains every option of every stage (rules, memory, capacity, location,
deadline, budget, cost, time). When CP-SAT picks another option, those reasons still hold for
the options the rules or the hardware rule out; the options that merely lost on the objective
are re-pointed at the new choice, and the greedy choice becomes one of them.
"""

from __future__ import annotations

from dataclasses import replace

from straits.plan.greedy import GreedyPlanner
from straits.plan.result import Assignment, Rejection, StageDiagnosis

LOST = ("cost", "time", "capacity", "deadline", "budget")


def rediagnose(old: StageDiagnosis, now: Assignment | None, greedy: GreedyPlanner,
               objective: str) -> StageDiagnosis:
    if (now.option_label if now else None) == old.chosen:
        return old
    before = greedy.state.placed.get((old.workload, old.stage))
    rejections: list[Rejection] = []
    for r in old.rejections:
        if now is not None and r.label == now.option_label:
            continue  # the new choice
        if now is not None and r.reason in ("cost", "time"):
            rejections.append(replace(r, note=f"lost to {now.option_label} on {r.reason}",
                                      cite=None))
        else:
            rejections.append(r)
    if before is not None:
        a = before[0]
        if now is None:
            reason, note = "capacity", "its chips went to other stages in the optimized plan"
        elif objective == "cost" and a.cost_usd + a.penalty_usd > now.cost_usd + now.penalty_usd:
            reason = "cost"
            note = (f"${a.cost_usd + a.penalty_usd - now.cost_usd - now.penalty_usd:,.0f} more "
                    f"than {now.option_label}")
        elif objective != "cost" and a.end_h > now.end_h:
            reason, note = "time", f"ends {a.end_h - now.end_h:,.1f} h after {now.option_label}"
        else:
            reason = "capacity"
            note = f"better on its own, but {now.option_label} suits the whole portfolio"
        rejections.append(Rejection(a.site, a.chip, reason, note, bought=a.bought))
    return replace(old, chosen=now.option_label if now else None, rejections=tuple(rejections))
