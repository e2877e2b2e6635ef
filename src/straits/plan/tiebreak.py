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
search's path or on the wall clock: the model is the same in every run, without hints, it runs
one worker with a fixed seed and a fixed deterministic-time limit, and its wall-clock limit is
a constant too (an earlier end of the budget stops it from outside, and then its answer is not
used). Without hints there is no solution before presolve ends, so that stop cannot meet the
OR-Tools 9.15 abort described at :meth:`straits.plan.search.WholeModel.stop`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from ortools.sat.python import cp_model

from straits.plan.cpsat_model import PortfolioModel, new_solver
from straits.plan.solution import Solution, from_solver

#: deterministic seconds the tie-break may take, and its own wall-clock limit (constants: a
#: limit that followed the budget left could change its path)
TIE_DET_S = 5.0
TIE_WALL_S = 60.0
#: the least wall-clock time worth starting it with
TIE_MIN_S = 0.5


@dataclass(frozen=True)
class TieBreak:
    """The tie-break's answer: ``solution`` when it is the deterministic one."""

    status: str
    """``optimal`` (the earliest optimal plan, proved), ``limit`` (the best found in its
    deterministic time), ``stopped`` (the budget ran out first), ``none`` (no solution)"""
    solution: Solution | None


def _objective(m: cp_model.CpModel, value: float) -> tuple[cp_model.LinearExprT, int]:
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
    m = pm.model.clone()
    m.clear_hints()  # type: ignore[no-untyped-call]
    terms, target = _objective(m, optimum)
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
    stopped = threading.Event()
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            if clock() >= stop_at:
                stopped.set()
                solver.stop_search()
                return

    watcher = threading.Thread(target=watch, daemon=True, name="straits-tie-break")
    watcher.start()
    try:
        status = solver.solve(m)
    finally:
        done.set()
        watcher.join()
    if status == cp_model.OPTIMAL:
        return TieBreak("optimal", from_solver(pm, solver))
    if status != cp_model.FEASIBLE:
        return TieBreak("none", None)
    if stopped.is_set() or solver.wall_time >= TIE_WALL_S:
        return TieBreak("stopped", None)
    return TieBreak("limit", from_solver(pm, solver))
