"""The solvers: the greedy baseline, CP-SAT on the whole portfolio, and neighbourhood search.

Every solver follows one protocol (:class:`Solver`) and one time budget: the greedy plan first
(always: it is the baseline, the warm start and the answer when nothing beats it), then the
search until the deadline less what extraction, explanations and output still need, then the
answer. A searched plan is used when it places more stages, or as many at a better value of
the objective, or is proved optimal; otherwise the greedy plan stands and the answer says so,
with the bound and the gap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

from straits.plan.ahead import AHEAD_S
from straits.plan.alone import CAUSES, AloneBound, alone_bound
from straits.plan.bounds import standalone_bound, stronger
from straits.plan.candidates import Candidates
from straits.plan.cpsat_model import (
    ModelTooLarge,
    PortfolioModel,
    Score,
    add_hints,
    build,
)
from straits.plan.deadline import Deadline, document_s
from straits.plan.greedy import GreedyPlanner
from straits.plan.horizon import model_ticks
from straits.plan.lns import PIECE_SECONDS, NeighbourhoodSearch
from straits.plan.lns_pick import own_pools
from straits.plan.lp_bound import lp_bound
from straits.plan.objectives import Objective
from straits.plan.portfolio import Portfolio
from straits.plan.result import Plan, Status
from straits.plan.retime import Held, model_horizon, retime
from straits.plan.schedule import StageKey
from straits.plan.search import (
    PIECE_WORKERS,
    WHOLE_MAX_STAGES,
    Progress,
    Reporter,
    WholeModel,
    gap,
)
from straits.plan.solution import Solution, Value, evaluate, extract
from straits.plan.tiebreak import after_proof
from straits.plan.whynot import explain, to_explain

#: seconds kept back, per stage and at least, for turning the answer into a plan, explaining
#: unplaced stages and printing (measured on the 1,000 x 200 benchmark, with room to spare)
MODEL_S = (0.2, 0.0015)
EXTRACT_S = (0.2, 0.0008)
WHY_NOT_S = (0.5, 0.0)
OUTPUT_S = (0.2, 0.0005)
#: the least search worth starting, in seconds
MIN_SEARCH_S = 0.5
#: the largest share of the search's time the capacity-aware bound may take (it gets none when
#: it cannot finish in it)
BOUND_SHARE = 0.5
#: the search's ``split`` neighbourhoods (the LP's per-workload value): off, since they did not
#: help at 55 or 150 s on the 1,000 x 200 benchmark (docs/architecture.md, eleventh pass)
SPLIT = False
#: seconds the whole model's own limit is set before the search's end (it overshoots on a
#: large model)
WHOLE_MARGIN_S = (0.5, 0.0004)


def _reserve(parts: tuple[tuple[float, float], ...], stages: int, sc: Any = None) -> float:
    return sum(base + per * stages for base, per in parts) + (document_s(sc) if sc else 0.0)


@dataclass
class SolveContext:
    """What every solver is given besides the portfolio and the objective."""

    deadline: Deadline
    seed: int = 0
    on_progress: Progress | None = None
    requested: str = ""
    """the solver name the caller asked for (``auto`` included)"""


class Solver(Protocol):
    name: str

    def solve(self, cand: Candidates, objective: Objective, ctx: SolveContext) -> Plan: ...


def _stages(cand: Candidates) -> int:
    return sum(len(w.stages) for w in cand.sc.workloads)


def _valued(plan: Plan, cand: Candidates, objective: Objective) -> Plan:
    return replace(
        plan,
        objective_value=objective.plan_value(plan, cand.sc, cand.energy_of),
        objective_unit=objective.unit,
    )


def _greedy(
    cand: Candidates, objective: Objective, ctx: SolveContext, reserve: float
) -> tuple[GreedyPlanner, Plan]:
    """The greedy plan, stopped ``reserve`` seconds before the deadline if it gets there."""
    d = ctx.deadline
    with d.phase("greedy"):
        g = GreedyPlanner(cand, objective=objective, stop_at=d.at(reserve), clock=d.clock)
        plan = _valued(g.run(), cand, objective)
    return g, replace(
        plan,
        baseline_value=plan.objective_value,
        baseline_usd=plan.objective_usd if objective.is_cost else None,
    )


def _why_not(
    plan: Plan,
    pf: Portfolio | None,
    cand: Candidates,
    objective: Objective,
    g: GreedyPlanner,
    ctx: SolveContext,
) -> Plan:
    """Explain unplaced stages with what is left of the budget (output kept back)."""
    d = ctx.deadline
    todo = to_explain(plan, cand.sc)
    if not todo:
        return plan
    with d.phase("why_not"):
        stop = d.at(_reserve((OUTPUT_S, AHEAD_S), _stages(cand), cand.sc))
        if d.clock() >= stop or g.stopped:
            return replace(
                plan, notes=(*plan.notes, "why-not explanations skipped: the time limit ran out")
            )
        pf = pf or Portfolio(cand, objective, g.state, only={x.workload for x in todo})
        return replace(plan, why_not=explain(pf, plan, objective, stop_at=stop, clock=d.clock))


class GreedySolver:
    name = "greedy"

    def solve(self, cand: Candidates, objective: Objective, ctx: SolveContext) -> Plan:
        n = _stages(cand)
        g, plan = _greedy(cand, objective, ctx, _reserve((OUTPUT_S, AHEAD_S), n, cand.sc))
        plan = replace(
            plan,
            baseline_value=None,
            baseline_usd=None,
            search={
                "requested": ctx.requested or self.name,
                "solver": self.name,
                "rounds": g.rounds,
            },
        )
        return _why_not(plan, None, cand, objective, g, ctx)


class _Searching:
    """CP-SAT after the greedy plan: on the whole model, and on neighbourhoods if ``lns``."""

    name = "cpsat"
    lns = False

    def solve(self, cand: Candidates, objective: Objective, ctx: SolveContext) -> Plan:
        d = ctx.deadline
        n = _stages(cand)
        after_search = _reserve((EXTRACT_S, WHY_NOT_S, OUTPUT_S, AHEAD_S), n, cand.sc)
        before_search = _reserve((MODEL_S,), n) + MIN_SEARCH_S
        # a complete greedy plan comes first: it may use all but the output's share, and the
        # search gets what it leaves
        g, baseline = _greedy(cand, objective, ctx, _reserve((OUTPUT_S, AHEAD_S), n, cand.sc))
        info: dict[str, Any] = {
            "requested": ctx.requested or self.name,
            "solver": self.name,
            "answer": "greedy",
        }
        if not cand.sc.workloads:
            return replace(baseline, solver=self.name, search=info)
        if g.stopped or d.left() < after_search + before_search:
            note = "no time was left to search: the greedy plan stands"
            return self._finish(baseline, baseline, None, objective, cand, g, None, ctx, info, note)
        # above WHOLE_MAX_STAGES the neighbourhood search runs alone: it reads only the
        # horizon and the tie unit of the whole model, so the model is built only where it is
        # searched or has a tie unit (named objectives other than cost): 1.4 s of 55 on the
        # 1,000 x 200 benchmark given to the pieces (docs/architecture.md, twenty-first pass)
        searched = not (self.lns and n > WHOLE_MAX_STAGES)
        pm: PortfolioModel | None = None
        with d.phase("model"):
            pf = Portfolio(cand, objective, g.state)
            horizon = model_horizon(pf)
            start, held = retime(pf, g.state, horizon)
            active = {w.id for w in cand.sc.workloads} - held.workloads
            only = active if held.workloads else None
            try:
                if searched or objective.tie_cost:
                    pm = build(
                        pf,
                        objective,
                        horizon=horizon,
                        only=only,
                        fixed=list(held.bookings),
                        min_span=held.floor,
                    )
            except ModelTooLarge as exc:
                note = f"the greedy plan stands: {exc}"
                return self._finish(
                    baseline,
                    baseline,
                    standalone_bound(pf, objective),
                    objective,
                    cand,
                    g,
                    pf,
                    ctx,
                    info,
                    note,
                )
            if pm is not None and searched:
                add_hints(pm, start)
            bound0 = standalone_bound(pf, objective)
            if held.workloads:
                info["held"] = sorted(held.workloads)
        guide: dict[StageKey, dict[str, float]] = {}  # the LP's answer, for the search
        shares: dict[str, float] = {}  # and its value per workload
        with d.phase("bound"):
            # each workload alone, exactly; skipped when it would eat the search's minimum
            alone = alone_bound(
                pf, objective, stop_at=d.at(after_search + MIN_SEARCH_S), clock=d.clock
            )
            info["bound"] = {
                "source": "alone" if alone is not None and alone.bound > bound0 else "standalone"
            }
            if alone is not None:
                bound0 = stronger(bound0, alone.bound)
            if alone is not None:
                # then the pools' capacity, as a linear relaxation, with its share of the time
                # the search would have. Where the greedy plan leaves more unplaced than the
                # workloads alone, it bounds the value at their count (``own_count``: one
                # solve, not two; the count itself stays the alone bound's): the gap is stated
                # once the search places those stages, and its answer guides the search there
                share = BOUND_SHARE * (d.left() - after_search)
                lp = lp_bound(
                    pf,
                    alone,
                    plan_unplaced=len(baseline.unplaced),
                    stop_at=d.clock() + share,
                    clock=d.clock,
                    guide=guide,
                    shares=shares,
                    own_count=alone.bound.unplaced < len(baseline.unplaced),
                )
                if lp is not None and lp > bound0:
                    info["bound"]["source"] = "lp"
                    bound0 = lp
        reporter = Reporter(ctx.on_progress, objective, d.clock)
        reporter.bounded(bound0)
        whole = WholeModel(pm, reporter, seed=ctx.seed)
        tie = pm.tie_unit if pm is not None else 0
        local: NeighbourhoodSearch | None = None
        with d.phase("search"):
            stop_at = d.at(after_search)
            seconds = stop_at - d.clock()
            if seconds >= MIN_SEARCH_S:
                if not searched:
                    whole.skip()  # its core goes to the pieces
                else:
                    whole.start(max(MIN_SEARCH_S, seconds - _reserve((WHOLE_MARGIN_S,), n)))
                try:
                    if self.lns:
                        local = self._search(
                            pf,
                            objective,
                            (model_ticks(pf, horizon, only), tie),
                            start,
                            held,
                            whole,
                            reporter,
                            ctx,
                            stop_at,
                            (guide, shares),
                            alone,
                        )
                finally:
                    whole.wait(d.clock, stop_at)
            reporter.raise_error()
        info["ended"] = (
            "proved"
            if whole.optimal
            else "stopped"
            if reporter.cancelled
            else "model_too_large"
            if local is not None and local.too_large
            else "time"
        )
        if whole.optimal and not reporter.cancelled and pm is not None:
            stop_at = d.at(after_search)
            after_proof(pf, objective, pm, start, held, whole, d, ctx.seed, stop_at, info)
        bound = stronger(whole.bound or reporter.bound, bound0)
        if bound > bound0:
            info["bound"]["source"] = "cpsat"
        info["whole_model"] = {"status": whole.status.lower(), "solutions": whole.solutions}
        if local is not None:
            info["neighbourhoods"] = local.stats.to_json() | {"workers": local.workers}
            if local.too_large:
                info["model_too_large"] = local.too_large
        return self._answer(
            cand,
            objective,
            ctx,
            g,
            baseline,
            pf,
            tie,
            start,
            held,
            whole,
            local,
            bound,
            info,
            alone,
        )

    def _search(
        self,
        pf: Portfolio,
        objective: Objective,
        model: tuple[int, int],
        start: Solution,
        held: Held,
        whole: WholeModel,
        reporter: Reporter,
        ctx: SolveContext,
        stop_at: float,
        lp: tuple[dict[StageKey, dict[str, float]], dict[str, float]],
        alone: AloneBound | None,
    ) -> NeighbourhoodSearch:
        d = ctx.deadline
        most_placed = (
            {w.id: len(w.stages) - alone.workloads[w.id].unplaced for w in pf.sc.workloads}
            if alone is not None
            else None
        )
        local = NeighbourhoodSearch(
            pf,
            objective,
            model[0],
            start,
            seed=ctx.seed,
            workers=PIECE_WORKERS if whole.status == "NOT RUN" else 1,
            tie_unit=model[1],
            held=held,
            stop=reporter.stop,
            guide=lp[0],
            most_placed=most_placed,
            shares=lp[1] if SPLIT else None,
            own_pools=own_pools(pf, alone) if alone is not None else None,
        )
        seen: Solution | None = None
        while d.clock() < stop_at - 0.05 and not reporter.stop.is_set() and not local.too_large:
            latest = whole.latest
            if latest is not None and latest is not seen:
                seen = latest
                local.adopt(latest)
            if local.step(PIECE_SECONDS, stop_at, d.clock):
                reporter.found(local.score())
        return local

    def _answer(
        self,
        cand: Candidates,
        objective: Objective,
        ctx: SolveContext,
        g: GreedyPlanner,
        baseline: Plan,
        pf: Portfolio,
        tie: int,
        start: Solution,
        held: Held,
        whole: WholeModel,
        local: NeighbourhoodSearch | None,
        bound: Score,
        info: dict[str, Any],
        alone: AloneBound | None,
    ) -> Plan:
        d = ctx.deadline
        found: list[tuple[Value, int, str, Solution]] = []
        if whole.latest is not None:
            found.append(
                (evaluate(pf, objective, whole.latest, tie, held), 0, "cpsat", whole.latest)
            )
        if local is not None:
            found.append((local.value, 1, "lns", local.sol))
        greedy_note = f"greedy baseline {objective.describe(baseline.objective_value or 0.0)}" + (
            f", {len(baseline.unplaced)} stages unplaced" if baseline.unplaced else ""
        )
        what = "CP-SAT" + (" with neighbourhood search" if local is not None else "")
        if found:
            value, _, source, best = min(found, key=lambda f: (f[0], f[1]))
            proved = whole.optimal and found[0][2] == "cpsat" and found[0][0] == value
            if value < evaluate(pf, objective, start, tie, held) or proved:
                with d.phase("extract"):
                    status: Status = "optimal" if proved else "feasible"
                    plan = extract(pf, best, baseline, objective, status, self.name, held)
                if plan is None:
                    note = "the searched plan failed the final rule check; the greedy plan stands"
                    return self._finish(
                        baseline, baseline, bound, objective, cand, g, pf, ctx, info, note, alone
                    )
                plan = _valued(plan, cand, objective)
                tol = 0.5 if objective.unit == "USD" else 1e-6
                mine, greedy = plan.objective_value or 0.0, baseline.objective_value or 0.0
                # proved in the model's units: durations rounded up to whole ticks, so the
                # greedy plan's exact times may still beat it; the better plan stands
                better, worse = mine < greedy - tol, mine > greedy + tol
                if len(plan.unplaced) < len(baseline.unplaced) or (
                    len(plan.unplaced) == len(baseline.unplaced)
                    and (better or (proved and not worse))
                ):
                    info["answer"] = source
                    how = (
                        "proved optimal"
                        if proved
                        else f"found by {'CP-SAT' if source == 'cpsat' else 'neighbourhood search'}"
                    )
                    note = (
                        f"{what}: plan {how} in {d.elapsed():.1f} s"
                        f"{_bound_note(plan, bound)}; {greedy_note}"
                    )
                    return self._finish(
                        plan, baseline, bound, objective, cand, g, pf, ctx, info, note, alone
                    )
        note = (
            f"{what} did not improve on the greedy plan in {d.elapsed():.1f} s "
            f"({whole.status.lower()}), which stands{_bound_note(baseline, bound)}"
        )
        if "model_too_large" in info:  # as the whole model's own refusal says it
            note = f"the greedy plan stands: {info['model_too_large']}"
        return self._finish(
            baseline, baseline, bound, objective, cand, g, pf, ctx, info, note, alone
        )

    def _finish(
        self,
        plan: Plan,
        baseline: Plan,
        bound: Score | None,
        objective: Objective,
        cand: Candidates,
        g: GreedyPlanner,
        pf: Portfolio | None,
        ctx: SolveContext,
        info: dict[str, Any],
        note: str,
        alone: AloneBound | None = None,
    ) -> Plan:
        if alone is not None:
            causes = alone.causes((u.workload, u.stage) for u in plan.unplaced)
            info.setdefault("bound", {})["unplaced_causes"] = {
                c: causes[c] for c in CAUSES if causes[c]
            }
        value = plan.objective_value or 0.0
        best = Score(len(plan.unplaced), value)
        same = bound is not None and bound.unplaced >= len(plan.unplaced)
        bound_value = min(bound.value, value) if bound is not None and same else None
        plan = replace(
            plan,
            solver=self.name,
            gap=gap(best, bound),
            bound_unplaced=bound.unplaced if bound is not None else None,
            bound_value=bound_value,
            bound_usd=bound_value if objective.is_cost else None,
            baseline_value=baseline.objective_value,
            baseline_usd=baseline.objective_usd if objective.is_cost else None,
            baseline_unplaced=len(baseline.unplaced),
            notes=(*plan.notes, note),
            search=info,
        )
        return _why_not(plan, pf, cand, objective, g, ctx)


def _bound_note(plan: Plan, bound: Score) -> str:
    best = Score(len(plan.unplaced), plan.objective_value or 0.0)
    if bound.unplaced < best.unplaced:
        return f"; its bound does not rule out placing {best.unplaced - bound.unplaced} more stages"
    g = gap(best, bound)
    return f", gap {g:.2%} to the bound" if g is not None else ""


class WholeSolver(_Searching):
    name = "cpsat"
    lns = False


class NeighbourhoodSolver(_Searching):
    name = "lns"
    lns = True


__all__ = ["GreedySolver", "NeighbourhoodSolver", "SolveContext", "Solver", "WholeSolver"]
