"""A CP-SAT solve of a neighbourhood that another thread can stop: the search's pieces run
while the other searches and the deadline decide when to end them."""

from __future__ import annotations

import threading
from typing import Any

from ortools.sat.python import cp_model


class _PieceWatch(cp_model.CpSolverSolutionCallback):
    """Stops a piece once ``stop`` is set, but only after it has reported something after its
    first solution (the one built from the hint): OR-Tools 9.15 aborts the process when a
    search is stopped between that solution and the end of presolve (see
    :meth:`straits.plan.search.WholeModel.stop`)."""

    def __init__(self, solver: cp_model.CpSolver, stop: threading.Event) -> None:
        super().__init__()
        self.solver, self.stop = solver, stop
        self.solutions = self.after_first = 0
        self.done = threading.Event()

    def on_solution_callback(self) -> None:
        self.after_first += self.solutions > 0
        self.solutions += 1

    def on_bound(self, _bound: float) -> None:
        self.after_first += self.solutions > 0

    def poll(self) -> None:
        while not self.done.wait(0.05):
            if self.stop.is_set() and self.after_first:
                self.solver.stop_search()
                return


def solve_stoppable(
    solver: cp_model.CpSolver, model: cp_model.CpModel, stop: threading.Event | None
) -> Any:
    """``solver.solve(model)``, stopped once ``stop`` is set (when that is safe)."""
    if stop is None:
        return solver.solve(model)
    watch = _PieceWatch(solver, stop)
    solver.best_bound_callback = watch.on_bound
    poller = threading.Thread(target=watch.poll, daemon=True, name="straits-lns-stop")
    poller.start()
    try:
        return solver.solve(model, watch)
    finally:
        watch.done.set()
        poller.join()
