"""The cost/time frontier: the cheapest plan for each bound on the makespan.

The two ends are the cheapest plan and the fastest one; between them, the cheapest plan whose
makespan stays within evenly spaced bounds (the epsilon-constraint method). Points that another
point beats on both cost and time are dropped.

Each point is lexicographic: once a solve proves its cheapest cost, a second solve keeps that
cost and asks for the earliest end (:func:`_earliest`). Many plans can share the cheapest cost
(start times cost nothing), and which of them the first solve's interleaved workers returned
differed from run to run: the offshore example's cheapest point ended at 3,588.6 h or 3,586.6 h
at one cost, the later one beaten on time by a plan of the same cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ortools.sat.python import cp_model

from straits.limits import MAX_DATE
from straits.plan import _within_calendar
from straits.plan.candidates import Candidates
from straits.plan.cpsat_model import PortfolioModel, add_hints, build, new_solver
from straits.plan.deadline import Deadline
from straits.plan.greedy import GreedyPlanner
from straits.plan.objectives import OBJECTIVES, Objective
from straits.plan.options import capex_share
from straits.plan.portfolio import Choice, Portfolio
from straits.plan.retime import model_horizon, retime
from straits.plan.schedule import PlanState, StageKey, deadline_hours
from straits.plan.search import WORKERS
from straits.plan.solvers import MIN_SEARCH_S, MODEL_S
from straits.plan.ticks import tick_hours, ticks_down
from straits.plan.tiebreak import objective_terms
from straits.plan.transfer import egress_usd, weights_gb


@dataclass(frozen=True)
class FrontierPoint:
    cost_usd: float
    makespan_hours: float
    unplaced: int
    status: str
    bound_hours: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "cost_usd": round(self.cost_usd, 2),
            "makespan_hours": round(self.makespan_hours, 2),
            "unplaced": self.unplaced,
            "status": self.status,
            "max_makespan_hours": self.bound_hours,
        }


#: the least time a solve is given, besides its model's build
MIN_SOLVE_S = 0.1


@dataclass
class _Budget:
    """The clock, and the seconds the last model took to build (before the first: the
    planner's estimate per stage): a solve is not started where the time left would not cover
    another (a build is not interrupted once begun, and the solves' even shares did not count
    it: `plan --pareto 3 --time-limit 5` took 8.3 s on 1,000 workloads)."""

    clock: Callable[[], float]
    build: float


def _solve(
    pf: Portfolio | Callable[[], Portfolio],
    state: PlanState,
    objective: Objective,
    max_end: float | None,
    budget: _Budget,
    stop_at: float,
    seed: int,
    *,
    earliest: bool = False,
) -> FrontierPoint | None:
    """The best plan for ``objective`` ending by ``max_end`` hours (None: any time); with
    ``earliest``, the earliest-ending of the plans of the proved best value (:func:`_earliest`,
    within the same time). Everything counts against the clock reading ``stop_at``: the
    portfolio (where ``pf`` makes it), the model's build and the solves; None where the time
    left would not cover the build (``budget.build``, the last one's seconds) and a solve."""
    clock = budget.clock
    if stop_at - clock() < budget.build + MIN_SOLVE_S:
        return None
    began = clock()
    pf = pf if isinstance(pf, Portfolio) else pf()
    horizon = model_horizon(pf)
    start, held = retime(pf, state, horizon)
    pm = build(
        pf,
        objective,
        horizon=horizon,
        only={w.id for w in pf.sc.workloads} - held.workloads if held.workloads else None,
        fixed=list(held.bookings),
        min_span=held.floor,
        max_end=None if max_end is None else ticks_down(max_end),
    )
    add_hints(pm, start)
    budget.build = clock() - began
    seconds = stop_at - clock()
    if seconds < MIN_SOLVE_S:
        return None
    solver = new_solver()
    p = solver.parameters
    p.random_seed, p.num_workers, p.interleave_search = seed, WORKERS, True
    p.max_deterministic_time = p.max_time_in_seconds = seconds
    p.cp_model_probing_level = 0
    started = time.monotonic()
    status = solver.solve(pm.model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    if earliest and status == cp_model.OPTIMAL:
        left = seconds - (time.monotonic() - started)
        left = min(left, stop_at - clock())
        solver = _earliest(pm, solver.objective_value, min(left, EARLIEST_CAP_S), seed) or solver
    # the plan's cost, as `straits plan` reports it: rental, data movement and the amortised
    # cost of bought chips (the model's `bought`, which covers the held workloads' too)
    cost = sum(
        b.assignment.cost_usd - b.assignment.capex_usd
        for k, b in state.placed.items()
        if k[0] in held.workloads
    )
    options = {c.option.key: c.option for st in pf.stages.values() for c in st.choices}
    for res, n in pm.bought.items():
        procurable = options[res].pool.procurable
        assert procurable is not None
        cost += solver.value(n) * procurable.usd_per_chip * capex_share(pf.sc, options[res].pool)
    end = held.floor
    unplaced = 0
    chosen: dict[StageKey, Choice] = {}
    for key, xs in pm.x.items():
        if solver.boolean_value(pm.u[key]):
            unplaced += 1
            continue
        idx = next(i for i, xi in enumerate(xs) if solver.boolean_value(xi))
        chosen[key] = pf.stages[key].choices[idx]
        end = max(end, solver.value(pm.end[key]))
    cost += sum(_exact_cost(pf, state, key, c, chosen) for key, c in chosen.items())
    return FrontierPoint(
        cost, tick_hours(end), unplaced, solver.status_name(status).lower(), max_end
    )


#: the most seconds the earliest end among the cheapest plans may take (deterministic time, so
#: that the answer does not follow the machine's load; wall-clock too, as a backstop)
EARLIEST_CAP_S = 5.0


def _earliest(
    pm: PortfolioModel, optimum: float, seconds: float, seed: int
) -> cp_model.CpSolver | None:
    """A solve of ``pm`` with its objective held at the proved ``optimum`` and the end of its
    last placed stage minimised (one worker, a fixed seed: the same answer in every run); None
    when it proves nothing in ``seconds`` (the first solve's plan stands)."""
    if seconds < 0.1:
        return None
    m = pm.model.clone()  # with its hints
    terms, target = objective_terms(m, optimum)
    m.add(terms == target)
    m.clear_objective()  # type: ignore[no-untyped-call]
    top = max((list(m.proto.variables[v.index].domain)[-1] for v in pm.end.values()), default=0)
    last = m.new_int_var(0, top, "last_end")
    for key, end in pm.end.items():
        m.add(last >= m.get_int_var_from_proto_index(end.index)).only_enforce_if(
            m.get_bool_var_from_proto_index(pm.u[key].index).negated()
        )
    m.minimize(last)
    solver = new_solver()
    p = solver.parameters
    p.num_workers, p.random_seed = 1, seed
    p.max_deterministic_time = p.max_time_in_seconds = seconds
    p.cp_model_probing_level = 0
    return solver if solver.solve(m) == cp_model.OPTIMAL else None


def _exact_cost(
    pf: Portfolio, state: PlanState, key: StageKey, c: Choice, chosen: dict[StageKey, Choice]
) -> float:
    """What ``straits plan`` charges for stage ``key`` on ``c``: compute, its datasets' and its
    predecessors' weights' egress from where they run. The model's whole dollars (rounded up,
    the dearest weights' move) put a 314.55-dollar plan at 316 on the frontier."""
    w = pf.sc.workload(key[0])
    size = weights_gb(w.model)
    weights = 0.0
    for p in w.stage(key[1]).after:
        pc, held = chosen.get((w.id, p)), state.placed.get((w.id, p))
        src = pc.option.site if pc is not None else held.site if held is not None else None
        if src is not None:
            weights += egress_usd(size, src, c.option.site)
    return c.option.cost(c.est) + c.egress + weights


def frontier(
    cand: Candidates,
    *,
    points: int = 5,
    time_limit: float = 30.0,
    seed: int = 0,
    deadline: Deadline | None = None,
) -> list[FrontierPoint]:
    """Up to ``points`` plans from the cheapest to the fastest, none beaten on both counts.
    Costs are the plan's: rental, data movement and bought chips' amortised cost, to the
    cent as ``straits plan`` counts them; times in the model's minutes. The
    time left on ``deadline`` (else ``time_limit``) is shared evenly between the plans."""
    deadline = deadline or Deadline(time_limit)
    cost, time = OBJECTIVES["cost"], OBJECTIVES["time"]
    with deadline.phase("greedy"):
        greedy = GreedyPlanner(cand, objective=cost, stop_at=deadline.at(0.5 * deadline.left()))
        plan = greedy.run()
    _within_calendar(plan, cand.sc)  # a frontier offers no plan that `straits plan` refuses
    stages = sum(len(w.stages) for w in cand.sc.workloads)
    budget = _Budget(deadline.clock, MODEL_S[0] + MODEL_S[1] * stages)
    greedy_point = FrontierPoint(
        plan.total_cost_usd, plan.makespan_hours, len(plan.unplaced), "greedy", None
    )
    if deadline.until(0.05) < budget.build + MIN_SEARCH_S:
        # no time to build a model and search it, as `straits plan` decides: the greedy plan
        # (its portfolio alone took 3 s of a 4 s limit spent, on 1,000 workloads)
        return [greedy_point]
    with deadline.phase("model"):
        pf = Portfolio(cand, cost, greedy.state)
    n = max(1, points)

    def stop(k: int) -> float:
        """The k-th of n solves gets an even share of what is left, or at least the time its
        model's build and the least search take, where that much is left (an even share
        smaller than the build left a chain of 2,000 stages no solve in 12 s)."""
        left = deadline.until(0.05)
        return deadline.clock() + min(left, max(left / max(1, n - k), budget.build + MIN_SEARCH_S))

    with deadline.phase("search"):
        cheap = _solve(pf, greedy.state, cost, None, budget, stop(0), seed, earliest=True)
        # one point asked for: the cheapest alone (the fastest too made it two, past --pareto 1)
        # the fastest on a portfolio of its own: the cost portfolio's choices carry cost values
        # (and leave out the late penalties a cost model adds), so a makespan solve on it found
        # the cheapest plan without penalties, slower than the cheapest plan with them; that
        # portfolio is made within the fastest plan's share, and only where it has one
        fast = (
            _solve(
                lambda: Portfolio(cand, time, greedy.state),
                greedy.state,
                time,
                None,
                budget,
                stop(1),
                seed,
            )
            if points > 1
            else None
        )
    # the greedy plan is a point too: out of time for every solve, the frontier is that plan
    found = [p for p in (cheap, fast) if p is not None] or [greedy_point]
    if (
        cheap is not None
        and fast is not None
        and points > 2
        and cheap.makespan_hours > fast.makespan_hours
    ):
        lo, hi = fast.makespan_hours, cheap.makespan_hours
        for k in range(1, points - 1):
            bound = hi - (hi - lo) * k / (points - 1)
            with deadline.phase("search"):
                p = _solve(pf, greedy.state, cost, bound, budget, stop(k + 1), seed, earliest=True)
            if p is not None:
                found.append(p)
    last = deadline_hours(cand.sc, MAX_DATE)
    found = [p for p in found if p.makespan_hours <= last] or [greedy_point]
    best = min((p.unplaced for p in found), default=0)
    found = [p for p in found if p.unplaced == best]
    front = [
        p
        for p in found
        if not any(
            q.cost_usd <= p.cost_usd
            and q.makespan_hours <= p.makespan_hours
            and (q.cost_usd, q.makespan_hours) != (p.cost_usd, p.makespan_hours)
            for q in found
        )
    ]
    unique = {(p.cost_usd, p.makespan_hours): p for p in front}
    return sorted(unique.values(), key=lambda p: p.makespan_hours)
