"""The CP-SAT model of a portfolio: optional intervals over the lawful choices of every stage.

Time is in whole hours from the plan start (durations and transfers rounded up, so the model
never overlaps what really runs). Per stage: a start and an end, one optional interval per choice
(option x chip count), exactly one choice or "unplaced"; per pool: a cumulative constraint over
its capacity profile; bought capacity as a variable reserve released after its lead time.
Precedence plus the weights' transfer time, hard deadlines, workload budgets, weight transfers
the rules forbid; the objective is cost, makespan or weighted completion, with unplaced stages
priced above anything else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from straits.model.scenario import Workload
from straits.plan.greedy import deadline_hours
from straits.plan.options import capex_share, pool_steps, procured_steps
from straits.plan.portfolio import Choice, Portfolio, StageChoices

StageKey = tuple[str, str]


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
    """model units per unit of the objective's own measure (dollars, or hours for time)"""

    def decode(self, value: float) -> tuple[int, float]:
        """A model objective value (or bound) as (unplaced stages, score): the score is
        dollars for ``cost``, hours of makespan (or weighted completion) for the others."""
        unplaced = int(value // self.unplaced_weight) if value >= 0 else 0
        return unplaced, (value - unplaced * self.unplaced_weight) / self.score_unit


def _deadline(pf: Portfolio, day: dt.date) -> int:
    return max(0, int(deadline_hours(pf.sc, day) + 1e-9))


def build(pf: Portfolio, objective: str, *, horizon: int | None = None,
          with_groups: bool = False, only: set[str] | None = None,
          fixed: list[tuple[str, int, int, int]] | None = None,
          max_end: int | None = None) -> PortfolioModel:
    """Build the model. ``only`` restricts it to some workloads (for explanations), ``fixed``
    adds bookings that cannot move: (resource key, start, end, chips). ``with_groups`` makes
    deadlines, budgets and capacities conditional on enable literals. ``max_end`` bounds the
    makespan (for the cost/time frontier)."""
    sc = pf.sc
    m = cp_model.CpModel()
    stages = {k: v for k, v in pf.stages.items() if only is None or k[0] in only}
    # the plan horizon, stretched to twice the greedy plan's makespan when that is longer
    longest = max((st.hint_end for st in stages.values()), default=0)
    horizon = horizon or max(int(sc.horizon_days * 24), 2 * longest + 1)
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
    cost_terms: list[cp_model.LinearExprT] = []
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
        cost_terms += [xi * c.cost for xi, c in zip(xs, st.choices, strict=True)]
        x[key], u[key], start[key], end[key] = xs, un, s, e

    # precedence, weight transfers, unplaced predecessors
    for (wid, sid), st in stages.items():
        w = st.workload
        for pid in st.stage.after:
            pk = (wid, pid)
            if pk not in stages:
                continue
            m.add(u[(wid, sid)] >= u[pk])
            pred = stages[pk]
            lag = edge_lag(pf, w, pred, st)
            m.add(start[(wid, sid)] >= end[pk] + lag).only_enforce_if(u[(wid, sid)].Not())
            _forbid_unlawful_transfers(m, pf, w, pred, st, x[pk], x[(wid, sid)])

    # deadlines and lateness
    lates: dict[str, cp_model.IntVar] = {}
    dones: dict[str, cp_model.IntVar] = {}
    span: cp_model.IntVar | None = None
    penalties: list[cp_model.LinearExprT] = []
    penalty_bound = 0
    for w in sc.workloads:
        if (only is not None and w.id not in only) or w.deadline is None:
            continue
        due = _deadline(pf, w.deadline)
        keys = [(w.id, s.id) for s in w.stages if (w.id, s.id) in stages]
        if w.deadline_policy == "hard":
            lit = enable(groups.deadline, w.id)
            for k in keys:
                when = [u[k].Not()] + ([lit] if lit is not None else [])
                m.add(end[k] <= due).only_enforce_if(when)
        else:
            late = lates[w.id] = m.new_int_var(0, horizon, f"late[{w.id}]")
            for k in keys:
                m.add(late >= end[k] - due).only_enforce_if(u[k].Not())
            per_hour = round(w.late_penalty_usd_per_day / 24.0)
            penalties.append(late * per_hour)
            penalty_bound += horizon * per_hour

    # budgets (rental and data movement; bought chips are capex, reported apart)
    for w in sc.workloads:
        if (only is not None and w.id not in only) or w.budget_usd is None:
            continue
        terms = [xi * c.cost for s in w.stages if (w.id, s.id) in stages
                 for xi, c in zip(x[(w.id, s.id)], stages[(w.id, s.id)].choices, strict=True)]
        within = m.add(cp_model.LinearExpr.sum(terms) <= int(w.budget_usd))
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
        for i, (t0, c0) in enumerate(steps):  # capacity below its peak: a blocking booking
            t1 = steps[i + 1][0] if i + 1 < len(steps) else horizon
            a, b = int(t0), min(horizon, int(-(-t1 // 1)))
            if c0 < cap and b > a:
                ivs.append(m.new_fixed_size_interval_var(a, b - a, f"block[{res}][{i}]"))
                demands.append(cap - c0)
        if o.procured:
            assert o.pool.procurable is not None
            arrive = int(-(-steps[-1][0] // 1))
            n = m.new_int_var(0, cap, f"bought[{res}]")
            bought[res] = n
            if horizon > arrive:
                ivs.append(m.new_fixed_size_interval_var(arrive, horizon - arrive,
                                                         f"unbought[{res}]"))
                demands.append(cap - n)
            unit = o.pool.procurable.usd_per_chip * capex_share(sc, o.pool)
            capex_terms.append(n * round(unit))
            capex_bound += cap * round(unit)
        lit = enable(groups.capacity, res)
        for s0, e0, chips in extra.get(res, []):
            if e0 > s0:
                name = f"fixed[{res}][{s0}]"
                ivs.append(m.new_fixed_size_interval_var(s0, e0 - s0, name) if lit is None
                           else m.new_optional_fixed_size_interval_var(s0, e0 - s0, lit, name))
                demands.append(chips)
        m.add_cumulative(ivs, demands, cap)

    # objective: unplaced stages first, then cost, or time with cost (in $1,000) breaking ties
    cost_bound = sum(max((c.cost for c in st.choices), default=0) for st in stages.values())
    big = cost_bound + capex_bound + penalty_bound + 1
    total_cost = cp_model.LinearExpr.sum([*cost_terms, *capex_terms, *penalties])
    unplaced = cp_model.LinearExpr.sum(list(u.values()))
    if objective == "cost":
        m.minimize(big * unplaced + total_cost)
        weight, unit = big, 1
    else:
        span = m.new_int_var(0, horizon, "makespan")
        completions = []
        for w in sc.workloads:
            keys = [(w.id, s.id) for s in w.stages if (w.id, s.id) in stages]
            if not keys:
                continue
            done = dones[w.id] = m.new_int_var(0, horizon, f"done[{w.id}]")
            for k in keys:
                m.add(done >= end[k]).only_enforce_if(u[k].Not())
                m.add(span >= end[k]).only_enforce_if(u[k].Not())
            completions.append(done * round(w.weight * 100))
        time_part = span if objective == "time" else sum(completions)
        time_bound = horizon * (1 if objective == "time" else sum(
            round(w.weight * 100) for w in sc.workloads))
        k_cost = [xi * (c.cost // 1000) for key, st in stages.items()
                  for xi, c in zip(x[key], st.choices, strict=True)]
        k_bound = cost_bound // 1000 + 1
        weight, unit = (time_bound + 1) * k_bound + 1, k_bound
        m.minimize(weight * unplaced + time_part * k_bound + sum(k_cost))
    return PortfolioModel(m, pf, horizon, x, u, start, end, bought, weight, groups, lates,
                          dones, span, unit)


def edge_lag(pf: Portfolio, w: Workload, pred: StageChoices, succ: StageChoices) -> int:
    """Hours the predecessor's weights take to move, at most, between the two stages' sites
    (the model uses the longest: a few hours at most, and always safe)."""
    firsts_a = {c.option.site.id: c for c in pred.choices}
    firsts_b = {c.option.site.id: c for c in succ.choices}
    return max((pf.weights_hours(w, a, b) for a in firsts_a.values() for b in firsts_b.values()),
               default=0)


def _forbid_unlawful_transfers(m: cp_model.CpModel, pf: Portfolio, w: Workload,
                               pred: StageChoices, succ: StageChoices,
                               xp: list[cp_model.IntVar], xs: list[cp_model.IntVar]) -> None:
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


def add_hints(pm: PortfolioModel, choice_of: dict[StageKey, tuple[int | None, int]]) -> None:
    """Hint a complete solution: the choice index (None: unplaced) and start hour of each
    stage, and every variable that follows from them (lateness, completion, bought chips)."""
    m, pf = pm.model, pm.pf
    ends: dict[StageKey, int] = {}
    usage: dict[str, list[tuple[int, int, int]]] = {}
    for key, (idx, s) in choice_of.items():
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
    for w in pf.sc.workloads:
        mine = [e for (wid, _), e in ends.items() if wid == w.id]
        if w.id in pm.late:
            due = _deadline(pf, w.deadline) if w.deadline else 0
            m.add_hint(pm.late[w.id], max([0] + [e - due for e in mine]))
        if w.id in pm.done:
            m.add_hint(pm.done[w.id], max(mine, default=0))
    if pm.span is not None:
        m.add_hint(pm.span, max(ends.values(), default=0))
    for res, var in pm.bought.items():
        m.add_hint(var, _peak(usage.get(res, [])))


def _peak(bookings: list[tuple[int, int, int]]) -> int:
    events = sorted([(s, n) for s, _, n in bookings] + [(e, -n) for _, e, n in bookings],
                    key=lambda ev: (ev[0], ev[1]))
    peak = used = 0
    for _, n in events:
        used += n
        peak = max(peak, used)
    return peak
