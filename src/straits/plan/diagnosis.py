"""Diagnosis of a stage after a search changed its placement.

The greedy planner explains every option of every stage (rules, memory, capacity, location,
deadline, budget, the objective). When the search picks another option, those reasons still
hold for the options the rules or the hardware rule out; the options that merely lost on the
objective are re-pointed at the new choice, and the greedy choice becomes one of them.
"""

from __future__ import annotations

from dataclasses import replace

from straits.model.scenario import Workload
from straits.plan.objectives import Objective, StageMetrics
from straits.plan.reasons import ReasonCode
from straits.plan.result import Assignment, Rejection, StageDiagnosis


def _metrics(a: Assignment) -> StageMetrics:
    return StageMetrics(
        a.cost_usd, a.penalty_usd, a.end_h, (a.energy_kwh or 0.0) / 1000.0, a.tco2e or 0.0
    )


def rediagnose(
    old: StageDiagnosis,
    now: Assignment | None,
    before: Assignment | None,
    w: Workload,
    objective: Objective,
) -> StageDiagnosis:
    """``old`` (the greedy plan's diagnosis, whose choice was ``before``) for the plan that
    puts the stage at ``now`` (None: unplaced)."""
    if (now.option_label if now else None) == old.chosen:
        return old
    rejections: list[Rejection] = []
    for r in old.rejections:
        if now is not None and r.label == now.option_label:
            continue  # the new choice
        if now is not None and r.code.lost_to_better:
            rejections.append(
                replace(r, note=f"lost to {now.option_label} on {r.code.label}", cite=None)
            )
        else:
            rejections.append(r)
    if before is not None:
        if now is None:
            code, note = ReasonCode.CAPACITY, "its chips went to other stages in the searched plan"
        elif objective.primary(_metrics(before), w) > objective.primary(_metrics(now), w) + 1e-6:
            code, note, _ = objective.lost(_metrics(before), _metrics(now), w, now.option_label)
        else:
            code = ReasonCode.CAPACITY
            note = f"better on its own, but {now.option_label} suits the whole portfolio"
        rejections.append(Rejection(before.site, before.chip, code, note, bought=before.bought))
    return replace(old, chosen=now.option_label if now else None, rejections=tuple(rejections))
