"""``straits plan``: place every stage of a scenario lawfully, over capacity and time."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from straits.cli.common import (
    ActorOption,
    DbOption,
    JsonOption,
    RulesOption,
    actor_name,
    console,
    duration,
    err_console,
    fail,
    money,
    print_json,
)
from straits.errors import StraitsError
from straits.model.types import Regime
from straits.plan.deadline import Deadline
from straits.plan.registry import (
    DEFAULT_SOLVER,
    SOLVER_NAMES,
    objective,
    objective_help,
    solver_help,
)

if TYPE_CHECKING:
    from straits.plan.pareto import FrontierPoint
    from straits.plan.search import SearchState

EXIT_UNPLACED = 3
DEFAULT_TIME_LIMIT = 20.0
#: the registry's solver names, as the choices of ``--solver``
SolverName = Enum("SolverName", {n: n for n in SOLVER_NAMES}, type=str)  # type: ignore[misc]


@contextmanager
def solver_progress(enabled: bool, deadline: Deadline, unit: str
                    ) -> Iterator[Callable[[SearchState], None] | None]:
    """A progress bar on stderr while the plan is made: the time budget used, the best plan,
    the bound."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    total = deadline.limit or 1.0
    with Progress(TextColumn("[bold]search[/bold] {task.description}"), BarColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("estimating, checking rules, greedy plan", total=total)

        def update(state: SearchState) -> None:
            bar.update(task, completed=min(deadline.elapsed(), total),
                       description=state.describe())

        yield update


def _objective(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return objective(value, path="--objective").name
    except StraitsError as exc:
        raise typer.BadParameter(str(exc)) from None


def plan(
    scenario: Path = typer.Argument(..., help="Scenario file (YAML or JSON)."),
    json_out: bool = JsonOption,
    regime: Regime = typer.Option(None, "--regime", help="Override the scenario's regime: "
                                  "enacted | ai-diffusion."),
    objective_: str = typer.Option(None, "--objective", metavar="OBJECTIVE",
                                   callback=_objective,
                                   help="Override the objective: " + objective_help() + "."),
    solver: SolverName = typer.Option(DEFAULT_SOLVER, "--solver", help=solver_help() + "."),
    time_limit: float = typer.Option(DEFAULT_TIME_LIMIT, "--time-limit", min=0.5,
                                     help="Seconds of wall-clock time for the whole command: "
                                     "loading, rules, estimates, the greedy plan, the search "
                                     "and the output. The plan JSON's `timings` say where "
                                     "they went."),
    seed: int = typer.Option(0, "--seed", help="CP-SAT's random seed (same seed, same plan, "
                             "unless the time limit cuts the search short)."),
    pareto: int = typer.Option(0, "--pareto", min=0, metavar="N",
                               help="Print the cost/time frontier with up to N plans."),
    progress: bool = typer.Option(None, "--progress/--no-progress",
                                  help="Show the search's progress (default: on a terminal)."),
    details: bool = typer.Option(False, "--details",
                                 help="With --json, list every rejected option."),
    rules: list[Path] = RulesOption,
    record: bool = typer.Option(False, "--record", help="Store the plan and append it to the "
                                "audit ledger (see `straits ledger`)."),
    tenant: str = typer.Option(None, "--tenant", help="With --record: the tenant the entry "
                               "belongs to (default: the workloads' tenant, or 'portfolio')."),
    actor: str = ActorOption,
    db: str = DbOption,
) -> None:
    """Plan a scenario: for every stage, estimate and check every (site, pool), schedule the
    lawful ones over capacity and time (the greedy plan, then CP-SAT on the whole portfolio or
    on neighbourhoods of it), and explain why every other option lost and why any stage could
    not be placed.

    Exit status: 0 when every stage is placed, 3 when some are not, 2 on bad input.
    """
    deadline = Deadline.from_process_start(time_limit)
    try:
        with deadline.phase("start"):  # the process, then the planner's libraries
            from straits.loading import load_scenario
            from straits.plan import make_plan
            from straits.plan import solvers as _solvers  # noqa: F401
            from straits.rules import ruleset

        with deadline.phase("load"):
            sc = load_scenario(scenario)
        with deadline.phase("rules"):
            rs = ruleset(tuple(rules or ()))
        show = sys.stderr.isatty() if progress is None else progress
        if pareto:
            _frontier(sc, rs, regime, pareto, seed, deadline, json_out)
            return
        goal = objective(objective_ or sc.objective)
        name = str(solver.value)
        with solver_progress(show and name != "greedy", deadline, goal.unit) as on_progress:
            result = make_plan(sc, regime=regime, objective=objective_, rules=rs, solver=name,
                               seed=seed, on_progress=on_progress, deadline=deadline)
        # the timings cover the command up to its output (the document cannot time its own
        # writing); the plan recorded and the plan printed are the same document
        result = replace(result, timings=deadline.to_json())
        if record:
            with deadline.phase("record"):
                _record(sc, result, rs, name, objective_, regime, time_limit, seed, tenant,
                        actor, db)
    except StraitsError as exc:
        fail(exc)
        return
    if json_out:
        print_json(result.to_json(details=details))
    else:
        from straits.cli.plan_view import plan_view

        console.print(plan_view(result))
    _done(EXIT_UNPLACED if result.unplaced else 0)


def _done(code: int) -> None:
    """End the command. Run as ``straits`` (not called in-process by a test runner or
    another program), a process that planned a large portfolio would spend seconds freeing
    its objects one by one after the output, past the time limit: once everything is written
    it exits at once instead."""
    import os

    if Path(sys.argv[0]).name in ("straits", "__main__.py") and "straits" in sys.argv[0]:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if code:
        raise typer.Exit(code)


def _record(sc: Any, result: Any, rs: Any, solver: str, objective_: str | None,
            regime: str | None, time_limit: float, seed: int, tenant: str | None,
            actor: str | None, db: str | None) -> None:
    from straits.store import Store
    from straits.store.records import record_plan

    owners = sorted({w.tenant for w in sc.workloads})
    options = {"solver": solver, "objective": objective_, "regime": regime,
               "time_limit": time_limit, "seed": seed}
    plan_id, entry = record_plan(
        Store(db), sc, result, rs, options, actor=actor_name(actor),
        tenant=tenant or (owners[0] if len(owners) == 1 else "portfolio"))
    err_console.print(f"recorded plan {plan_id} as ledger entry {entry.seq} "
                      f"({entry.hash[:12]})")


def _frontier(sc: Any, rs: Any, regime: str | None, points: int, seed: int,
              deadline: Deadline, json_out: bool) -> None:
    from straits.plan.candidates import Candidates
    from straits.plan.pareto import frontier

    cand = Candidates(sc, rs, regime=regime or sc.regime, date=sc.date, deadline=deadline)
    found = frontier(cand, points=max(2, points), seed=seed, deadline=deadline)
    _print_frontier(found, json_out)


def _print_frontier(points: list[FrontierPoint], json_out: bool) -> None:
    if json_out:
        print_json({"pareto": [p.to_json() for p in points]})
        return
    from rich.table import Table

    t = Table(title="Cost / time frontier (rental and data movement; makespan to the minute)",
              title_justify="left")
    for col in ("makespan", "cost", "unplaced", "search"):
        t.add_column(col, justify="right" if col != "search" else "left")
    for p in points:
        t.add_row(duration(p.makespan_hours), money(p.cost_usd), str(p.unplaced), p.status)
    console.print(t)
