"""Searching the whole portfolio model, and telling the caller how it goes.

:class:`WholeModel` solves the CP-SAT model of every stage, hinted with a complete solution,
in a thread of its own (CP-SAT releases the GIL, so it has a core to itself while the
neighbourhood search works in Python on the other). Its workers are interleaved in that one
thread, yet its path is not the same from run to run for one seed (generate 8 x 8, seed 7:
8 to 15 solutions in nine runs, with the same optimum); where several plans share the
optimum, the one returned after a proof is chosen by :mod:`straits.plan.tiebreak`.

It is stopped as soon as its bound meets its best solution (:meth:`WholeModel.check_proof`):
OR-Tools 9.15 proved that optimum on generate 8 x 8, seed 7 in 4.4 s and then returned only
at its time limit, 40 s, one subsolver (``fixed``) still running; the neighbourhood search
stops with it (the proof sets the reporter's stop event, checked between rounds).

Progress goes to the caller's callback through :class:`Reporter`, which never lets an exception
escape into OR-Tools (an exception raised inside a CP-SAT callback would end the process): it
keeps the first one, stops every search, and the solver re-raises it once the searches have
returned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from straits.plan.cpsat_model import PortfolioModel, Score, new_solver
from straits.plan.objectives import Objective
from straits.plan.solution import Solution, from_solver

#: CP-SAT workers of the whole-portfolio search, interleaved in one thread (deterministic)
WORKERS = 4
#: a bound this close to an integral objective value proves it optimal (CP-SAT's own
#: ``absolute_gap_limit``)
PROOF_TOLERANCE = 1e-4
#: seconds to wait for the whole model to stop after the search's end
STOP_GRACE_S = 0.5
#: stages above which the neighbourhood search runs without the whole model and its pieces get
#: :data:`PIECE_WORKERS` CP-SAT workers instead: on the generated 100, 300 and 1,000 x 200
#: portfolios the whole model found no solution but the greedy hint in 40-55 s (it never gave
#: the search a plan), while it held one of the two cores (docs/architecture.md, thirteenth
#: pass). Small portfolios keep it: there it proves optima.
WHOLE_MAX_STAGES = 400
PIECE_WORKERS = 2


@dataclass(frozen=True)
class SearchState:
    """Where the search stands, in the objective's own terms: each of ``best`` and ``bound``
    is (unplaced stages, value)."""

    elapsed: float
    best: Score | None
    bound: Score | None
    unit: str = "USD"

    @property
    def gap(self) -> float | None:
        return gap(self.best, self.bound)

    def describe(self, objective: str | None = None) -> str:
        if self.best is None:
            return "searching"
        suffix = f" {self.unit}"

        def unit(v: float) -> str:
            return f"{v:,.0f}{suffix}" if self.unit == "USD" else f"{v:,.2f}{suffix}"

        best, bound = self.best, self.bound
        text = unit(best.value) + (f", {best.unplaced} unplaced" if best.unplaced else "")
        if bound is not None:
            if bound.unplaced < best.unplaced:
                text += f"; bound allows {best.unplaced - bound.unplaced} more placed"
            else:
                text += f"; bound {unit(bound.value)}, gap {self.gap or 0.0:.1%}"
        return text


Progress = Callable[[SearchState], object]
"""Called with the search's state as it improves. It must not raise: if it does, the search
stops and the exception is raised once CP-SAT has returned (an exception inside CP-SAT's own
callback would abort the process). Returning ``True`` asks the search to stop early (the best
plan so far stands)."""


def gap(
    best: Score | tuple[int, float] | None, bound: Score | tuple[int, float] | None
) -> float | None:
    """The relative gap of the value when the bound places no more stages than the plan;
    None when there is no plan or the bound does not rule out placing more stages."""
    if best is None or bound is None or bound[0] < best[0]:
        return None
    if bound[0] > best[0]:
        return 0.0
    return max(0.0, (best[1] - bound[1]) / max(abs(best[1]), 1.0))


class Reporter:
    """Best plan and bound so far, reported to ``on_progress`` safely from any thread."""

    def __init__(
        self,
        on_progress: Progress | None,
        objective: Objective,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_progress = on_progress
        self.unit = objective.unit
        self.clock = clock
        self.t0 = clock()
        self.best: Score | None = None
        self.bound: Score | None = None
        self.error: BaseException | None = None
        self.cancelled = False
        """the caller asked the search to end (its callback returned True)"""
        self.closed = False
        """no more reports once the search is over (a search still stopping stays quiet)"""
        self.stop = threading.Event()
        """set when the searches must end (time, proof, or an error in the callback)"""
        self._lock = threading.Lock()

    def found(self, best: Score) -> None:
        with self._lock:
            if self.best is None or best < self.best:
                self.best = best
        self.report()

    def bounded(self, bound: Score) -> None:
        with self._lock:
            if self.bound is None or bound > self.bound:
                self.bound = bound
        self.report()

    def close(self) -> None:
        self.closed = True
        self.stop.set()

    def report(self) -> None:
        if self.on_progress is None or self.error is not None or self.closed:
            return
        try:
            stop = self.on_progress(
                SearchState(self.clock() - self.t0, self.best, self.bound, self.unit)
            )
        except BaseException as exc:
            self.error = exc
            self.stop.set()
            return
        if stop is True:  # the caller asks the search to end (a cancelled plan job)
            self.cancelled = True
            self.stop.set()

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error


class _Watcher(cp_model.CpSolverSolutionCallback):
    """The whole model's solutions as they come: decoded, kept, reported. Never raises, and
    never stops the search itself (see :meth:`WholeModel.stop`)."""

    def __init__(self, search: WholeModel) -> None:
        super().__init__()
        self.search = search

    def on_solution_callback(self) -> None:
        s = self.search
        try:
            if s.solutions:
                s.events_after_first += 1
            s.solutions += 1
            score = s.model.decode(self.objective_value)
            s.reporter.bounded(s.model.decode(self.best_objective_bound))
            if s.best_score is None or score < s.best_score:
                s.best_score = score
                s.best_raw = self.objective_value
                s.latest = from_solver(s.pm, self)  # type: ignore[arg-type]
                s.reporter.found(score)
            s.check_proof(self.best_objective_bound)
            if s.reporter.stop.is_set():
                s.stop()
        except BaseException as exc:
            s.reporter.error = s.reporter.error or exc
            s.reporter.stop.set()
            s.stop()


@dataclass
class WholeModel:
    """CP-SAT over every stage, in a thread of its own."""

    pm: PortfolioModel | None
    """None where it is not built: it is then never started (:meth:`skip`)"""
    reporter: Reporter
    seed: int = 0
    status: str = "NOT RUN"
    solutions: int = 0
    best_score: Score | None = None
    latest: Solution | None = None
    """the best solution found so far (replaced, never mutated)"""
    bound: Score | None = None
    wall_s: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)
    events_after_first: int = 0
    """solutions and bounds reported after the first solution (see :meth:`stop`)"""
    best_raw: float | None = None
    """the best solution's objective in model units"""
    proved_at: float | None = None
    """seconds into the search when its bound met its best solution (then it is stopped:
    OR-Tools 9.15 can go on to its time limit after the proof, a subsolver still running)"""
    _solver: cp_model.CpSolver | None = None
    _thread: threading.Thread | None = None
    _stop_wanted: threading.Event = field(default_factory=threading.Event)

    @property
    def optimal(self) -> bool:
        return self.status == "OPTIMAL"

    @property
    def model(self) -> PortfolioModel:
        assert self.pm is not None, "the whole model is searched only where it is built"
        return self.pm

    def skip(self) -> None:
        """Not run at all (:data:`WHOLE_MAX_STAGES`): :meth:`wait` returns at once."""
        self.status = "NOT RUN"
        self.done.set()

    def start(self, seconds: float) -> None:
        self.status = "STOPPING"  # until it returns
        solver = self._solver = new_solver()
        p = solver.parameters
        p.random_seed = self.seed
        p.num_workers = WORKERS
        p.interleave_search = True
        p.max_deterministic_time = max(0.5, seconds)
        p.max_time_in_seconds = max(0.1, seconds)
        p.cp_model_probing_level = 0  # probing the presolved model costs more than it saves
        solver.best_bound_callback = self._on_bound
        self._thread = threading.Thread(
            target=self._run, args=(solver,), daemon=True, name="straits-cpsat"
        )
        self._thread.start()
        threading.Thread(target=self._tick, daemon=True, name="straits-cpsat-stop").start()

    def _on_bound(self, bound: float) -> None:
        if self.solutions:
            self.events_after_first += 1
        try:
            self.reporter.bounded(self.model.decode(bound))
            self.check_proof(bound)
        except BaseException as exc:
            self.reporter.error = self.reporter.error or exc
            self.reporter.stop.set()

    def check_proof(self, bound: float) -> None:
        """Stop the search, and every other, once ``bound`` meets the best solution (the
        objective is integral, so that is a proof of optimality)."""
        best = self.best_raw
        if best is None or self.proved_at is not None or bound < best - PROOF_TOLERANCE:
            return
        self.proved_at = self.reporter.clock() - self.reporter.t0
        self.reporter.stop.set()
        self.stop()

    def _run(self, solver: cp_model.CpSolver) -> None:
        watcher = _Watcher(self)
        try:
            status = solver.solve(self.model.model, watcher)
            self.status = solver.status_name(status)
            if status == cp_model.FEASIBLE and (
                solver.best_objective_bound >= solver.objective_value - PROOF_TOLERANCE
            ):
                self.status = "OPTIMAL"  # stopped once proved (see :meth:`check_proof`)
            if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                self.bound = self.model.decode(solver.best_objective_bound)
                self.best_raw = solver.objective_value
            self.wall_s = solver.wall_time
        except BaseException as exc:
            self.reporter.error = self.reporter.error or exc
            self.status = "ERROR"
        finally:
            self.done.set()
            self.reporter.stop.set() if self.status == "OPTIMAL" else None

    def stop(self) -> None:
        """Ask the search to stop. The stop is given to CP-SAT only once it has reported
        something after its first solution: OR-Tools 9.15 aborts the whole process (``Check
        failed: solution->size() == postsolve_mapping.size()``) when a search is stopped
        between the solution it builds from the hint and the end of presolve. Until then it
        goes on, at most to its own time limit; callers do not wait for it (``join`` takes a
        timeout) and use the best solution reported so far."""
        self._stop_wanted.set()
        self._maybe_stop()

    def _maybe_stop(self) -> None:
        if (
            self._stop_wanted.is_set()
            and self.events_after_first > 0
            and self._solver is not None
            and not self.done.is_set()
        ):
            self._solver.stop_search()

    def _tick(self) -> None:
        while not self.done.wait(0.05):
            self._maybe_stop()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def wait(self, clock: Callable[[], float], stop_at: float) -> None:
        """Until it ends (proof or its budget) or the time is up, reporting progress twice a
        second; then stop it."""
        reporter = self.reporter
        while not self.done.is_set() and not reporter.stop.is_set():
            left = stop_at - clock()
            if left <= 0:
                break
            self.done.wait(min(0.5, left))
            reporter.report()
        self.stop()
        # CP-SAT answers a stop between its steps; presolving a large model is one long step,
        # so wait a little and then go on with the best it has reported (it ends soon after,
        # and reports nothing more: the reporter is closed)
        self.join(timeout=max(0.2, stop_at + STOP_GRACE_S - clock()))
        reporter.close()
