"""The CP-SAT model of a portfolio: optional intervals over the lawful choices of every stage.

Time is in ticks of a minute from the plan start (``TICKS_PER_HOUR``; durations and
transfers rounded up, windows widened, so the model never overlaps what really runs). Per
stage: a start and an end, one optional interval per choice (option x chip count), exactly one
choice or "unplaced"; per pool: a cumulative constraint over its capacity profile; bought
capacity as a variable reserve released after its lead time.
Precedence plus the weights' transfer time, hard deadlines, workload budgets, weight transfers
the rules forbid; the objective is the plan's :class:`~straits.plan.objectives.Objective`
(its additive terms per choice, makespan, weighted completion, penalties and capex), with
unplaced stages priced above anything else and, for named objectives other than cost, cost
breaking ties.

The same model, restricted to some workloads (``only``) with everything else held fixed
(``fixed`` bookings, a floor under the makespan), is a neighbourhood of the large-neighbourhood
search (:mod:`straits.plan.lns`) and the question behind a why-not explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from ortools.sat.python import cp_model

from straits.model.scenario import Workload
from straits.plan.horizon import due_ticks, model_ticks
from straits.plan.objectives import COMPLETION, COST, TIME, Objective
from straits.plan.options import capex_share, pool_steps, procured_steps
from straits.plan.portfolio import Choice, Portfolio, StageChoices
from straits.plan.schedule import StageKey, model_blocks
from straits.plan.ticks import TICKS_PER_HOUR, ticks_up

Booking = tuple[str, int, int, int]
"""(resource key, start hour, end hour, chips): a booking the model may not move"""


@dataclass
class Groups:
    """Enable literals of constraint groups, for explaining infeasibility."""

    deadline: dict[str, cp_model.IntVar] = field(default_factory=dict)
    budget: dict[str, cp_model.IntVar] = field(default_factory=dict)
    capacity: dict[str, cp_model.IntVar] = field(default_factory=dict)


@dataclass
class PortfolioModel:
    model: cp_model.CpModel
    pf: Portfolio
    horizon: int
    x: dict[StageKey, list[cp_model.IntVar]]
    u: dict[StageKey, cp_model.IntVar]
    start: dict[StageKey, cp_model.IntVar]
    end: dict[StageKey, cp_model.IntVar]
    bought: dict[str, cp_model.IntVar]
    unplaced_weight: int
    groups: Groups
    late: dict[str, cp_model.IntVar] = field(default_factory=dict)
    done: dict[str, cp_model.IntVar] = field(default_factory=dict)
    span: cp_model.IntVar | None = None
    score_unit: int = 1
    """model units per unit of the objective's own measure (dollars, hours, MWh, tCO2e)"""
    span_floor: int = 0
    """the makespan of what the model holds fixed"""
    fixed: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    """resource key -> the bookings held fixed on it: (start, end, chips)"""
    at: dict[tuple[StageKey, str], cp_model.IntVar] = field(default_factory=dict)
    """(stage, site id) -> true when the stage runs at that site (for weight transfers)"""
    tie_unit: int = 0
    """dollars per unit of the cost tie-break (0: none)"""
    penalty: dict[str, tuple[cp_model.IntVar, int]] = field(default_factory=dict)
    """workload -> its soft deadline's penalty in model units and the units a day late, where
    priced exactly (:meth:`~straits.plan.objectives.Objective.penalty_exact`)"""

    def decode(self, value: float) -> Score:
        """A model objective value (or bound) as (unplaced stages, score in the objective's
        own unit)."""
        unplaced = int(value // self.unplaced_weight) if value >= 0 else 0
        return Score(unplaced, (value - unplaced * self.unplaced_weight) / self.score_unit)


class Score(NamedTuple):
    """A plan, or a bound, in the model's terms: stages left unplaced, then the objective in
    its own unit. Compared as a tuple: fewer unplaced first."""

    unplaced: int
    value: float


def new_solver() -> cp_model.CpSolver:
    """A CP-SAT solver that leaves SIGINT to the process: by default CP-SAT installs its own
    handler while it solves and resets SIGINT to the default action afterwards, so Ctrl-C
    killed a `straits worker` or `straits serve` at once after its first search (its running
    jobs not given back, their attempt counted), or aborted it during one
    (``std::bad_function_call``). Searches stop through the callers' own stop events."""
    solver = cp_model.CpSolver()
    solver.parameters.catch_sigint_signal = False
    return solver


def build(
    pf: Portfolio,
    objective: Objective,
    *,
    horizon: int | None = None,
    with_groups: bool = False,
    only: set[str] | None = None,
    fixed: list[Booking] | None = None,
    max_end: int | None = None,
    min_span: int = 0,
) -> PortfolioModel:
    """Build the model. ``only`` restricts it to some workloads (a neighbourhood, or one
    workload to explain), ``fixed`` adds bookings that cannot move. ``with_groups`` makes
    deadlines, budgets and capacities conditional on enable literals. ``max_end`` bounds the
    makespan (for the cost/time frontier); ``min_span`` is the makespan of what is held
    fixed."""
    sc = pf.sc
    objective = objective.fitted(sc)  # the units of the portfolio's choice values
    m = cp_model.CpModel()
    stages = {k: v for k, v in pf.stages.items() if only is None or k[0] in only}
    horizon = model_ticks(pf, horizon, only)
    groups = Groups()

    def enable(table: dict[str, cp_model.IntVar], name: str) -> cp_model.IntVar | None:
        if not with_groups:
            return None
        if name not in table:
            table[name] = m.new_bool_var(f"enable[{name}]")
        return table[name]

    x: dict[StageKey, list[cp_model.IntVar]] = {}
    u: dict[StageKey, cp_model.IntVar] = {}
    start: dict[StageKey, cp_model.IntVar] = {}
    end: dict[StageKey, cp_model.IntVar] = {}
    by_resource: dict[str, list[tuple[cp_model.IntervalVar, int]]] = {}
    for key, st in stages.items():
        s = m.new_int_var(0, horizon, f"start[{key}]")
        e = m.new_int_var(0, horizon, f"end[{key}]")
        un = m.new_bool_var(f"unplaced[{key}]")
        xs = [m.new_bool_var(f"x[{key}][{i}]") for i in range(len(st.choices))]
        m.add(sum(xs) + un == 1)
        for xi, c in zip(xs, st.choices, strict=True):
            iv = m.new_optional_fixed_size_interval_var(s, c.duration, xi, "")
            by_resource.setdefault(c.option.key, []).append((iv, c.est.chips))
        m.add(e == s + sum(xi * c.duration for xi, c in zip(xs, st.choices, strict=True)))
        m.add(s >= sum(xi * c.release for xi, c in zip(xs, st.choices, strict=True)))
        if max_end is not None:
            m.add(e <= max_end).only_enforce_if(un.Not())
        x[key], u[key], start[key], end[key] = xs, un, s, e

    # precedence, weight transfers (the hours between the two sites chosen), unplaced
    # predecessors
    at: dict[tuple[StageKey, str], cp_model.IntVar] = {}

    def site_lit(key: StageKey, site: str) -> cp_model.IntVar:
        """True when stage ``key`` runs at ``site``."""
        if (key, site) not in at:
            lit = at[(key, site)] = m.new_bool_var(f"at[{key}][{site}]")
            m.add(
                lit
                == sum(
                    xi
                    for xi, c in zip(x[key], stages[key].choices, strict=True)
                    if c.option.site.id == site
                )
            )
        return at[(key, site)]

    for (wid, sid), st in stages.items():
        w = st.workload
        key = (wid, sid)
        for pid in st.stage.after:
            pk = (wid, pid)
            if pk not in stages:
                continue
            m.add(u[key] >= u[pk])
            pred = stages[pk]
            m.add(start[key] >= end[pk]).only_enforce_if(u[key].Not())
            for (a, b), lag in edge_lags(pf, w, pred, st).items():
                m.add(start[key] >= end[pk] + lag).only_enforce_if(
                    [site_lit(pk, a), site_lit(key, b)]
                )
            _forbid_unlawful_transfers(m, pf, w, pred, st, x[pk], x[key])

    # deadlines and lateness
    lates: dict[str, cp_model.IntVar] = {}
    pens: dict[str, tuple[cp_model.IntVar, int]] = {}
    dones: dict[str, cp_model.IntVar] = {}
    span: cp_model.IntVar | None = None
    penalties: list[cp_model.LinearExprT] = []
    penalty_bound = 0
    for w in sc.workloads:
        if (only is not None and w.id not in only) or w.deadline is None:
            continue
        due = due_ticks(pf, w.deadline)
        keys = [(w.id, s.id) for s in w.stages if (w.id, s.id) in stages]
        if w.deadline_policy == "hard":
            lit = enable(groups.deadline, w.id)
            for k in keys:
                when = [u[k].Not()] + ([lit] if lit is not None else [])
                m.add(end[k] <= due).only_enforce_if(when)
        else:
            # lateness in whole hours (rounded up), as the penalty is priced
            late = lates[w.id] = m.new_int_var(0, horizon // TICKS_PER_HOUR + 1, f"late[{w.id}]")
            for k in keys:
                m.add(TICKS_PER_HOUR * late >= end[k] - due).only_enforce_if(u[k].Not())
            usd = w.late_penalty_usd_per_day
            most = objective.penalty_of(horizon // TICKS_PER_HOUR + 1, usd)
            penalty_bound += most
            if objective.penalty_exact(usd):  # the day's price, rounded up once per workload
                per_day = objective.penalty_units(usd)
                pen = m.new_int_var(0, most, f"penalty[{w.id}]")
                pens[w.id] = (pen, per_day)
                m.add(24 * pen >= late * per_day)
                penalties.append(pen)
            else:
                penalties.append(late * objective.penalty_of(1, usd))

    # budgets (rental and data movement; bought chips are capex, reported apart)
    for w in sc.workloads:
        if (only is not None and w.id not in only) or w.budget_usd is None:
            continue
        spend = [
            xi * c.cost
            for s in w.stages
            if (w.id, s.id) in stages
            for xi, c in zip(x[(w.id, s.id)], stages[(w.id, s.id)].choices, strict=True)
        ]
        within = m.add(cp_model.LinearExpr.sum(spend) <= int(w.budget_usd))
        lit = enable(groups.budget, w.id)
        if lit is not None:
            within.only_enforce_if(lit)

    # capacity per pool, over time
    bought: dict[str, cp_model.IntVar] = {}
    capex_terms: list[cp_model.LinearExprT] = []
    capex_bound = 0
    pools = {c.option.key: c.option for st in stages.values() for c in st.choices}
    extra: dict[str, list[tuple[int, int, int]]] = {}
    for res, s0, e0, chips in fixed or []:
        extra.setdefault(res, []).append((s0, e0, chips))
    for res, items in by_resource.items():
        o = pools[res]
        steps = procured_steps(o.pool) if o.procured else pool_steps(sc, o.pool)
        cap = max(c for _, c in steps)
        ivs = [iv for iv, _ in items]
        demands: list[cp_model.LinearExprT] = [d for _, d in items]
        for i, (t0, t1, missing) in enumerate(model_blocks(steps, horizon)):
            ivs.append(m.new_fixed_size_interval_var(t0, t1 - t0, f"block[{res}][{i}]"))
            demands.append(missing)
        if o.procured:
            assert o.pool.procurable is not None
            arrive = ticks_up(steps[-1][0])
            n = m.new_int_var(0, cap, f"bought[{res}]")
            bought[res] = n
            if horizon > arrive:
                ivs.append(
                    m.new_fixed_size_interval_var(arrive, horizon - arrive, f"unbought[{res}]")
                )
                demands.append(cap - n)
            unit = o.pool.procurable.usd_per_chip * capex_share(sc, o.pool)
            capex_terms.append(n * objective.capex_units(unit))
            capex_bound += cap * objective.capex_units(unit)
        lit = enable(groups.capacity, res)
        for s0, e0, chips in extra.get(res, []):
            if e0 > s0:
                name = f"fixed[{res}][{s0}]"
                ivs.append(
                    m.new_fixed_size_interval_var(s0, e0 - s0, name)
                    if lit is None
                    else m.new_optional_fixed_size_interval_var(s0, e0 - s0, lit, name)
                )
                demands.append(chips)
        m.add_cumulative(ivs, demands, cap)

    # objective: unplaced stages first, then the objective, then (for named objectives other
    # than cost) cost in $1,000 breaking ties
    k_cost = objective.global_weight(COST)
    k_time = objective.tick_weight(TIME)
    k_done = objective.weight(COMPLETION) > 0
    terms: list[cp_model.LinearExprT] = [
        xi * c.value for key, st in stages.items() for xi, c in zip(x[key], st.choices, strict=True)
    ]
    bound = sum(max((c.value for c in st.choices), default=0) for st in stages.values())
    if k_cost:  # in model units already (Objective.capex_units, penalty_units)
        terms += [*capex_terms, *penalties]
        bound += capex_bound + penalty_bound
    if k_time or k_done:
        if k_time:
            span = m.new_int_var(min(min_span, horizon), horizon, "makespan")
            terms.append(span * k_time)
            bound += horizon * k_time
        for w in sc.workloads:
            keys = [(w.id, s.id) for s in w.stages if (w.id, s.id) in stages]
            if not keys or not k_done:
                continue
            done = dones[w.id] = m.new_int_var(0, horizon, f"done[{w.id}]")
            terms.append(done * objective.done_weight(w))
            bound += horizon * objective.done_weight(w)
        for k in stages:
            if span is not None:
                m.add(span >= end[k]).only_enforce_if(u[k].Not())
            if k[0] in dones:
                m.add(dones[k[0]] >= end[k]).only_enforce_if(u[k].Not())
    primary = cp_model.LinearExpr.sum(terms)
    unplaced = cp_model.LinearExpr.sum(list(u.values()))
    room = OBJECTIVE_LIMIT // (len(stages) + 1)
    if bound + 1 >= room:
        raise ModelTooLarge(
            f"the objective's values reach {bound:,} model units over "
            f"{len(stages)} stages: more than 64-bit integers hold"
        )
    dollars = tie_unit(stages, bound, room) if objective.tie_cost else 0
    if dollars:
        tie = [
            xi * (c.cost // dollars)
            for key, st in stages.items()
            for xi, c in zip(x[key], st.choices, strict=True)
        ]
        tie_bound = _tie_bound(stages, dollars)
        weight = (bound + 1) * tie_bound + 1
        m.minimize(weight * unplaced + primary * tie_bound + cp_model.LinearExpr.sum(tie))
        unit = tie_bound * objective.model_scale
    else:
        weight = bound + 1
        m.minimize(weight * unplaced + primary)
        unit = objective.model_scale
    return PortfolioModel(
        m,
        pf,
        horizon,
        x,
        u,
        start,
        end,
        bought,
        weight,
        groups,
        lates,
        dones,
        span,
        unit,
        min(min_span, horizon),
        extra,
        at,
        dollars,
        pens,
    )


#: the model's objective stays below this (CP-SAT works in 64-bit integers)
OBJECTIVE_LIMIT = 2**61


class ModelTooLarge(ValueError):
    """The model's objective would not fit 64-bit integers (a huge horizon or weights)."""


def _tie_bound(stages: dict[StageKey, StageChoices], dollars: int) -> int:
    return (
        sum(max((c.cost // dollars for c in st.choices), default=0) for st in stages.values()) + 1
    )


def tie_unit(stages: dict[StageKey, StageChoices], bound: int, room: int) -> int:
    """Dollars per unit of the cost tie-break: $1,000, or coarser as far as the objective
    needs to fit (0: no tie-break fits)."""
    dollars = 1000
    while dollars <= 10**15:
        if (bound + 1) * _tie_bound(stages, dollars) + 1 < room:
            return dollars
        dollars *= 10
    return 0


def edge_lags(
    pf: Portfolio, w: Workload, pred: StageChoices, succ: StageChoices
) -> dict[tuple[str, str], int]:
    """Whole hours the predecessor's weights take to move from each of its sites to each of
    the successor's, where that is more than none."""
    firsts_a = {c.option.site.id: c for c in pred.choices}
    firsts_b = {c.option.site.id: c for c in succ.choices}
    out = {}
    for a, ca in firsts_a.items():
        for b, cb in firsts_b.items():
            lag = pf.weights_ticks(w, ca, cb)
            if lag > 0:
                out[(a, b)] = lag
    return out


def _forbid_unlawful_transfers(
    m: cp_model.CpModel,
    pf: Portfolio,
    w: Workload,
    pred: StageChoices,
    succ: StageChoices,
    xp: list[cp_model.IntVar],
    xs: list[cp_model.IntVar],
) -> None:
    by_a: dict[str, list[int]] = {}
    by_b: dict[str, list[int]] = {}
    for i, a in enumerate(pred.choices):
        by_a.setdefault(a.option.label, []).append(i)
    for j, b in enumerate(succ.choices):
        by_b.setdefault(b.option.label, []).append(j)
    for ia in by_a.values():
        for jb in by_b.values():
            if not pf.weights_lawful(w, pred.stage, pred.choices[ia[0]], succ.choices[jb[0]]):
                m.add(sum(xp[i] for i in ia) + sum(xs[j] for j in jb) <= 1)


class Slot(NamedTuple):
    """Where a stage sits in a model solution: its choice (None: unplaced) and start hour."""

    choice: int | None
    start: int


UNPLACED = Slot(None, 0)


def add_hints(pm: PortfolioModel, slots: dict[StageKey, Slot]) -> None:
    """Hint a complete solution: each stage's slot, and every variable that follows from them
    (lateness, completion, makespan, bought chips, counting the fixed bookings)."""
    m, pf = pm.model, pm.pf
    ends: dict[StageKey, int] = {}
    usage: dict[str, list[tuple[int, int, int]]] = {
        res: list(b) for res, b in pm.fixed.items() if res in pm.bought
    }
    for key, (idx, s) in slots.items():
        if key not in pm.x:
            continue
        m.add_hint(pm.u[key], idx is None)
        for i, xi in enumerate(pm.x[key]):
            m.add_hint(xi, i == idx)
        c: Choice | None = pf.stages[key].choices[idx] if idx is not None else None
        m.add_hint(pm.start[key], s if c else 0)
        m.add_hint(pm.end[key], s + c.duration if c else 0)
        if c is not None:
            ends[key] = s + c.duration
            usage.setdefault(c.option.key, []).append((s, s + c.duration, c.est.chips))
    by_workload: dict[str, list[int]] = {}
    for (wid, _), e in ends.items():
        by_workload.setdefault(wid, []).append(e)
    for wid, var in pm.late.items():
        w = pf.sc.workload(wid)
        due = due_ticks(pf, w.deadline) if w.deadline else 0
        late = late_hours_of(max(by_workload.get(wid, [0])), due)
        m.add_hint(var, late)
        if wid in pm.penalty:
            pen, per_day = pm.penalty[wid]
            m.add_hint(pen, -(-late * per_day // 24))
    for wid, var in pm.done.items():
        m.add_hint(var, max(by_workload.get(wid, []), default=0))
    if pm.span is not None:
        m.add_hint(pm.span, max([pm.span_floor, *ends.values()]))
    for (key, site), lit in pm.at.items():
        idx = slots[key].choice if key in slots else None
        m.add_hint(lit, idx is not None and pf.stages[key].choices[idx].option.site.id == site)
    for res, var in pm.bought.items():
        m.add_hint(var, _peak(usage.get(res, [])))


def late_hours_of(end: int, due: int) -> int:
    """Whole hours (rounded up) that a workload ending at tick ``end`` is late for ``due``."""
    return max(0, -(-(end - due) // TICKS_PER_HOUR))


def _peak(bookings: list[tuple[int, int, int]]) -> int:
    events = sorted(
        [(s, n) for s, _, n in bookings] + [(e, -n) for _, e, n in bookings],
        key=lambda ev: (ev[0], ev[1]),
    )
    peak = used = 0
    for _, n in events:
        used += n
        peak = max(peak, used)
    return peak
