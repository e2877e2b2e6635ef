"""Why a stage could not be placed: the smallest set of constraints that blocks it.

For an unplaced stage, the rest of the plan is held fixed and the stage's workload is modelled
alone, with each constraint group behind an enable literal: the workload's deadline, its budget,
and the capacity other stages take on each pool it could use. Requiring the stage placed, CP-SAT
returns a set of those literals that cannot all hold (sufficient assumptions for
infeasibility); dropping one literal at a time while the rest still conflict shrinks it to a
minimal set. An empty set means no lawful option can host the stage at all, and the diagnosis
says which rules rule them out, and which authorizations would open them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ortools.sat.python import cp_model

from straits.model.scenario import Scenario
from straits.plan.cpsat_model import ModelTooLarge, build, new_solver
from straits.plan.objectives import Objective
from straits.plan.portfolio import Portfolio
from straits.plan.reasons import budget_usd
from straits.plan.result import Plan, StageDiagnosis, WhyNot
from straits.plan.ticks import ticks_down, ticks_up

#: unplaced stages explained per plan, and solver seconds per question
MAX_EXPLAINED = 5
SECONDS = 2.0


def _describe(kind: str, name: str, pf: Portfolio) -> str:
    if kind == "deadline":
        w = pf.sc.workload(name)
        return f"deadline {w.deadline}"
    if kind == "budget":
        w = pf.sc.workload(name)
        return f"budget {budget_usd(w.budget_usd or 0.0)}"
    site_chip = name.split("+bought:")[0]
    return f"capacity of {site_chip}" + (" (bought)" if "+bought:" in name else "")


def _requirements(d: StageDiagnosis) -> tuple[str, ...]:
    """Authorizations that would make blocked options lawful (conditional, not denied)."""
    return tuple(
        sorted({c.requires for c in d.citations if c.requires and c.outcome == "conditional"})
    )


def to_explain(plan: Plan, sc: Scenario) -> list[StageDiagnosis]:
    """The unplaced stages worth explaining: the first whose predecessors were all placed
    (the others are explained at the predecessor that could not be)."""
    placed = {(a.workload, a.stage) for a in plan.assignments}
    out = []
    for d in plan.unplaced:
        stage = sc.workload(d.workload).stage(d.stage)
        if all((d.workload, p) in placed for p in stage.after):
            out.append(d)
        if len(out) >= MAX_EXPLAINED:
            break
    return out


def explain(
    pf: Portfolio,
    plan: Plan,
    objective: Objective,
    *,
    stop_at: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[WhyNot, ...]:
    """Why-not explanations for the stages :func:`to_explain` picks, as many as fit before
    ``stop_at`` (each question's solves get what is left, at most :data:`SECONDS`)."""
    out: list[WhyNot] = []
    for d in to_explain(plan, pf.sc):
        if clock() >= stop_at:
            break
        out.append(_explain_one(pf, plan, d, objective, lambda: min(SECONDS, stop_at - clock())))
    return tuple(out)


def _explain_one(
    pf: Portfolio, plan: Plan, d: StageDiagnosis, objective: Objective, seconds: Callable[[], float]
) -> WhyNot:
    requires = _requirements(d)
    tail = f"; lawful elsewhere only with {', '.join(requires)}" if requires else ""
    st = pf.stages.get((d.workload, d.stage))
    if st is None or not st.choices:
        text = f"{d.workload}/{d.stage}: {d.summary()}{tail}"
        return WhyNot(d.workload, d.stage, (), requires, text)
    resources = {c.option.key for c in st.choices}
    fixed = [
        (
            f"{a.site}/{a.chip}"
            + (f"+bought:{pf.sc.workload(a.workload).tenant}" if a.bought else ""),
            ticks_down(a.start_h),
            ticks_up(a.end_h),
            a.chips,
        )
        for a in plan.assignments
        if a.workload != d.workload
    ]
    fixed = [f for f in fixed if f[0] in resources]
    try:
        pm = build(pf, objective, with_groups=True, only={d.workload}, fixed=fixed)
    except ModelTooLarge:
        return WhyNot(
            d.workload, d.stage, (), requires, f"{d.workload}/{d.stage}: {d.summary()}{tail}"
        )
    pm.model.add(pm.u[(d.workload, d.stage)] == 0)
    named: dict[int, tuple[str, str]] = {}
    lits: dict[int, cp_model.IntVar] = {}
    for kind, table in (
        ("deadline", pm.groups.deadline),
        ("budget", pm.groups.budget),
        ("capacity", pm.groups.capacity),
    ):
        for name, lit in table.items():
            named[lit.index] = (kind, name)
            lits[lit.index] = lit
    core = _core(pm.model, lits, seconds)
    if core is None:
        text = (
            f"{d.workload}/{d.stage}: placeable if the rest of the plan stays as it is; "
            f"the optimizer ran out of time before finding it"
        )
        return WhyNot(d.workload, d.stage, (), requires, text)
    if not core:
        text = f"{d.workload}/{d.stage}: {d.summary()}{tail}"
        return WhyNot(d.workload, d.stage, (), requires, text)
    parts = tuple(_describe(*named[i], pf) for i in core)
    text = f"{d.workload}/{d.stage}: {' and '.join(parts)} conflict{tail}"
    return WhyNot(d.workload, d.stage, parts, requires, text)


def _solve(
    model: cp_model.CpModel, assumptions: list[cp_model.IntVar], seconds: float
) -> tuple[cp_model.CpSolverStatus, list[int]]:
    model.clear_assumptions()
    model.add_assumptions(assumptions)
    if seconds <= 0.01:
        return cp_model.UNKNOWN, []
    solver = new_solver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = 1
    status = solver.solve(model)
    core = (
        list(solver.sufficient_assumptions_for_infeasibility())
        if status == cp_model.INFEASIBLE
        else []
    )
    return status, core


def _core(
    model: cp_model.CpModel, lits: dict[int, cp_model.IntVar], seconds: Callable[[], float]
) -> list[int] | None:
    """A minimal set of enable literals (by index) that cannot all hold; [] when the stage
    cannot be placed even with none of them; None when it can be placed with all of them."""
    status, core = _solve(model, list(lits.values()), seconds())
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    if status != cp_model.INFEASIBLE:
        return sorted(lits)  # undecided in time: report everything involved
    core = [c for c in core if c in lits]
    if not core:
        return []
    for i in list(core):  # deletion: drop what the conflict does not need
        trial = [c for c in core if c != i]
        status, _ = _solve(model, [lits[c] for c in trial], seconds())
        if status == cp_model.INFEASIBLE:
            core = trial
    return sorted(core)
