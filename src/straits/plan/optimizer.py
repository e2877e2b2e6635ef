"""The portfolio optimizer: CP-SAT over the lawful choices, warm-started by the greedy plan.

The greedy plan is always computed first: it seeds CP-SAT with a hint and is the answer if
CP-SAT finds nothing better in time. The search interleaves its workers in one thread, so for
a given seed it is deterministic: the same scenario and seed give the same plan whenever the
search ends by proving optimality or by its deterministic-time budget (both equal to the time
limit); only when the wall clock runs out first, on a slow machine or a large portfolio, can two
runs differ. Every plan CP-SAT returns is re-checked against the rules with its final export
volumes before it is used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from ortools.sat.python import cp_model

from straits.model.scenario import Scenario, Site, Workload
from straits.plan.bounds import standalone_bound, stronger
from straits.plan.candidates import Candidates
from straits.plan.checks import ExportLedger
from straits.plan.cpsat_model import PortfolioModel, StageKey, add_hints, build, edge_lag
from straits.plan.diagnosis import rediagnose
from straits.plan.greedy import GreedyPlanner, deadline_hours, make_assignment, record_exports
from straits.plan.options import capex_share, pool_steps, procured_steps
from straits.plan.portfolio import Portfolio
from straits.plan.result import Assignment, Plan, StageDiagnosis, Status
from straits.plan.timeline import Timeline
from straits.plan.transfer import egress_usd, transfer_hours, weights_gb
from straits.plan.whynot import explain

WORKERS = 4


@dataclass(frozen=True)
class SearchState:
    """Where the search stands, in the objective's own terms: each of ``best`` and ``bound``
    is (unplaced stages, score), the score in dollars for ``cost`` and in hours otherwise."""

    elapsed: float
    best: tuple[int, float] | None
    bound: tuple[int, float] | None

    @property
    def gap(self) -> float | None:
        return _gap(self.best, self.bound)

    def describe(self, objective: str) -> str:
        if self.best is None:
            return "searching"
        suffix = " USD" if objective == "cost" else " h"

        def unit(v: float) -> str:
            return f"{v:,.0f}{suffix}"

        text = unit(self.best[1]) + (f", {self.best[0]} unplaced" if self.best[0] else "")
        if self.bound is not None:
            if self.bound[0] < self.best[0]:
                text += f"; bound allows {self.best[0] - self.bound[0]} more placed"
            else:
                text += f"; bound {unit(self.bound[1])}, gap {self.gap or 0.0:.1%}"
        return text


Progress = Callable[[SearchState], object]
"""Called with the search's state as it improves (and every half second). It must not raise;
if it does, the search stops and the exception is raised from ``optimize`` once CP-SAT has
returned (an exception inside CP-SAT's callback would abort the process). Returning ``True``
asks the search to stop early (the best plan so far stands)."""


def _gap(best: tuple[int, float] | None, bound: tuple[int, float] | None) -> float | None:
    """The relative gap of the score when the bound places no more stages than the plan;
    None when there is no plan or the bound does not rule out placing more stages."""
    if best is None or bound is None or bound[0] < best[0]:
        return None
    if bound[0] > best[0]:
        return 0.0
    return max(0.0, (best[1] - bound[1]) / max(abs(best[1]), 1.0))


@dataclass(frozen=True)
class SolveInfo:
    status: str
    best: tuple[int, float] | None
    bound: tuple[int, float] | None
    wall_s: float
    solutions: int

    def gap(self, plan: Plan, objective: str, sc: Scenario) -> float | None:
        return _gap(_score(plan, objective, sc), self.bound)

    def bound_note(self, plan: Plan, objective: str, sc: Scenario) -> str:
        best = _score(plan, objective, sc)
        if self.bound is not None and self.bound[0] < best[0]:
            return (f"; its bound does not rule out placing {best[0] - self.bound[0]} "
                    "more stages")
        gap = self.gap(plan, objective, sc)
        return f", gap {gap:.2%} to the bound" if gap is not None else ""


def _score(plan: Plan, objective: str, sc: Scenario) -> tuple[int, float]:
    """A plan in the model's terms: (unplaced stages, dollars | makespan | weighted
    completion hours)."""
    if objective == "cost":
        return len(plan.unplaced), plan.objective_usd
    if objective == "time":
        return len(plan.unplaced), plan.makespan_hours
    done: dict[str, float] = {}
    for a in plan.assignments:
        done[a.workload] = max(done.get(a.workload, 0.0), a.end_h)
    return len(plan.unplaced), float(sum(
        round(w.weight * 100) * done[w.id] for w in sc.workloads if w.id in done))


class _Watcher(cp_model.CpSolverSolutionCallback):
    """CP-SAT's callbacks run inside the C++ solver: nothing may propagate out of them. An
    exception from ``on_progress`` is kept, the search is asked to stop, and the exception is
    re-raised once Solve has returned.

    The stop itself is deferred to the ticker thread and waits until the search has reported
    something after its first solution: OR-Tools 9.15 aborts the process (``Check failed:
    solution->size() == postsolve_mapping.size()``) when the search is stopped between the
    solution it builds from the hint and the end of presolve. Until then the search goes on, at
    most to its time limit."""

    def __init__(self, on_progress: Progress | None, pm: PortfolioModel) -> None:
        super().__init__()
        self.on_progress = on_progress
        self.pm = pm
        self.error: BaseException | None = None
        self.stop_requested = threading.Event()
        self.best: tuple[int, float] | None = None
        self.bound: tuple[int, float] | None = None
        self.count = 0
        self.events_after_first = 0
        self.t0 = time.monotonic()
        self._lock = threading.Lock()

    def on_solution_callback(self) -> None:
        try:
            self._event()
            self.count += 1
            self.best = self.pm.decode(self.objective_value)
            self.bound = self.pm.decode(self.best_objective_bound)
            self.report()
        except BaseException as exc:  # never into the solver
            self._failed(exc)

    def on_bound(self, bound: float) -> None:
        try:
            self._event()
            self.bound = self.pm.decode(bound)
            self.report()
        except BaseException as exc:  # never into the solver
            self._failed(exc)

    def _event(self) -> None:
        if self.count:
            self.events_after_first += 1

    @property
    def may_stop(self) -> bool:
        return self.stop_requested.is_set() and self.events_after_first > 0

    def report(self) -> None:
        if self.on_progress is None or self.error is not None:
            return
        with self._lock:  # the solver's threads and the ticker take turns
            try:
                stop = self.on_progress(SearchState(time.monotonic() - self.t0, self.best,
                                                    self.bound))
            except BaseException as exc:
                self._failed(exc)
                return
        if stop is True:
            self.stop_requested.set()

    def _failed(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.stop_requested.set()


def retime_hints(pm: PortfolioModel, greedy: GreedyPlanner
                 ) -> dict[StageKey, tuple[int | None, int]]:
    """The greedy plan in the model's whole hours: the same choices, started as early as the
    rounded durations, releases and capacities allow."""
    pf = pm.pf
    timelines: dict[str, Timeline] = {}
    out: dict[StageKey, tuple[int | None, int]] = {}
    ends: dict[StageKey, int] = {}
    spent: dict[str, int] = {}
    order = sorted(greedy.state.placed.items(), key=lambda kv: kv[1][0].start_h)
    for key in pm.x:
        out[key] = (None, 0)
    for key, _ in order:
        st = pf.stages.get(key)
        if st is None or st.hint is None:
            continue
        c = st.choices[st.hint]
        ready = c.release
        for p in st.stage.after:
            pk = (key[0], p)
            if pk not in ends:
                ready = -1
                break
            ready = max(ready, ends[pk] + edge_lag(pf, st.workload, pf.stages[pk], st))
        if ready < 0:
            continue
        res = c.option.key
        if res not in timelines:
            o = c.option
            steps = procured_steps(o.pool) if o.procured else pool_steps(pf.sc, o.pool)
            timelines[res] = Timeline(max(n for _, n in steps), steps)
        s = timelines[res].earliest(c.est.chips, c.duration, ready)
        if s is None or s + c.duration > pm.horizon:
            continue
        s = int(-(-s // 1))
        w = st.workload
        if w.deadline is not None and w.deadline_policy == "hard" and \
                s + c.duration > int(deadline_hours(pf.sc, w.deadline) + 1e-9):
            continue  # rounded up to whole hours it no longer makes it: leave it out
        if w.budget_usd is not None and spent.get(w.id, 0) + c.cost > int(w.budget_usd):
            continue
        spent[w.id] = spent.get(w.id, 0) + c.cost
        timelines[res].book(s, s + c.duration, c.est.chips)
        out[key] = (st.hint, s)
        ends[key] = s + c.duration
    return out


def optimize(cand: Candidates, objective: str, *, time_limit: float = 30.0, seed: int = 0,
             on_progress: Progress | None = None) -> Plan:
    """The best plan CP-SAT finds in ``time_limit`` seconds, or the greedy plan; unplaced
    stages come with the constraints that keep them out."""
    plan, pf = _optimize(cand, objective, time_limit, seed, on_progress)
    if plan.unplaced and pf is not None:
        plan = replace(plan, why_not=explain(pf, plan, objective))
    return plan


def _optimize(cand: Candidates, objective: str, time_limit: float, seed: int,
              on_progress: Progress | None) -> tuple[Plan, Portfolio | None]:
    t0 = time.monotonic()
    greedy = GreedyPlanner(cand, objective=objective)
    baseline = greedy.run()
    if not cand.sc.workloads:
        return replace(baseline, solver="cpsat"), None
    pf = Portfolio(cand, greedy)
    pm = build(pf, objective)
    add_hints(pm, retime_hints(pm, greedy))
    solver = cp_model.CpSolver()
    p = solver.parameters
    p.random_seed = seed
    p.num_workers = WORKERS
    p.interleave_search = True
    p.max_deterministic_time = max(0.5, time_limit)
    p.max_time_in_seconds = max(1.0, time_limit)
    p.cp_model_probing_level = 0  # probing the presolved model costs more than it saves here
    watcher = _Watcher(on_progress, pm)
    solver.best_bound_callback = watcher.on_bound
    stop = threading.Event()
    ticker = threading.Thread(target=_tick, args=(watcher, stop, solver), daemon=True)
    ticker.start()
    try:
        status = solver.solve(pm.model, watcher)
    finally:
        stop.set()
        ticker.join()
    if watcher.error is not None:
        raise watcher.error
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    info = SolveInfo(solver.status_name(status),
                     pm.decode(solver.objective_value) if found else None,
                     stronger(pm.decode(solver.best_objective_bound) if found else None,
                              standalone_bound(pf, objective)),
                     solver.wall_time, watcher.count)
    left = f", {len(baseline.unplaced)} stages unplaced" if baseline.unplaced else ""
    prefix = (f"greedy baseline {baseline.objective_usd:,.0f} USD{left}" if objective == "cost"
              else f"greedy baseline makespan {baseline.makespan_hours:,.0f} h{left}")
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        note = (f"CP-SAT found no plan in {time_limit:g} s ({info.status.lower()}); the greedy "
                f"plan stands{info.bound_note(baseline, objective, pf.sc)}")
        return _greedy_stands(baseline, info, objective, pf.sc, (note, prefix)), pf
    plan = extract(pm, solver, greedy, baseline, objective, info)
    if plan is None:
        note = "the CP-SAT plan failed the final rule check; the greedy plan stands"
        return _greedy_stands(baseline, info, objective, pf.sc, (note, prefix)), pf
    better = plan.objective_usd < baseline.objective_usd - 0.5 if objective == "cost" else \
        plan.makespan_hours < baseline.makespan_hours - 1e-6
    if len(plan.unplaced) > len(baseline.unplaced) or (
            len(plan.unplaced) == len(baseline.unplaced) and not better
            and info.status != "OPTIMAL"):
        note = (f"CP-SAT ({info.status.lower()}, {info.wall_s:.1f} s) did not improve on the "
                f"greedy plan, which stands{info.bound_note(baseline, objective, pf.sc)}")
        return _greedy_stands(baseline, info, objective, pf.sc, (note, prefix)), pf
    note = (f"CP-SAT {info.status.lower()} in {time.monotonic() - t0:.1f} s "
            f"({info.solutions} solutions{info.bound_note(plan, objective, pf.sc)}); {prefix}")
    return replace(plan, gap=info.gap(plan, objective, pf.sc),
                   bound_usd=_bound(info, objective, plan),
                   bound_unplaced=info.bound[0] if info.bound else None,
                   baseline_usd=baseline.objective_usd,
                   baseline_unplaced=len(baseline.unplaced), notes=(*plan.notes, note)), pf


def _greedy_stands(baseline: Plan, info: SolveInfo, objective: str, sc: Scenario,
                   notes: tuple[str, ...]) -> Plan:
    """The greedy plan as the answer, with the bound (CP-SAT's or the search-free one) and
    its gap."""
    return replace(baseline, solver="cpsat", bound_usd=_bound(info, objective, baseline),
                   bound_unplaced=info.bound[0] if info.bound else None,
                   gap=info.gap(baseline, objective, sc), baseline_usd=baseline.objective_usd,
                   baseline_unplaced=len(baseline.unplaced), notes=(*baseline.notes, *notes))


def _tick(watcher: _Watcher, stop: threading.Event, solver: cp_model.CpSolver) -> None:
    """Report progress every half second, and stop the search when asked and safe."""
    last = time.monotonic()
    while not stop.wait(0.05):
        if watcher.may_stop:
            solver.stop_search()
            return
        if time.monotonic() - last >= 0.5:
            last = time.monotonic()
            try:
                watcher.report()
            except BaseException as exc:  # report() keeps errors; this is belt and braces
                watcher._failed(exc)


def _bound(info: SolveInfo, objective: str, plan: Plan) -> float | None:
    """CP-SAT's bound on the cost, for plans that leave as many stages unplaced as the bound.
    The model counts each stage's cost rounded up to a whole dollar and the costliest route
    for its predecessors' weights, so its bound can exceed the exact cost of the plan by a few
    dollars: it is clipped there."""
    if objective != "cost" or info.bound is None or info.bound[0] < len(plan.unplaced):
        return None
    return min(info.bound[1], plan.objective_usd)


def extract(pm: PortfolioModel, solver: cp_model.CpSolver, greedy: GreedyPlanner,
            baseline: Plan, objective: str, info: SolveInfo) -> Plan | None:
    """The plan CP-SAT found, with exact times, costs, verdicts and diagnosis; None when a
    placement fails the final rule check."""
    pf, sc, cand = pm.pf, pm.pf.sc, pm.pf.cand
    chosen: dict[StageKey, tuple[int, int]] = {}
    for key, xs in pm.x.items():
        if solver.boolean_value(pm.u[key]):
            continue
        idx = next(i for i, xi in enumerate(xs) if solver.boolean_value(xi))
        chosen[key] = (idx, solver.value(pm.start[key]))
    ledger = ExportLedger()
    for (wid, sid), (idx, _) in chosen.items():
        w = sc.workload(wid)
        record_exports(sc, w, w.stage(sid), pf.stages[(wid, sid)].choices[idx].option.site,
                       ledger, cand.date.year)
    placed: dict[StageKey, tuple[Assignment, Site, float]] = {}
    capex_paid: set[str] = set()
    lateness: dict[str, float] = {}
    for key, (idx, start) in sorted(chosen.items(), key=lambda kv: kv[1][1]):
        st = pf.stages[key]
        w, stage, c = st.workload, st.stage, st.choices[idx]
        preds = [(w.stage(p), placed[(w.id, p)][1], cand.ops[w.id][p]) for p in stage.after]
        verdict = cand.verdict(w, stage, c.option, preds, [ledger])
        if not verdict.lawful:
            return None
        egress = c.egress + sum(egress_usd(weights_gb(w.model), placed[(w.id, p)][1],
                                              c.option.site) for p in stage.after)
        transfer = max([c.transfer] + [transfer_hours(weights_gb(w.model),
                                                      placed[(w.id, p)][1], c.option.site)
                                       for p in stage.after])
        capex = 0.0
        if c.option.procured and c.option.key not in capex_paid:
            capex_paid.add(c.option.key)
            assert c.option.pool.procurable is not None
            capex = solver.value(pm.bought[c.option.key]) * \
                c.option.pool.procurable.usd_per_chip * capex_share(sc, c.option.pool)
        end = start + c.est.hours
        late = _late(w, sc, end)
        penalty = max(0.0, late - lateness.get(w.id, 0.0)) / 24.0 * w.late_penalty_usd_per_day
        lateness[w.id] = max(lateness.get(w.id, 0.0), late)
        a = make_assignment(sc, w, stage, c.option, c.est, float(start), end, egress, transfer,
                            capex, verdict, late, penalty)
        placed[key] = (a, c.option.site, cand.ops[w.id][stage.id])
    diagnosis = tuple(_diagnose(d, placed, greedy, objective) for d in baseline.diagnosis)
    unplaced = tuple(d for d in diagnosis if d.chosen is None)
    status: Status = "infeasible" if unplaced else (
        "optimal" if info.status == "OPTIMAL" else "feasible")
    notes = tuple(f"{a.workload}/{a.stage} ends {a.late_hours:,.0f} h after the deadline "
                  f"(soft deadline)" for a, _, _ in placed.values() if a.late_hours > 0)
    return replace(baseline, solver="cpsat", status=status,
                   assignments=tuple(a for a, _, _ in placed.values()), unplaced=unplaced,
                   diagnosis=diagnosis, notes=notes)


def _late(w: Workload, sc: Scenario, end: float) -> float:
    if w.deadline is None or w.deadline_policy == "hard":
        return 0.0
    return max(0.0, end - deadline_hours(sc, w.deadline))


def _diagnose(d: StageDiagnosis, placed: dict[StageKey, tuple[Assignment, Site, float]],
              greedy: GreedyPlanner, objective: str) -> StageDiagnosis:
    got = placed.get((d.workload, d.stage))
    return rediagnose(d, got[0] if got else None, greedy, objective)

