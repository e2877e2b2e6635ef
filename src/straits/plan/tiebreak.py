"""One plan among equally good ones: the deterministic tie-break after a proof of optimality.

Under most objectives many plans share the optimum (start times cost nothing under the cost
objective, and two pools may cost the same), and which one the whole-model search returns
depends on its path: its four interleaved workers, and the time it had, differ from run to run
even for one seed. Once the optimum is proved, :func:`tie_break` solves the same model again
with one constraint more, the original objective equal to the proved optimum, and a second
objective, the sum of the stages' start ticks (the earliest schedule among the optimal plans).

Every solution of that model is a solution of the original one with the same objective value,
so the tie-break cannot change the cost (nor the unplaced count, nor feasibility): it can only
choose among the optimal plans. It is deterministic because nothing in it depends on the first
search's path or on the wall clock: the model and its hints (the re-timed greedy plan) are the
same in every run, it runs one worker with a fixed seed and constant limits (deterministic and
wall-clock). The command's deadline stops it from outside, and then its answer is not used (the
proved plan stands, ``stopped``). Measured: generate 8 x 8, seed 7: 0.7 s with the estimates
before issue 16's twelfth pass and 13.6 s after it (so there it is cut at ``TIE_CAP_S``), seed
36: 0.1 s; 8 x 20, seed 2:
15.5 s (0.95 deterministic seconds: CP-SAT's deterministic time undercounts this model) with
hints, not done in 27 s without them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ortools.sat.python import cp_model

from straits.plan.cpsat_model import PortfolioModel, new_solver
from straits.plan.deadline import Deadline
from straits.plan.objectives import Objective
from straits.plan.portfolio import Portfolio
from straits.plan.retime import Held
from straits.plan.search import WholeModel
from straits.plan.solution import Solution, evaluate, from_solver

#: deterministic seconds the tie-break may take, and its own wall-clock limit (constants: a
#: limit that followed the budget left could change its path)
TIE_DET_S = 5.0
TIE_WALL_S = 30.0
#: the most wall-clock seconds the planner gives it: minimising the summed starts can take
#: far longer than the proof (generate 8 x 20, seed 2: proved in 0.4 s, 15.5 s for this), and
#: then the proved plan stands (``stopped``)
TIE_CAP_S = 5.0
#: the least wall-clock time worth starting it with, and how long the answer waits for it
#: to stop once the budget is spent
TIE_MIN_S = 0.5
STOP_GRACE_S = 0.3


@dataclass(frozen=True)
class TieBreak:
    """The tie-break's answer: ``solution`` when it is the deterministic one."""

    status: str
    """``optimal`` (the earliest optimal plan, proved), ``limit`` (the best found in its
    deterministic time), ``stopped`` (the budget ran out first), ``none`` (no solution)"""
    solution: Solution | None


def objective_terms(m: cp_model.CpModel, value: float) -> tuple[cp_model.LinearExprT, int]:
    """The model's objective terms (before its offset and scaling), and the value they take
    when the objective is ``value``."""
    obj = m.proto.objective
    terms: list[cp_model.LinearExprT] = []
    for ref, coeff in zip(obj.vars, obj.coeffs, strict=True):
        if ref >= 0:
            terms.append(coeff * m.get_int_var_from_proto_index(ref))
        else:  # a negated reference
            terms.append(coeff * (1 - m.get_int_var_from_proto_index(-ref - 1)))
    scale = obj.scaling_factor or 1.0
    return cp_model.LinearExpr.sum(terms), round(value / scale - obj.offset)


def tie_break(
    pm: PortfolioModel,
    optimum: float,
    *,
    seed: int,
    stop_at: float,
    clock: Callable[[], float],
) -> TieBreak:
    """The plan of least summed start ticks among those whose objective is ``optimum`` (the
    proved optimum of ``pm``'s objective, in model units); ``stop_at`` on ``clock`` ends it."""
    if stop_at - clock() < TIE_MIN_S:
        return TieBreak("stopped", None)
    m = pm.model.clone()  # with its hints: the re-timed greedy plan, the same in every run
    terms, target = objective_terms(m, optimum)
    m.add(terms == target)
    m.clear_objective()  # type: ignore[no-untyped-call]
    m.minimize(
        cp_model.LinearExpr.sum(
            [m.get_int_var_from_proto_index(v.index) for v in pm.start.values()]
        )
    )
    solver = new_solver()
    p = solver.parameters
    p.num_workers = 1
    p.random_seed = seed
    p.max_deterministic_time = TIE_DET_S
    p.max_time_in_seconds = TIE_WALL_S
    p.cp_model_probing_level = 0
    run = _Run(solver, m)
    run.start()
    while not run.finished.wait(max(0.0, min(0.05, stop_at - clock()))):
        if clock() >= stop_at:
            run.stop_wanted.set()
            # it stops as soon as that is safe; past a grace, the answer goes on without it
            run.finished.wait(STOP_GRACE_S)
            return TieBreak("stopped", None)
    status, solver_ = run.status, run.solver
    if status == cp_model.OPTIMAL:
        return TieBreak("optimal", from_solver(pm, solver_))
    if status != cp_model.FEASIBLE:
        return TieBreak("none", None)
    if run.stop_wanted.is_set() or solver_.wall_time >= TIE_WALL_S:
        return TieBreak("stopped", None)
    return TieBreak("limit", from_solver(pm, solver_))


class _Run(cp_model.CpSolverSolutionCallback):
    """The tie-break's solve, in a thread of its own so that the answer need not wait for it.
    A stop is given to CP-SAT only when no solution has come yet or something came after the
    first one (the hint's, when the greedy plan is optimal): OR-Tools 9.15 aborts the process
    when a search is stopped between that solution and the end of presolve (see
    :meth:`straits.plan.search.WholeModel.stop`)."""

    def __init__(self, solver: cp_model.CpSolver, model: cp_model.CpModel) -> None:
        super().__init__()
        self.solver, self.model = solver, model
        self.solutions = self.after_first = 0
        self.status: Any = cp_model.UNKNOWN
        self.stop_wanted = threading.Event()
        self.finished = threading.Event()

    def on_solution_callback(self) -> None:
        self.after_first += self.solutions > 0
        self.solutions += 1

    def _on_bound(self, _bound: float) -> None:
        self.after_first += self.solutions > 0

    def start(self) -> None:
        self.solver.best_bound_callback = self._on_bound
        threading.Thread(target=self._solve, daemon=True, name="straits-tie-break").start()
        threading.Thread(target=self._poll, daemon=True, name="straits-tie-break-stop").start()

    def _solve(self) -> None:
        try:
            self.status = self.solver.solve(self.model, self)
        except Exception:  # the proved plan stands
            self.status = cp_model.UNKNOWN
        finally:
            self.finished.set()

    def _poll(self) -> None:
        while not self.finished.wait(0.05):
            if self.stop_wanted.is_set() and (self.solutions == 0 or self.after_first):
                self.solver.stop_search()
                return


def after_proof(
    pf: Portfolio,
    objective: Objective,
    pm: PortfolioModel,
    start: Solution,
    held: Held,
    whole: WholeModel,
    d: Deadline,
    seed: int,
    stop_at: float,
    info: dict[str, Any],
) -> None:
    """Replace the whole model's proved plan by the deterministic one among the optimal plans
    (:func:`tie_break`): the same value, the earliest starts; never past ``stop_at`` (``d``'s
    clock) nor ``TIE_CAP_S`` from now. Says what it did in ``info["tie_break"]``."""
    if whole.best_raw is None or whole.latest is None:
        return
    if whole.latest == {k: start.get(k) for k in whole.latest}:
        info["tie_break"] = "hint"  # the greedy plan, proved: the same in every run
        return
    with d.phase("tie_break"):
        stop = min(stop_at, d.clock() + TIE_CAP_S)
        tb = tie_break(pm, whole.best_raw, seed=seed, stop_at=stop, clock=d.clock)
    info["tie_break"] = tb.status
    if tb.solution is None:
        return
    tie = pm.tie_unit
    if evaluate(pf, objective, tb.solution, tie, held) != evaluate(
        pf, objective, whole.latest, tie, held
    ):  # cannot happen (the objective is fixed at the optimum): kept as a guard
        info["tie_break"] = "rejected"
        return
    whole.latest = tb.solution
