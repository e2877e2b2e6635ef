"""``straits plan``: place every stage of a scenario lawfully, over capacity and time."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

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
from straits.cli.plan_view import plan_view
from straits.errors import InputError, StraitsError
from straits.loading import load_scenario
from straits.model.types import Objective, Regime
from straits.plan import DEFAULT_TIME_LIMIT, Solver, make_plan
from straits.plan.candidates import Candidates
from straits.plan.optimizer import Progress as OnProgress
from straits.plan.optimizer import SearchState
from straits.plan.pareto import FrontierPoint, frontier
from straits.rules import ruleset

EXIT_UNPLACED = 3


@contextmanager
def solver_progress(enabled: bool, limit: float, objective: str
                    ) -> Iterator[OnProgress | None]:
    """A progress bar on stderr while CP-SAT searches: time used, best plan, bound."""
    if not enabled:
        yield None
        return
    with Progress(TextColumn("[bold]CP-SAT[/bold] {task.description}"), BarColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True) as bar:
        task = bar.add_task("building the model", total=limit)

        def update(state: SearchState) -> None:
            bar.update(task, completed=min(state.elapsed, limit),
                       description=state.describe(objective))

        yield update


def plan(
    scenario: Path = typer.Argument(..., help="Scenario file (YAML or JSON)."),
    json_out: bool = JsonOption,
    regime: Regime = typer.Option(None, "--regime", help="Override the scenario's regime: "
                                  "enacted | ai-diffusion."),
    objective: Objective = typer.Option(None, "--objective", help="Override the objective: "
                                        "cost | time (makespan) | completion (weighted)."),
    solver: Solver = typer.Option("cpsat", "--solver", help="cpsat (optimizer, warm-started "
                                  "by the greedy plan) | greedy (the baseline alone)."),
    time_limit: float = typer.Option(DEFAULT_TIME_LIMIT, "--time-limit", min=0.5, max=3600,
                                     help="Seconds CP-SAT may search (0.5 to 3600)."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**31 - 1,
                             help="CP-SAT's random seed (same seed, same plan)."),
    risk: str = typer.Option(None, "--risk", metavar="p50|p90", help="Plan training stages "
                             "on the central estimate (p50, default) or on the high end of its "
                             "80% interval (p90: for hard deadlines and budgets). Overrides "
                             "the scenario's `risk`."),
    pareto: int = typer.Option(0, "--pareto", min=0, max=50, metavar="N",
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
    lawful ones over capacity and time with CP-SAT (or the greedy baseline), and explain why
    every other option lost and why any stage could not be placed.

    Exit status: 0 when every stage is placed, 3 when some are not, 2 on bad input.
    """
    try:
        sc = load_scenario(scenario)
        if risk is not None:
            if risk not in ("p50", "p90"):
                raise InputError(f"unknown risk {risk!r}", path="--risk", expected="p50 or p90")
            sc = sc.model_copy(update={"risk": risk})
        rs = ruleset(tuple(rules or ()))
        show = sys.stderr.isatty() if progress is None else progress
        if pareto:
            cand = Candidates(sc, rs, regime=regime or sc.regime, date=sc.date)
            points = frontier(cand, points=max(2, pareto), time_limit=time_limit, seed=seed)
            _print_frontier(points, json_out)
            return
        goal = objective or sc.objective
        with solver_progress(show and solver == "cpsat", time_limit, goal) as on_progress:
            result = make_plan(sc, regime=regime, objective=objective, rules=rs, solver=solver,
                               time_limit=time_limit, seed=seed, on_progress=on_progress)
        if record:
            from straits.store import Store
            from straits.store.records import record_plan

            owners = sorted({w.tenant for w in sc.workloads})
            options = {"solver": solver, "objective": objective, "regime": regime,
                       "time_limit": time_limit, "seed": seed, "risk": sc.risk}
            plan_id, entry = record_plan(
                Store(db), sc, result, rs, options, actor=actor_name(actor),
                tenant=tenant or (owners[0] if len(owners) == 1 else "portfolio"))
            err_console.print(f"recorded plan {plan_id} as ledger entry {entry.seq} "
                              f"({entry.hash[:12]})")
    except StraitsError as exc:
        fail(exc)
        return
    if json_out:
        print_json(result.to_json(details=details))
    else:
        console.print(plan_view(result))
    if result.unplaced:
        raise typer.Exit(EXIT_UNPLACED)


def _print_frontier(points: list[FrontierPoint], json_out: bool) -> None:
    if json_out:
        print_json({"pareto": [p.to_json() for p in points]})
        return
    t = Table(title="Cost / time frontier (rental and data movement; makespan in whole hours)",
              title_justify="left")
    for col in ("makespan", "cost", "unplaced", "search"):
        t.add_column(col, justify="right" if col != "search" else "left")
    for p in points:
        t.add_row(duration(p.makespan_hours), money(p.cost_usd), str(p.unplaced), p.status)
    console.print(t)
