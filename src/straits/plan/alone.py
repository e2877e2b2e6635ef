"""Each workload alone on an empty fleet, solved exactly: a bound, and why stages stay unplaced.

A workload's stages are coupled to other workloads only through the pools' capacity, the
tenant's cumulative exports (already made safe in :mod:`straits.plan.portfolio`), bought chips
and the makespan. Drop those couplings and what is left is one small problem per workload: a
choice (or none) per stage, in dependency order, each starting once its datasets have arrived
and its predecessors' weights have moved from the site each of them chose, every stage ending
by the hard deadline, the stages' spending summed within the budget, weight moves the rules
forbid excluded. Each is solved exactly by a depth-first search (a few stages of at most 18
choices each, pruned by the best found), for the lexicographic optimum: fewest unplaced stages,
then the least value.

**Why it is a bound.** Every plan over the optimizer's choices, restricted to one workload, is a
solution of that workload's problem (every constraint here is one of the plan's, or weaker), so
it leaves at least the workload's fewest stages unplaced; a plan that leaves exactly the sum of
those unplaced leaves exactly each workload's fewest, so it pays at least each one's least
value. Everything is optimistic, as in :mod:`straits.plan.bounds`: exact hours (the model
rounds up), no moving of weights in dollars (the model counts the dearest), no capex, capacity
and availability windows ignored; soft-deadline penalties and weighted completion are counted
from those optimistic ends, the makespan from workloads whose stages are all placed.

**Why stages stay unplaced** (:data:`CAUSES`): a stage unplaced in its workload's own optimum
has no lawful option, cannot end by the deadline (or keep within the budget) even alone after
its predecessors' earliest ends, or could on its own but not as part of its whole chain
(predecessors' actual choices, weights in transit, the budget summed over stages), or follows
such a stage; a stage a plan leaves unplaced beyond its workload's own optimum lost to the other
workloads (capacity, or the order they were planned in).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from straits.model.scenario import Site, Workload
from straits.plan.cpsat_model import Score
from straits.plan.objectives import COMPLETION, COST, TIME, Objective
from straits.plan.portfolio import Choice, Portfolio
from straits.plan.schedule import EPS, StageKey, deadline_hours, hard_deadline_hours
from straits.plan.transfer import transfer_hours, weights_gb

NO_OPTION = "no-lawful-option"
DEADLINE = "deadline"
BUDGET = "budget"
CHAIN = "chain"
PREDECESSOR = "predecessor"
CONTENTION = "contention"
CAUSES = (NO_OPTION, DEADLINE, BUDGET, CHAIN, PREDECESSOR, CONTENTION)
"""Why a stage is unplaced, in the order they are tested."""
CLOCK_EVERY = 1024
"""nodes of a workload's search between two looks at the clock"""


class _OutOfTime(Exception):
    """The clock passed ``stop_at`` within one workload's search."""


class _Node(NamedTuple):
    i: int
    """the stage to decide next"""
    unplaced: int
    value: float
    spend: float


class _Opt(NamedTuple):
    choice: int
    """position in the stage's choices"""
    site: Site
    hours: float
    release: float
    spend: float
    value: float


class Window(NamedTuple):
    """Where one choice of a stage can run in any plan that places the stage: it starts no
    earlier than ``earliest`` (its data's arrival, its predecessors' earliest ends) and ends by
    ``due`` (the hard deadline, or infinity)."""

    choice: int
    earliest: float
    hours: float
    due: float
    spend: float
    value: float


@dataclass
class WorkloadOptimum:
    """One workload's lexicographic optimum alone."""

    unplaced: int
    value: float
    placed: dict[str, int]
    """stage id -> the index of its choice in the optimum"""
    ends: dict[str, float]
    causes: dict[str, str] = field(default_factory=dict)
    """stage id -> why it is unplaced in the optimum"""
    windows: dict[str, list[Window]] = field(default_factory=dict)
    """stage id -> its choices that could run alone (none: unplaced in every plan)"""


@dataclass
class AloneBound:
    """Every workload's own optimum, summed."""

    bound: Score
    workloads: dict[str, WorkloadOptimum]
    makespan_value: float = 0.0
    """the part of ``bound.value`` that is the makespan's (not a sum over workloads)"""

    def causes(self, unplaced: Iterable[StageKey]) -> Counter[str]:
        """Why each of a plan's unplaced stages is: as many of each workload's as its own
        optimum leaves unplaced take their causes from it (in the optimum's order), the rest
        lost to other workloads."""
        out: Counter[str] = Counter()
        by_workload: dict[str, list[str]] = {}
        for wid, sid in unplaced:
            by_workload.setdefault(wid, []).append(sid)
        for wid, sids in by_workload.items():
            opt = self.workloads.get(wid)
            own = dict(opt.causes) if opt is not None else {}
            pending = [s for s in sids if s not in own]
            for sid in sids:
                if sid in own:
                    out[own.pop(sid)] += 1
            # a plan may leave other stages unplaced than the optimum does, as many of them
            spare = list(own.values())
            for _ in pending:
                out[spare.pop(0) if spare else CONTENTION] += 1
        return out


def alone_bound(
    pf: Portfolio,
    objective: Objective,
    *,
    stop_at: float = math.inf,
    clock: Callable[[], float] = time.monotonic,
) -> AloneBound | None:
    """Solve every workload of ``pf`` alone; the sum is a bound (see the module's text).
    None when the clock passes ``stop_at`` first (a part of the sum bounds nothing)."""
    k_pen = objective.weight(COST)
    k_done = objective.weight(COMPLETION)
    out: dict[str, WorkloadOptimum] = {}
    unplaced = 0
    value = makespan = 0.0
    for w in pf.sc.workloads:
        if clock() > stop_at:
            return None
        try:
            opt = _solve(pf, objective, w, k_pen, k_done, lambda: clock() > stop_at)
        except _OutOfTime:
            return None
        out[w.id] = opt
        unplaced += opt.unplaced
        value += opt.value
        if opt.unplaced == 0 and opt.ends:
            makespan = max(makespan, _earliest_end(pf, w))
    span = objective.weight(TIME) * makespan
    return AloneBound(Score(unplaced, value + span), out, span)


def _earliest_end(pf: Portfolio, w: Workload) -> float:
    """The earliest any plan placing all of ``w`` can end it: the latest of its stages'
    earliest ends, each after its predecessors' earliest (no transfers, no budget)."""
    ends: dict[str, float] = {}
    due = hard_deadline_hours(pf.sc, w)
    for stage in w.topological_stages():
        after = max((ends[p] for p in stage.after), default=0.0)
        st = pf.stages.get((w.id, stage.id))
        best = math.inf
        for c in st.choices if st is not None else []:
            end = max(after, _release(pf, stage, c)) + c.est.hours
            if end <= due + EPS:
                best = min(best, end)
        ends[stage.id] = best if math.isfinite(best) else after
    return max(ends.values(), default=0.0)


def _release(pf: Portfolio, stage: object, c: Choice) -> float:
    """Hours until the stage's datasets have arrived at ``c``'s site (exact)."""
    return pf.moves.data(stage, c.option.site)[0]  # type: ignore[arg-type]


def _solve(
    pf: Portfolio,
    objective: Objective,
    w: Workload,
    k_pen: float,
    k_done: float,
    late: Callable[[], bool] = lambda: False,
) -> WorkloadOptimum:
    sc = pf.sc
    stages = w.topological_stages()
    index = {s.id: i for i, s in enumerate(stages)}
    preds = [[index[p] for p in s.after] for s in stages]
    due = hard_deadline_hours(sc, w)
    budget = w.budget_usd if w.budget_usd is not None else math.inf
    soft_due = (
        deadline_hours(sc, w.deadline)
        if w.deadline is not None and w.deadline_policy != "hard"
        else math.inf
    )
    per_hour = (w.late_penalty_usd_per_day or 0.0) / 24.0 if math.isfinite(soft_due) else 0.0
    done_weight = k_done * w.weight
    size = weights_gb(w.model)

    # each stage's options, alone after its predecessors' earliest ends (to classify, and to
    # drop what can never fit), cheapest first
    opts: list[list[_Opt]] = []
    alone_cause: list[str | None] = []
    earliest: list[float | None] = []
    afters: list[float] = []
    """each stage's predecessors' earliest ends"""
    for i, stage in enumerate(stages):
        st = pf.stages.get((w.id, stage.id))
        pe = [earliest[p] for p in preds[i]]
        afters.append(max((p for p in pe if p is not None), default=0.0))
        if any(p is None for p in pe):
            opts.append([])
            alone_cause.append(PREDECESSOR)
            earliest.append(None)
            continue
        if st is None or not st.choices:
            opts.append([])
            alone_cause.append(NO_OPTION)
            earliest.append(None)
            continue
        after = max((p for p in pe if p is not None), default=0.0)
        mine: list[_Opt] = []
        in_time = False
        for j, c in enumerate(st.choices):
            release = _release(pf, stage, c)
            spend = c.option.cost(c.est) + c.egress
            if max(after, release) + c.est.hours > due + EPS:
                continue
            in_time = True
            if spend > budget + EPS:
                continue
            mine.append(
                _Opt(
                    j,
                    c.option.site,
                    c.est.hours,
                    release,
                    spend,
                    objective.additive_value(spend, c.mwh, c.tco2e),
                )
            )
        mine.sort(key=lambda o: (o.value, o.hours, o.choice))
        opts.append(mine)
        alone_cause.append(None if mine else BUDGET if in_time else DEADLINE)
        earliest.append(min((max(after, o.release) + o.hours for o in mine), default=None))

    n = len(stages)
    rest_value = [0.0] * (n + 1)
    rest_forced = [0] * (n + 1)
    for i in range(n - 1, -1, -1):
        rest_value[i] = rest_value[i + 1] + (opts[i][0].value if opts[i] else 0.0)
        rest_forced[i] = rest_forced[i + 1] + (0 if opts[i] else 1)

    lag_memo: dict[tuple[str, str], float] = {}
    lawful_memo: dict[tuple[int, int, int, int], bool] = {}

    def lag(a: Site, b: Site) -> float:
        key = (a.id, b.id)
        hit = lag_memo.get(key)
        if hit is None:
            hit = lag_memo[key] = transfer_hours(size, a, b)
        return hit

    def lawful(p: int, a: _Opt, i: int, b: _Opt) -> bool:
        """May the weights move from predecessor ``p``'s choice ``a`` to stage ``i``'s ``b``?"""
        if a.site.id == b.site.id:
            return True
        key = (p, a.choice, i, b.choice)
        hit = lawful_memo.get(key)
        if hit is None:
            ca = pf.stages[(w.id, stages[p].id)].choices[a.choice]
            cb = pf.stages[(w.id, stages[i].id)].choices[b.choice]
            hit = lawful_memo[key] = pf.weights_lawful(w, stages[p], ca, cb)
        return hit

    best: list[tuple[int, float]] = [(n + 1, math.inf)]
    best_pick: list[list[tuple[_Opt, float] | None]] = [[None] * n]
    pick: list[tuple[_Opt, float] | None] = [None] * n

    def finish(unplaced: int, value: float) -> None:
        ends = [p[1] for p in pick if p is not None]
        last = max(ends, default=0.0)
        # a workload with no stage placed ends nowhere: no lateness (even for a deadline
        # before the plan's start, where ``last - soft_due`` would be positive)
        total = (
            value
            + (k_pen * per_hour * max(0.0, last - soft_due) if ends else 0.0)
            + done_weight * (last if ends else 0.0)
        )
        if (unplaced, total) < best[0]:
            best[0] = (unplaced, total)
            best_pick[0] = list(pick)

    def children(i: int, unplaced: int, value: float, spend: float) -> Iterator[_Node]:
        """Stage ``i``'s choices that fit, then leaving it unplaced; ``pick[i]`` holds the
        choice while its subtree is searched."""
        before = [pick[p] for p in preds[i]]
        if all(b is not None for b in before):
            for o in opts[i]:
                if spend + o.spend > budget + EPS:
                    continue
                start = o.release
                ok = True
                for p, b in zip(preds[i], before, strict=True):
                    assert b is not None
                    if not lawful(p, b[0], i, o):
                        ok = False
                        break
                    start = max(start, b[1] + lag(b[0].site, o.site))
                end = start + o.hours
                if not ok or end > due + EPS:
                    continue
                pick[i] = (o, end)
                yield _Node(i + 1, unplaced, value + o.value, spend + o.spend)
        pick[i] = None
        # leave it unplaced (its successors follow)
        yield _Node(i + 1, unplaced + 1, value, spend)

    # depth first with a stack of its own: one level per stage, and a workload may hold
    # thousands of stages (a chain of 1,000 overflowed Python's recursion limit, a traceback);
    # the clock is read as it goes, since pruning does not bound the nodes of a long chain
    stack: list[Iterator[_Node]] = [iter((_Node(0, 0, 0.0, 0.0),))]
    nodes = 0
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
            continue
        nodes += 1
        if nodes % CLOCK_EVERY == 0 and late():
            raise _OutOfTime
        i, unplaced, value, spend = node
        if (unplaced + rest_forced[i], value + rest_value[i]) >= best[0]:
            continue
        if i == n:
            finish(unplaced, value)
            continue
        stack.append(children(i, unplaced, value, spend))

    (unplaced_n, total), chosen = best[0], best_pick[0]
    causes: dict[str, str] = {}
    for i, stage in enumerate(stages):
        if chosen[i] is not None:
            continue
        cause = alone_cause[i]
        if cause is None:
            cause = PREDECESSOR if any(chosen[p] is None for p in preds[i]) else CHAIN
        causes[stage.id] = cause
    return WorkloadOptimum(
        unplaced_n,
        total,
        {s.id: c[0].choice for s, c in zip(stages, chosen, strict=True) if c is not None},
        {s.id: c[1] for s, c in zip(stages, chosen, strict=True) if c is not None},
        causes,
        {
            s.id: [
                Window(o.choice, max(after, o.release), o.hours, due, o.spend, o.value)
                for o in mine
            ]
            for s, mine, after in zip(stages, opts, afters, strict=True)
        },
    )
