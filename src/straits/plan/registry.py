"""The solvers and objectives Straits offers, by name: the one list the CLI and server read.

Solvers are loaded when first used (their modules import OR-Tools and numpy; the CLI's help
should not), objectives come from :mod:`straits.plan.objectives`. Adding a solver is writing
a class with ``name`` and ``solve`` (the :class:`~straits.plan.solvers.Solver` protocol) and
one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from straits.errors import InputError
from straits.plan.objectives import EXPECTED as OBJECTIVE_EXPECTED
from straits.plan.objectives import OBJECTIVES, Objective, objective

if TYPE_CHECKING:
    from straits.plan.solvers import Solver

AUTO = "auto"
DEFAULT_SOLVER = AUTO


@dataclass(frozen=True)
class SolverEntry:
    name: str
    summary: str
    target: str
    short: str = ""
    """'module:attribute' of the implementation"""

    def load(self) -> Solver:
        module, attr = self.target.split(":")
        solver: Solver = getattr(importlib.import_module(module), attr)()
        return solver


SOLVERS: dict[str, SolverEntry] = {
    e.name: e
    for e in (
        SolverEntry(
            "greedy",
            "the greedy baseline alone",
            "straits.plan.solvers:GreedySolver",
            "the baseline alone",
        ),
        SolverEntry(
            "cpsat",
            "CP-SAT on the whole portfolio, warm-started by the greedy plan",
            "straits.plan.solvers:WholeSolver",
            "the whole portfolio",
        ),
        SolverEntry(
            "lns",
            "large-neighbourhood search around the greedy plan (CP-SAT on pieces), "
            "with the whole portfolio's model searched alongside for its bound",
            "straits.plan.solvers:NeighbourhoodSolver",
            "neighbourhood search",
        ),
    )
}
SOLVER_NAMES: tuple[str, ...] = (AUTO, *SOLVERS)
OBJECTIVE_NAMES: tuple[str, ...] = tuple(OBJECTIVES)
#: stages above which ``auto`` searches neighbourhoods instead of the whole model alone (the
#: whole model still runs beside them up to ``search.WHOLE_MAX_STAGES``): on the generated
#: 30 x 6 and 50 x 200 portfolios (59-117 stages) the neighbourhoods' pieces found plans the
#: whole model alone did not in the same time (docs/architecture.md, "fourteenth pass")
AUTO_LNS_STAGES = 50


def solver_help() -> str:
    return f"{AUTO} (cpsat up to {AUTO_LNS_STAGES} stages, lns above) | " + " | ".join(
        f"{e.name} ({e.short})" for e in SOLVERS.values()
    )


def objective_help() -> str:
    return (
        " | ".join(OBJECTIVES) + ", or a weighted sum in dollars such as cost+80*carbon "
        "($80 a tonne), cost+0.5*time ($0.50 an hour of makespan) or cost+1000*completion "
        "($1,000 a weighted hour); each weight from 0.001 to 1,000,000 in steps of 0.001"
    )


def solver_named(
    name: str, *, stages: int = 0, source: str | None = None, path: str | None = "solver"
) -> Solver:
    """The solver called ``name`` (``auto``: by the portfolio's size)."""
    key = name.strip().lower()
    if key == AUTO:
        key = "lns" if stages > AUTO_LNS_STAGES else "cpsat"
    entry = SOLVERS.get(key)
    if entry is None:
        raise InputError(
            f"unknown solver {name!r}", source=source, path=path, expected=", ".join(SOLVER_NAMES)
        )
    return entry.load()


def check_solver(name: str) -> str:
    """``name`` if it names a solver; an :class:`InputError` otherwise."""
    if name.strip().lower() not in SOLVER_NAMES:
        raise InputError(
            f"unknown solver {name!r}", path="solver", expected=", ".join(SOLVER_NAMES)
        )
    return name.strip().lower()


__all__ = [
    "AUTO",
    "DEFAULT_SOLVER",
    "OBJECTIVE_EXPECTED",
    "OBJECTIVE_NAMES",
    "SOLVERS",
    "SOLVER_NAMES",
    "Objective",
    "check_solver",
    "objective",
    "objective_help",
    "solver_help",
    "solver_named",
]
