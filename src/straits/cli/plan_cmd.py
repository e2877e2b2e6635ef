"""``straits plan``: place every stage of a scenario lawfully, over capacity and time; or, given
a plan (a document or a recorded id), plan its scenario again, show it, or re-check it."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from straits.cli.choices import DEFAULT_TIME_LIMIT, Regime
from straits.cli.common import (
    ActorOption,
    DbOption,
    Format,
    JsonOption,
    QuietOption,
    RulesOption,
    actor_name,
    console,
    emit,
    err_console,
    esc,
    fail,
    finite_float,
    note,
    open_store,
    output_format,
    rule_dirs,
    set_quiet,
    state,
    whole,
)
from straits.cli.dates import check_date, iso_date
from straits.errors import InputError, StraitsError
from straits.plan.deadline import Deadline
from straits.plan.registry import SOLVER_NAMES, objective_help, solver_help

if TYPE_CHECKING:
    from straits.cli.plan_source import PlanSource
    from straits.plan.search import SearchState
    from straits.rules import RuleSet

EXIT_UNPLACED = 3
EXIT_BLOCKED = 4
#: the registry's solver names, as the choices of ``--solver``
SolverName = Enum("SolverName", {n: n for n in SOLVER_NAMES}, type=str)  # type: ignore[misc]


@contextmanager
def solver_progress(
    enabled: bool, deadline: Deadline
) -> Iterator[Callable[[SearchState], None] | None]:
    """A progress bar on stderr while the plan is made: the time budget used, the best plan,
    the bound."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    total = deadline.limit or 1.0
    with Progress(
        TextColumn("[bold]search[/bold] {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console.get(),  # type: ignore[attr-defined]
        transient=True,
    ) as bar:
        task = bar.add_task("estimating, checking rules, greedy plan", total=total)

        def update(state: SearchState) -> None:
            bar.update(task, completed=min(deadline.elapsed(), total), description=state.describe())

        yield update


def _objective(value: str | None) -> str | None:
    """``--objective``: a name or weighted sum the registry knows (checked as it is read)."""
    if value is None:
        return None
    from straits.plan.registry import objective

    try:
        objective(value, path="--objective")
    except StraitsError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


def plan(
    scenario: str = typer.Argument(
        ...,
        metavar="SCENARIO|PLAN",
        help="A scenario file (YAML or JSON), or a plan: a document "
        "`straits plan --json` printed, or a recorded plan id "
        "(its scenario is planned again with its options). "
        "`-` reads stdin.",
    ),
    json_out: bool = JsonOption,
    output: str = typer.Option(
        None,
        "-o",
        "--output",
        metavar="FORMAT",
        help="Output format: table (default), json, yaml, or id (the "
        "plan's id alone: PLAN=$(straits plan F --record -o id)); "
        "with --pareto, FILE.html draws the frontier as a chart.",
    ),
    regime: Regime = typer.Option(
        None, "--regime", help="Override the scenario's regime: enacted | ai-diffusion."
    ),
    objective: str = typer.Option(
        None,
        "--objective",
        metavar="OBJECTIVE",
        callback=_objective,
        help="Override the objective: "
        + objective_help().replace("*", r"\*")
        + ".",  # markdown help: * is emphasis
    ),
    solver: SolverName = typer.Option(
        None, "--solver", help=solver_help() + " (default: auto, or the given plan's)."
    ),
    time_limit: float = typer.Option(
        None,
        "--time-limit",
        click_type=finite_float(0.5, 3600),
        help="Seconds of wall-clock time for the whole command, "
        f"0.5 to 3600 (default {DEFAULT_TIME_LIMIT:g}): "
        "loading, rules, estimates, the greedy plan, the "
        "search and the output. The plan JSON's `timings` "
        "say where they went.",
    ),
    seed: int = typer.Option(
        None,
        "--seed",
        click_type=whole(0, 2**31 - 1),
        help="CP-SAT's random seed (same seed, same plan, unless the time "
        "limit cuts the search short; default 0).",
    ),
    risk: str = typer.Option(
        None,
        "--risk",
        metavar="p50|p90",
        help="Plan training stages "
        "on the central estimate (p50, default) or on the high end of its "
        "80% interval (p90: for hard deadlines and budgets). Overrides "
        "the scenario's `risk`.",
    ),
    pareto: int = typer.Option(
        0,
        "--pareto",
        click_type=whole(0, 50),
        metavar="N",
        help="Print the cost/time frontier with up to N plans (`-o FILE.html`: as a chart).",
    ),
    progress: bool = typer.Option(
        None,
        "--progress/--no-progress",
        help="Show the search's progress (default: on a terminal).",
    ),
    details: bool = typer.Option(
        False, "--details", help="With -o json|yaml, list every rejected option."
    ),
    rules: list[Path] = RulesOption,
    record: bool = typer.Option(
        False,
        "--record",
        help="Store the plan and append it to the "
        "audit ledger (see `straits ledger`); its id is its content's.",
    ),
    tenant: str = typer.Option(
        None,
        "--tenant",
        help="With --record: the tenant the entry "
        "belongs to (default: the workloads' tenant, or 'portfolio').",
    ),
    actor: str = ActorOption,
    db: str = DbOption,
    show: bool = typer.Option(
        False, "--show", help="Print the given plan as it is, without planning."
    ),
    recheck: bool = typer.Option(
        False,
        "--recheck",
        help="Ask the rules again about the given "
        "plan's placements as of --date, without planning; exit "
        f"{EXIT_BLOCKED} when a stage is now blocked.",
    ),
    date: dt.datetime = typer.Option(
        None,
        "--date",
        click_type=iso_date(),
        help="With --recheck: as of this date (default: today, UTC).",
    ),
    quiet: bool = QuietOption,
) -> None:
    """Plan a scenario: for every stage, estimate and check every (site, pool), schedule the
    lawful ones over capacity and time with CP-SAT (or the greedy baseline), and explain why
    every other option lost and why any stage could not be placed.

    The JSON (`-o json`) is a plan document: it carries its `id` and its inputs, so `straits
    export`, `impact` and `plan --recheck` take it as it is (a file, or `-` for stdin).

    Exit status: 0 when every stage is placed, 3 when some are not, 2 on bad input; with
    --recheck, 4 when a stage is now blocked.
    """
    set_quiet(quiet)
    deadline = Deadline.from_process_start(time_limit or DEFAULT_TIME_LIMIT)
    solver_name = solver.value if solver is not None else None
    try:
        from straits.cli.estimate_cmd import chart_target

        chart = chart_target(output, json_out)
        if chart is not None and not pareto:
            raise InputError(
                "a chart is drawn of a frontier",
                path="-o",
                expected="--pareto N with -o FILE.html (the plan's own report: "
                "`straits report`), or a format: table, json, yaml, id",
            )
        if risk is not None and risk not in ("p50", "p90"):
            raise InputError(f"unknown risk {risk!r}", path="--risk", expected="p50 or p90")
        id_only = output is not None and output.strip().lower() == "id"
        fmt = output_format(
            None if id_only or chart is not None else output, json_out, also=("id",)
        )
        if id_only:
            if json_out:
                raise InputError(
                    "--json and -o id ask for two formats", path="-o", expected="one of them"
                )
            if recheck or pareto:
                raise InputError(
                    "-o id prints a plan's id",
                    path="-o",
                    expected="table, json or yaml with --recheck and --pareto",
                )
            fmt = "id"  # type: ignore[assignment]  # plan's own format (_print)
        if show and recheck:
            raise InputError(
                "--show and --recheck ask for two things", path="--show", expected="one of them"
            )
        from straits.cli.plan_source import refuse_unread_flags, refuse_unread_loaded

        refuse_unread_flags(show, recheck, record, str(fmt), pareto, solver_name)
        if state.server_url:
            from straits.cli.remote import remote_plan

            remote_plan(
                scenario,
                fmt,
                dict(
                    regime=regime,
                    objective=objective,
                    solver=solver_name,
                    time_limit=time_limit,
                    seed=seed,
                    risk=risk,
                ),
                record=record,
                show=show,
                recheck=recheck,
                pareto=pareto,
                date=date.date() if date is not None else None,
            )
            return
        with deadline.phase("start"):  # the process, then the planner's libraries
            from straits.cli.plan_source import load_source  # noqa: F401 (timed here)
            from straits.plan import solvers as _solvers  # noqa: F401
            from straits.rules import ruleset

        with deadline.phase("load"):
            source = _load_within(scenario, db, deadline)
        if (show or recheck) and source.document is None:
            raise InputError(
                f"{source.label} is a scenario, not a plan",
                path="--show" if show else "--recheck",
                expected="a plan document or a recorded plan id",
            )
        refuse_unread_loaded(source, record, solver_name, bool(pareto))
        if show:
            assert source.document is not None
            note(f"[dim]read {esc(source.label)}[/dim]")
            _print(source.document.to_json(), fmt)
            return
        with deadline.phase("rules"):
            rs = ruleset(rule_dirs(rules))
        if recheck:
            _recheck(source, rs, date, regime, fmt)
            return
        options = _options(source, regime, objective, solver_name, time_limit, seed)
        if risk is not None and risk != source.scenario.risk:  # the scenario's own field
            from dataclasses import replace

            source = replace(
                source, scenario=source.scenario.model_copy(update={"risk": risk}), document=None
            )
        if source.document is not None:
            note(f"[dim]read {esc(source.label)}; planning its scenario again[/dim]")
        if pareto:
            from straits.cli.plan_pareto import pareto as run_pareto

            unplaced = run_pareto(source, rs, options, pareto, fmt, chart, deadline)
            _done(EXIT_UNPLACED if unplaced else 0)
            return
        doc = _plan(source, rs, options, progress, details, record, tenant, actor, db, deadline)
    except StraitsError as exc:
        fail(exc)
        return
    _print(doc, fmt)
    _done(EXIT_UNPLACED if doc["unplaced"] else 0)


def _load_within(scenario: str, db: str | None, deadline: Deadline) -> PlanSource:
    """The scenario or plan, read within the command's time limit: a document so large that
    reading it takes the whole limit stops there (exit 2 naming --time-limit) instead of
    reading on past it and planning nothing."""
    from straits import safe_yaml
    from straits.cli.plan_source import load_source

    try:
        with safe_yaml.within(lambda: deadline.expired):
            return load_source(scenario, db=db, what="SCENARIO|PLAN")
    except safe_yaml.ReadingTimeUp as exc:
        raise InputError(
            f"the time limit ({deadline.limit:g} s) ran out while reading it, at line {exc.line}",
            source=scenario,
            path="--time-limit",
            expected="a longer --time-limit for a document this large",
        ) from None


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


def _options(
    source: PlanSource,
    regime: str | None,
    objective: str | None,
    solver: str | None,
    time_limit: float | None,
    seed: int | None,
) -> dict[str, Any]:
    """Flags, else the given plan's own options, else the defaults."""
    given = source.document.options if source.document is not None else {}
    flags = {
        "solver": solver,
        "objective": objective,
        "regime": regime,
        "time_limit": time_limit,
        "seed": seed,
    }
    defaults: dict[str, Any] = {
        "solver": "auto",
        "objective": None,
        "regime": None,
        "time_limit": DEFAULT_TIME_LIMIT,
        "seed": 0,
    }
    if source.document is not None:
        from straits.cli.plan_source import check_document_options

        check_document_options(source.label, given, [k for k in flags if flags[k] is None])
    return {k: flags[k] if flags[k] is not None else given.get(k, defaults[k]) for k in defaults}


def _plan(
    source: PlanSource,
    rs: RuleSet,
    options: dict[str, Any],
    progress: bool | None,
    details: bool,
    record: bool,
    tenant: str | None,
    actor: str | None,
    db: str | None,
    deadline: Deadline,
) -> dict[str, Any]:
    from straits.plan.collector import fewer_collections

    # the plan's heap stays until the document is made: collected at the default thresholds
    # again, it would be scanned whole right after the plan (seconds at 1,000 x 200)
    with fewer_collections():
        return _plan_document(
            source, rs, options, progress, details, record, tenant, actor, db, deadline
        )


def _plan_document(
    source: PlanSource,
    rs: RuleSet,
    options: dict[str, Any],
    progress: bool | None,
    details: bool,
    record: bool,
    tenant: str | None,
    actor: str | None,
    db: str | None,
    deadline: Deadline,
) -> dict[str, Any]:
    from straits.cli.plan_source import document_of
    from straits.cli.plan_source import record as record_plan
    from straits.plan import make_plan

    sc = source.scenario
    show_bar = (sys.stderr.isatty() if progress is None else progress) and not state.quiet
    with solver_progress(show_bar and options["solver"] != "greedy", deadline) as on_progress:
        result = make_plan(
            sc,
            regime=options["regime"],
            objective=options["objective"],
            rules=rs,
            solver=options["solver"],
            seed=options["seed"],
            on_progress=on_progress,
            deadline=deadline,
        )
    # the timings cover the command up to its output (the document cannot time its own
    # writing); the plan recorded and the plan printed are the same document
    from dataclasses import replace

    result = replace(result, timings=deadline.to_json())
    plan_id = seq = None
    if record:
        store = open_store(db)
        owners = sorted({w.tenant for w in sc.workloads})
        plan_id, seq, new = record_plan(
            store,
            sc,
            result,
            rs,
            options,
            actor=actor_name(actor),
            tenant=tenant or (owners[0] if len(owners) == 1 else "portfolio"),
        )
        if new:
            note(f"recorded plan {plan_id} as ledger entry {seq} in {store!r}")
        else:
            note(
                f"plan {plan_id} was already recorded (ledger entry {seq} in {store!r}): "
                "the same scenario, options and result"
            )
    doc = document_of(
        result, sc, source.scenario_doc, options, plan_id=plan_id, ledger_seq=seq, details=details
    )
    return doc.to_json()


def _print(doc: dict[str, Any], fmt: str) -> None:
    """``fmt``: a Format, or "id" (the plan's id alone)."""
    if fmt == "id":
        sys.stdout.write(f"{doc['id']}\n")
        return
    if fmt in ("json", "yaml"):
        emit(doc, "yaml" if fmt == "yaml" else "json")
        return
    from straits.cli.plan_view import plan_view, summary_line

    if state.quiet:  # one line, never wrapped: for scripts and logs
        console.print(summary_line(doc), soft_wrap=True)
    else:
        console.print(plan_view(doc))


def _recheck(
    source: PlanSource, rs: RuleSet, date: dt.datetime | None, regime: str | None, fmt: Format
) -> None:
    from straits.cli.impact_cmd import show as show_impact
    from straits.impact import impact

    doc = source.document
    assert doc is not None
    note(f"[dim]read {esc(source.label)}[/dim]")
    day = check_date(date) if date is not None else dt.datetime.now(dt.UTC).date()
    result = impact(doc.id, doc.scenario, doc.plan, rs, date=day, regime=regime, replan=False)
    if fmt != "table":
        emit(result.to_json(), fmt)
    else:
        show_impact(result)
    if result.blocking:
        raise typer.Exit(EXIT_BLOCKED)
