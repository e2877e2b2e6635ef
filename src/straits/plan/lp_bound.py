"""A capacity-aware bound: the linear relaxation of choosing, with each pool's chip-hours.

Where :mod:`straits.plan.alone` drops every coupling between workloads, this keeps the one
that costs money at scale: the pools' capacity. A linear program (GLOP) takes, per stage, a
fraction of each of its choices that could run alone (:class:`~straits.plan.alone.Window`) and
a fraction unplaced, summing to one; a successor is at least as unplaced as its predecessors;
each workload keeps within its budget and leaves at least as many stages unplaced as it must
alone. Per pool and per hard deadline ``T`` met on it, the chip-hours that must be spent in
``[0, T]`` fit the chip-hours the pool has there (its availability windows included): a choice
that must end by ``T`` spends all its chip-hours there, one due later at least what it cannot
push past ``T``. Per pool and per earliest start ``a``, the same in ``[a, T]`` for the choices
that cannot start before ``a`` (off by default, :data:`straits.plan.lp_rows.STARTS`: on the
benchmark's portfolios it moved the bound by 0.01% and took 25 times as long). Deadlines are
rounded up to a week in these rows (:data:`straits.plan.lp_rows.DUE_GRID_H`), which weakens
them a little and makes far fewer of them. The rows are built only for the pools whose
choices can compete (:func:`straits.plan.lp_rows.needs`), and a choice that one on a pool
without rows, or one on the same pool, dominates is left out (:func:`_undominated`): neither
changes the LP's optimum.

A soft deadline costs a penalty per hour late, which capacity can force. So a soft-deadline
workload's choices are split by how late the stage ends (:data:`LATE_STEPS_H`: on time, within a
week, a month, ... two years, later): each part is due at its latest end in the capacity rows
and pays the penalty of its least lateness; the workload pays at least the most any of its
stages' parts does. Every plan's choice falls in exactly one part, so this too is a relaxation.

When the count is known to be the workloads' own before the LP is built (the caller's plan
leaves no more unplaced, or the caller asks for the bound at that count, ``own_count``: a plan
that leaves more is lexicographically above it at any value), every plan it bounds places
every stage of a workload whose own optimum leaves only the stages with no window at all
unplaced. Then a stage must end early enough for its successors to run after it
(:func:`_tails`): its choices are due that much earlier in the capacity rows (a choice that
cannot end in time is dropped), and a soft-deadline workload's lateness is counted from the
stage's end plus that tail.

Bought chips cost their capex once per pool, which no choice's value holds (the workloads
alone leave it out): per pool of bought chips the LP buys a share of its chips, at least each of
its columns' chips times the column, at each chip's amortized price (:func:`_capex_rows`; every
plan buys at least as many as its widest run there takes). A choice on bought chips therefore
dominates no other (:func:`_undominated`), and on a competing pool of bought chips a choice
dominates another on it only with no more chips too.

Lexicographic, as the model: first the fewest unplaced stages (the LP's, rounded up, or the
workloads' own, whichever is larger), then the least value with that many unplaced. When that
count is the workloads' own, each workload also pays at least its own optimum (every plan with
that count leaves each workload exactly its own fewest, :mod:`straits.plan.alone`), so this
bound is never below the alone one.

Every constraint is one every plan satisfies (integral choices, exact hours), so the optimum
bounds every plan over the optimizer's choices; only an optimal LP answer is used (a feasible
one bounds nothing), with a relative margin for GLOP's tolerances.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from straits.model.scenario import Workload
from straits.plan.alone import AloneBound, Window, WorkloadOptimum
from straits.plan.cpsat_model import Score
from straits.plan.lp_rows import Use, capacity_rows, dominated, ends_of, needs
from straits.plan.objectives import COST
from straits.plan.options import capex_share, pool_steps, procured_steps
from straits.plan.portfolio import Portfolio
from straits.plan.schedule import EPS, StageKey, deadline_hours

#: relative margin taken off the LP's optimum (GLOP's primal and dual tolerances are 1e-7)
MARGIN = 1e-6
#: drop the columns another choice dominates (:func:`_undominated`: the optimum is the same)
PRUNE = True
#: and, on a competing pool, those another on the same pool dominates (:func:`lp_rows.dominated`)
PRUNE_SAME_POOL = True
#: GLOP's primal simplex: on the 1,000 x 200 benchmark's four LPs (est40's estimates) it solves
#: in 0.35-5.1 s where the dual took 2.3-10.4 s, to the same optima (the dual was chosen when it
#: took 2.9 s against 4.0 s on an earlier model's LP; docs/architecture.md, twenty-first pass)
PARAMS = "use_dual_simplex: false"
#: how late (hours) a soft-deadline workload's stage may end, in parts (see :func:`_lateness`)
LATE_STEPS_H = (
    *(24.0 * d for d in (0, 7, 30, 91, 182, 273, 365, 456, 547, 730)),
    math.inf,
)


class _Choice(NamedTuple):
    """One part of one choice of a stage, before its column is made."""

    res: str
    use: Use
    value: float
    spend: float
    """its share of the workload's budget"""
    penalty: float
    """the least lateness penalty it pays"""
    at: int = 0
    """its number among its pool's choices (its row in :func:`~straits.plan.lp_rows.needs`)"""


class _Stage(NamedTuple):
    key: StageKey
    one: Any
    """the row its choices and its unplaced share sum to one in"""
    budget: Any
    values: list[tuple[Any, float]]
    """the workload's (column, value) terms"""
    late: list[tuple[Any, float]] | None
    choices: list[_Choice]


def _undominated(
    choices: list[_Choice], competing: Mapping[str, Any], bought: frozenset[str] = frozenset()
) -> list[_Choice]:
    """A stage's choices, less those that another one dominates, so that the LP's optimum is
    the same without them (moving the dominated one's share onto the other keeps every row
    and costs no more). ``competing``: per pool with capacity rows, which of its choices
    (by :attr:`_Choice.at`) another on the same pool dominates.

    * On a pool without capacity rows, one that is no dearer, uses no more of the budget and
      is no more late (such a column sits in the stage's row, its workload's budget, value and
      lateness rows only) dominates any other choice, on such a pool or on a competing one
      (whose columns only add to the pool's rows: each a ``<=`` row, or a running total read
      by such rows).
    * On a competing pool, another choice of the stage on the same pool that is also no
      larger in any of the pool's windows that can bind
      (:func:`~straits.plan.lp_rows.dominated`).

    A choice on a pool of ``bought`` chips also pays for them (the capex rows): it dominates
    none, and another dominates it as any other."""
    free = sorted(
        (c for c in choices if c.res not in competing),
        key=lambda c: (c.value, c.spend, c.penalty),
    )
    best: list[_Choice] = []
    for c in free:
        if c.res not in bought and not any(
            b.spend <= c.spend and b.penalty <= c.penalty for b in best
        ):
            best.append(c)

    def beaten(c: _Choice) -> bool:
        return any(
            b.value <= c.value and b.spend <= c.spend and b.penalty <= c.penalty for b in best
        )

    return (
        [c for c in choices if c.res in competing and not competing[c.res][c.at] and not beaten(c)]
        + best
        + [c for c in free if c.res in bought and not beaten(c)]
    )


def _soft_deadline(pf: Portfolio, w: Workload) -> tuple[float, float]:
    """A soft-deadline workload's deadline (hours) and its penalty per hour late in the
    objective's unit; ``(inf, 0)`` for the others."""
    if w.deadline is None or w.deadline_policy == "hard" or not w.late_penalty_usd_per_day:
        return math.inf, 0.0
    rate = pf.objective.weight(COST) * w.late_penalty_usd_per_day / 24.0
    return deadline_hours(pf.sc, w.deadline), rate * (1 - MARGIN)


def _lateness(win: Window, soft_due: float) -> list[tuple[float, float]]:
    """A soft-deadline workload's choice, split by how late the stage ends (every plan's
    choice falls in exactly one part): per part, the least lateness (hours) and the latest
    end (the capacity rows count the part as due then)."""
    least = max(0.0, win.earliest + win.hours - soft_due)
    out = []
    lower = 0.0
    for upper in LATE_STEPS_H:
        if least <= upper:
            out.append((max(lower, least), min(win.due, soft_due + upper)))
        lower = upper
    return out


def _tails(w: Workload, opt: WorkloadOptimum) -> dict[str, float]:
    """Per stage, the hours that must follow its end when all its successors with a window
    are placed: the longest chain of successors, each at its shortest choice (weights in
    transit counted as nothing)."""
    succ: dict[str, list[str]] = {}
    for s in w.stages:
        for p in s.after:
            succ.setdefault(p, []).append(s.id)
    tail: dict[str, float] = {}
    for s in reversed(w.topological_stages()):
        tail[s.id] = max(
            (
                min(x.hours for x in opt.windows[t]) + tail[t]
                for t in succ.get(s.id, [])
                if opt.windows.get(t)
            ),
            default=0.0,
        )
    return tail


def _limit(lp: object, seconds: float) -> None:
    if math.isfinite(seconds):
        lp.SetTimeLimit(max(1, int(seconds * 1000)))  # type: ignore[attr-defined]


def lp_bound(
    pf: Portfolio,
    alone: AloneBound,
    *,
    plan_unplaced: int | None = None,
    stop_at: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
    guide: dict[StageKey, dict[str, float]] | None = None,
    own_count: bool = False,
    shares: dict[str, float] | None = None,
) -> Score | None:
    """The LP bound (see the module's text), or None when it cannot be had in time.

    ``guide``, when given, is filled with the LP's answer: per stage, the share of it each
    pool takes (for the search's ``guided`` neighbourhoods, :mod:`straits.plan.lns`).
    ``shares``, when given, is filled with each workload's share of the LP's value (its ``z``,
    in the model's units: for the ``split`` neighbourhoods).

    ``plan_unplaced``: how many stages a plan over the same choices leaves unplaced,
    when the caller has one. When the workloads alone already leave as many, the LP cannot
    count more (that plan is one of its solutions), so its first solve is skipped.

    ``own_count``: skip the first solve in any case and bound the value of the plans that
    leave exactly the workloads' own fewest unplaced (:data:`AloneBound.bound`'s count). That
    is a bound lexicographically whatever the caller's plan leaves: no plan leaves fewer, and
    a plan that leaves more is worse than the bound at any value. It costs one solve instead
    of two (on the 1,000 x 200 benchmark 9 s instead of 76 s), and it is None (no bound)
    when capacity lets no plan leave that few."""
    import numpy as np
    from ortools.linear_solver import pywraplp

    seconds = stop_at - clock()
    if seconds < 0.2:
        return None
    lp = pywraplp.Solver.CreateSolver("GLOP")
    if lp is None:  # pragma: no cover - OR-Tools ships GLOP
        return None
    inf = lp.infinity()
    units: list[Any] = []
    value_terms: dict[str, list[tuple[Any, float]]] = {}
    late_terms: dict[str, list[list[tuple[Any, float]]]] = {}
    """per soft-deadline workload, per stage: (choice, the least penalty it pays)"""
    uses: dict[str, list[Use]] = {}
    costs: dict[str, list[tuple[float, float, float]]] = {}
    """per pool, its choices' value, budget share and least lateness penalty"""
    picks: list[tuple[Any, StageKey, str]] = []
    pending: list[_Stage] = []
    # the count is the workloads' own: each leaves exactly its own fewest unplaced
    sure = own_count or (plan_unplaced is not None and alone.bound.unplaced >= plan_unplaced)
    for w in pf.sc.workloads:
        opt = alone.workloads[w.id]
        forced = sum(1 for s in w.stages if not opt.windows.get(s.id))
        # all its stages with a window are placed: successors must fit after each
        tails = _tails(w, opt) if sure and opt.unplaced == forced else {}
        u: dict[str, Any] = {}
        # rows scaled to ones (GLOP's tolerances are absolute): spend / budget <= 1
        budget = lp.Constraint(-inf, 1.0) if w.budget_usd else None
        mine = value_terms.setdefault(w.id, [])
        soft_due, rate = _soft_deadline(pf, w)
        for stage in w.topological_stages():
            windows = opt.windows.get(stage.id, [])
            if not windows:
                continue  # unplaced in every plan: counted by the alone bound
            st = pf.stages[(w.id, stage.id)]
            un = lp.NumVar(0.0, 1.0, "")
            u[stage.id] = un
            one = lp.Constraint(1.0, 1.0)
            one.SetCoefficient(un, 1.0)
            late_here: list[tuple[Any, float]] | None = None
            if rate > 0:
                late_here = []
                late_terms.setdefault(w.id, []).append(late_here)
            tail = tails.get(stage.id, 0.0)
            here = _Stage((w.id, stage.id), one, budget, mine, late_here, [])
            for win in windows:
                c = st.choices[win.choice]
                if tail > 0:
                    win = win._replace(due=win.due - tail)
                    if win.earliest + win.hours > win.due + EPS:
                        continue  # its successors could not end in time after it
                for least_late, due in (
                    _lateness(win, soft_due - tail) if rate > 0 else [(0.0, win.due)]
                ):
                    spend = win.spend / w.budget_usd if w.budget_usd else 0.0
                    use = Use(None, len(units), c.est.chips, win.earliest, win.hours, due)
                    mine_here = uses.setdefault(c.option.key, [])
                    ch = _Choice(
                        c.option.key, use, win.value, spend, rate * least_late, len(mine_here)
                    )
                    here.choices.append(ch)
                    mine_here.append(use)
                    costs.setdefault(c.option.key, []).append((ch.value, spend, ch.penalty))
            pending.append(here)
            for p in stage.after:
                if p in u:  # as unplaced as its predecessors
                    after = lp.Constraint(0.0, inf)
                    after.SetCoefficient(un, 1.0)
                    after.SetCoefficient(u[p], -1.0)
            units.append(un)
        if u and opt.unplaced > forced:
            least = lp.Constraint(opt.unplaced - forced, inf)
            for un in u.values():
                least.SetCoefficient(un, 1.0)
    # only the pools whose choices can compete get capacity rows; the others' choices of a
    # stage are columns alike but for value, spend and lateness: only the undominated ones
    steps_of: dict[str, list[tuple[float, int]]] = {}
    ends: dict[str, list[float]] = {}
    beaten: dict[str, Any] = {}
    for res, items in uses.items():
        if clock() > stop_at:
            return None
        o = pf.option_of(res)
        steps = procured_steps(o.pool) if o.procured else pool_steps(pf.sc, o.pool)
        ends_here = ends_of(items)  # every window, whichever choices are left out
        if (need := needs(items, steps, ends_here)) is not None:
            steps_of[res], ends[res] = steps, ends_here
            numbers = np.fromiter((u.stage for u in items), dtype=int, count=len(items))
            if o.procured:  # the capex rows read each choice's chips too
                need = np.hstack([need, np.array([[u.chips] for u in items], dtype=float)])
            beaten[res] = (
                dominated(costs[res], numbers, need)
                if PRUNE_SAME_POOL
                else np.zeros(len(items), dtype=bool)
            )
    kept: dict[str, list[Use]] = {res: [] for res in steps_of}
    bought = frozenset(res for res in uses if pf.option_of(res).procured)
    widths: dict[str, list[tuple[Any, int]]] = {}
    """per pool of bought chips, its columns and their chips (the capex rows)"""
    for here in pending:
        for ch in _undominated(here.choices, beaten, bought) if PRUNE else here.choices:
            x = lp.NumVar(0.0, 1.0, "")
            if ch.res in bought:
                widths.setdefault(ch.res, []).append((x, ch.use.chips))
            here.one.SetCoefficient(x, 1.0)
            if here.budget is not None:
                here.budget.SetCoefficient(x, ch.spend)
            here.values.append((x, ch.value))
            picks.append((x, here.key, ch.res))
            if here.late is not None and ch.penalty > 0:
                here.late.append((x, ch.penalty))
            if ch.res in kept:
                kept[ch.res].append(ch.use._replace(var=x))
    for res, items in kept.items():
        if clock() > stop_at:
            return None
        capacity_rows(lp, inf, items, steps_of[res], ends[res])
    forced_total = sum(
        1 for w in pf.sc.workloads for s in w.stages if not alone.workloads[w.id].windows.get(s.id)
    )
    objective = lp.Objective()
    objective.SetMinimization()
    if sure:
        count = alone.bound.unplaced
    else:  # first the fewest unplaced stages
        for un in units:
            objective.SetCoefficient(un, 1.0)
        if _solve(lp, stop_at, clock) != pywraplp.Solver.OPTIMAL:
            return None
        least_unplaced = forced_total + math.ceil(objective.Value() - 1e-6)
        count = max(least_unplaced, alone.bound.unplaced)
    # then the least value with that many unplaced
    most = lp.Constraint(-inf, count - forced_total)
    for un in units:
        most.SetCoefficient(un, 1.0)
        objective.SetCoefficient(un, 0.0)
    # values in units of the largest workload's (GLOP's tolerances are absolute)
    scale = max(
        [
            1e-9,
            *(abs(v) for t in value_terms.values() for _, v in t),
            *(abs(alone.workloads[wid].value) for wid in value_terms),
        ]
    )
    zs: dict[str, Any] = {}
    for wid, terms in value_terms.items():
        floor = alone.workloads[wid].value / scale if count == alone.bound.unplaced else 0.0
        z = zs[wid] = lp.NumVar(0.0, inf, "")
        objective.SetCoefficient(z, 1.0)
        pays = lp.Constraint(floor, inf)  # z >= the workload's own optimum (see above)
        pays.SetCoefficient(z, 1.0)
        if terms:
            pays = lp.Constraint(0.0, inf)  # z >= its choices' values
            pays.SetCoefficient(z, 1.0)
            for x, v in terms:
                pays.SetCoefficient(x, -v / scale)
            if late_terms.get(wid):
                # the workload's penalty: at least what its latest stage's lateness costs
                late = lp.NumVar(0.0, inf, "")
                pays.SetCoefficient(late, -1.0)
                for stage_terms in late_terms[wid]:
                    row = lp.Constraint(0.0, inf)
                    row.SetCoefficient(late, 1.0)
                    for x, pen in stage_terms:
                        row.SetCoefficient(x, -pen / scale)
    _capex_rows(pf, lp, objective, widths, scale)
    objective.SetMinimization()
    left = stop_at - clock()
    if left <= 0:
        return None
    if _solve(lp, stop_at, clock) != pywraplp.Solver.OPTIMAL:
        return None
    value = objective.Value() * scale * (1 - MARGIN)
    for x, key, res in picks:
        if guide is not None and (share := x.solution_value()) > 1e-6:
            on = guide.setdefault(key, {})
            on[res] = on.get(res, 0.0) + share
    if shares is not None:
        shares.update({wid: z.solution_value() * scale for wid, z in zs.items()})
    span = alone.makespan_value if count == alone.bound.unplaced else 0.0
    return Score(count, value + span)


def _capex_rows(
    pf: Portfolio, lp: Any, objective: Any, widths: dict[str, list[tuple[Any, int]]], scale: float
) -> None:
    """Bought chips are paid for (:mod:`straits.plan.cpsat_model`: the chips bought, each at
    its amortized share, and a run on the pool needs as many bought as it has chips), which no
    choice's value holds. Per pool of bought chips, a share ``n`` of its most chips, at least
    each column's chips times the column, costs its chips' capex: every plan buys at least as
    many as its widest run there takes."""
    for res, cols in widths.items():
        o = pf.option_of(res)
        assert o.pool.procurable is not None
        # per chip, in the objective's units (as the choices' values): what a plan's cost
        # counts for the chips bought (:func:`straits.plan.solution.extract`), or the model's
        # whole units of it (:meth:`Objective.capex_units`, rounded) when those are fewer
        usd = o.pool.procurable.usd_per_chip * capex_share(pf.sc, o.pool)
        unit = min(
            pf.objective.weight(COST) * usd,
            pf.objective.capex_units(usd) / pf.objective.model_scale,
        )
        most = max(n for _, n in procured_steps(o.pool))
        if unit <= 0 or most <= 0:
            continue
        n = lp.NumVar(0.0, lp.infinity(), "")
        objective.SetCoefficient(n, unit * most / scale)
        for x, chips in cols:
            row = lp.Constraint(0.0, lp.infinity())  # n >= chips / most * x
            row.SetCoefficient(n, 1.0)
            row.SetCoefficient(x, -chips / most)


def _solve(lp: Any, stop_at: float, clock: Callable[[], float]) -> int:
    """GLOP's status within what is left of the time, solved again without its presolve when
    the first try is ABNORMAL (and time is left): a one-workload scenario (soft deadline,
    $12/day late, two stages) came back ABNORMAL with presolve and OPTIMAL without, and the
    bound was lost (hypothesis found it in the CI). The second try is a fresh solver on the
    same model (:func:`_fresh`)."""
    from ortools.linear_solver import pywraplp

    lp.SetSolverSpecificParametersAsString(PARAMS)
    _limit(lp, stop_at - clock())
    status = int(lp.Solve())
    if status == pywraplp.Solver.ABNORMAL and stop_at - clock() > 0:
        # the primal without presolve (the dual without it took 21 s on the benchmark's LP)
        status = _fresh(lp, "use_dual_simplex: false use_preprocessing: false", stop_at - clock())
    return status


def _fresh(lp: Any, params: str, seconds: float) -> int:
    """Solve ``lp``'s model again on a new GLOP solver and, when that is optimal, load its
    answer into ``lp``'s variables. Re-solved in place after a first solve, GLOP answered
    INFEASIBLE for a feasible LP that a new solver finds optimal under every setting (OR-Tools
    9.15; a review found it by forcing the first answer to ABNORMAL)."""
    from ortools.linear_solver import linear_solver_pb2, pywraplp

    model = linear_solver_pb2.MPModelProto()
    lp.ExportModelToProto(model)
    again = pywraplp.Solver.CreateSolver("GLOP")
    if again is None:  # pragma: no cover - OR-Tools ships GLOP
        return int(pywraplp.Solver.ABNORMAL)
    again.LoadModelFromProto(model)
    again.SetSolverSpecificParametersAsString(params)
    _limit(again, seconds)
    status = int(again.Solve())
    if status != pywraplp.Solver.OPTIMAL:
        return status
    answer = linear_solver_pb2.MPSolutionResponse()
    again.FillSolutionResponseProto(answer)
    # False when the answer does not fit ``lp``'s bounds within GLOP's tolerance
    return status if lp.LoadSolutionFromProto(answer) else int(pywraplp.Solver.ABNORMAL)
