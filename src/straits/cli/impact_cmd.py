"""``straits impact``: what a rule, price or capacity change does to recorded plans."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from straits.cli.common import (
    DbOption,
    JsonOption,
    RulesOption,
    console,
    err_console,
    fail,
    money,
    print_json,
)
from straits.errors import InputError, StraitsError
from straits.model.types import Regime

EXIT_AFFECTED = 4


def impact(
    date: dt.datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"],
                                     help="Re-check as of this date (YYYY-MM-DD)."),
    regime: Regime = typer.Option(None, "--regime", help="Re-check under this regime "
                                  "(default: each plan's own)."),
    prices: Path = typer.Option(None, "--prices", help="Changed prices: a YAML/JSON list of "
                                "{site, chip, usd_per_chip_hour, source}."),
    capacity: Path = typer.Option(None, "--capacity", help="Changed capacity: a YAML/JSON "
                                  "list of {site, chip, count, start?, source}."),
    plan_ids: list[str] = typer.Option(None, "--plan", help="A recorded plan id or prefix "
                                       "(repeatable; default: the latest recorded plan of "
                                       "each scenario and regime)."),
    all_plans: bool = typer.Option(False, "--all", help="Every recorded plan, not only the "
                                   "latest of each scenario and regime."),
    replan: bool = typer.Option(True, "--replan/--no-replan", help="Propose a re-plan as of "
                                "the date."),
    time_limit: float = typer.Option(10.0, "--time-limit", min=0.5,
                                     help="Seconds each re-plan may search."),
    exit_code: bool = typer.Option(False, "--exit-code", help=f"Exit {EXIT_AFFECTED} when a "
                                   "stage is blocked (for scripts and CI)."),
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant's plans."),
    db: str = DbOption,
    rules: list[Path] = RulesOption,
    json_out: bool = JsonOption,
) -> None:
    """Re-evaluate recorded plans (from the ledger) as of --date, with another regime, prices
    or capacity: list the stages whose decision, cost or feasibility changes, with the rule or
    figure that changed, and propose a re-plan."""
    from straits.impact import impact as run_impact
    from straits.impact import load_overrides
    from straits.rules import ruleset
    from straits.store import Store
    from straits.store.records import find_plan, recorded_plans

    try:
        store = Store(db)
        ov = load_overrides(prices, capacity)
        if plan_ids:
            plans = [find_plan(store, ref) for ref in plan_ids]
        else:
            plans = recorded_plans(store, tenant=tenant, latest_per_scenario=not all_plans)
        if not plans:
            raise InputError(f"no recorded plans in {store!r}", path="--plan",
                             expected="a plan recorded with `straits plan --record` or "
                                      "`straits demo`")
        rs = ruleset(tuple(rules or ()))
        results = []
        for i, rec in enumerate(plans, 1):
            if not json_out and err_console.is_terminal:
                err_console.print(f"[dim]re-checking plan {rec.id[:8]} ({rec.scenario.name}) "
                                  f"{i}/{len(plans)}...[/dim]")
            results.append(run_impact(rec.id, rec.scenario, rec.plan, rs, date=date.date(),
                                      regime=regime, overrides=ov, replan=replan,
                                      time_limit=time_limit))
    except StraitsError as exc:
        fail(exc)
        return
    if json_out:
        docs = [r.to_json() for r in results]
        for doc in docs:
            if doc["replan"]:
                doc["replan"].pop("plan", None)
        print_json({"date": date.date().isoformat(), "regime": regime, "plans": docs})
    else:
        for r in results:
            show(r)
    if exit_code and any(r.blocking for r in results):
        raise typer.Exit(EXIT_AFFECTED)


def show(r: object) -> None:
    from straits.impact import PlanImpact

    assert isinstance(r, PlanImpact)
    head = (f"Plan {r.plan_id[:12]} ({r.scenario}, made {r.plan_date} under {r.plan_regime}) "
            f"re-checked as of {r.checked_date} under {r.regime}")
    if not r.changes:
        console.print(f"[green]{head}: no stage changes[/green]")
    else:
        console.print(f"[bold]{head}[/bold]: {len(r.affected)} stage(s) affected")
        for c in r.changes:
            tag = ("[bold red]blocked[/bold red]" if c.severity == "blocking"
                   else "[cyan]info[/cyan]")
            delta = "" if c.delta_usd is None else (
                f" ({'+' if c.delta_usd >= 0 else '-'}{money(abs(c.delta_usd))})")
            console.print(f"  {tag} {c.workload}/{c.stage} \\[{c.kind}]{delta}", soft_wrap=True)
            console.print(f"      {c.summary}", soft_wrap=True, markup=False)
            for x in c.rules:
                console.print(f"      rule {x.rule}: {x.citation} (confidence {x.confidence})",
                              soft_wrap=True, markup=False)
    if r.finished:
        console.print(f"  finished before {r.checked_date}: {', '.join(r.finished)}")
    if r.replan:
        rp = r.replan
        console.print(f"  proposed re-plan ({rp['status']}): {money(rp['total_cost_usd'])} "
                      f"vs {money(rp['recorded_total_cost_usd'])} recorded"
                      + (f"; unplaced: {', '.join(rp['unplaced'])}" if rp["unplaced"] else ""))
        for s in rp["stages"]:
            if s["moved"]:
                console.print(f"    {s['workload']}/{s['stage']}: {s['was']} -> {s['now']} "
                              f"({money(s['cost_was'])} -> {money(s['cost_now'])})")
        for w in rp["plan"].get("why_not", ()):
            console.print(f"    why not: {w['text']}", soft_wrap=True, markup=False)
    console.print()
