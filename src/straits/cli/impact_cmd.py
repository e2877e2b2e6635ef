"""``straits impact``: what a rule, price or capacity change does to recorded plans."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from straits.cli.choices import Regime
from straits.cli.common import (
    DbOption,
    JsonOption,
    OutputOption,
    QuietOption,
    RulesOption,
    console,
    emit,
    err_console,
    fail,
    finite_float,
    money,
    open_store,
    output_format,
    refuse_unread,
    rule_dirs,
    set_quiet,
    state,
)
from straits.cli.dates import check_date, iso_date
from straits.errors import InputError, StraitsError

EXIT_AFFECTED = 4


def impact(
    date: dt.datetime = typer.Option(
        ..., "--date", click_type=iso_date(), help="Re-check as of this date (YYYY-MM-DD)."
    ),
    regime: Regime = typer.Option(
        None, "--regime", help="Re-check under this regime (default: each plan's own)."
    ),
    prices: Path = typer.Option(
        None,
        "--prices",
        help="Changed prices: a YAML/JSON list of {site, chip, usd_per_chip_hour, source}.",
    ),
    capacity: Path = typer.Option(
        None,
        "--capacity",
        help="Changed capacity: a YAML/JSON list of {site, chip, count, start?, source}.",
    ),
    plan_refs: list[str] = typer.Option(
        None,
        "--plan",
        metavar="PLAN",
        help="A plan (repeatable): a recorded id or prefix, a "
        "plan document, a scenario file (planned now), or "
        "`-` for stdin. Default: the latest recorded plan "
        "of each scenario and regime.",
    ),
    all_plans: bool = typer.Option(
        False, "--all", help="Every recorded plan, not only the latest of each scenario and regime."
    ),
    replan: bool = typer.Option(
        True, "--replan/--no-replan", help="Propose a re-plan as of the date."
    ),
    time_limit: float = typer.Option(
        10.0,
        "--time-limit",
        click_type=finite_float(0.5, 3600),
        help="Seconds each re-plan may search.",
    ),
    exit_code: bool = typer.Option(
        False,
        "--exit-code",
        help=f"Exit {EXIT_AFFECTED} when a stage is blocked (for scripts and CI).",
    ),
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant's plans."),
    db: str = DbOption,
    rules: list[Path] = RulesOption,
    json_out: bool = JsonOption,
    output: str = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Re-evaluate plans (recorded in the ledger, or given with --plan) as of --date, with
    another regime, prices or capacity: list the stages whose decision, cost or feasibility
    changes, with the rule or figure that changed, and propose a re-plan."""
    set_quiet(quiet)
    try:
        fmt = output_format(output, json_out)
        check_date(date)
        from straits.store.ledger import check_who

        check_who(tenant, None)  # --tenant '': no plans, "nothing affected"
        if plan_refs:  # they choose among recorded plans: --plan names the plans itself
            refuse_unread(
                ("tenant", "all_plans"), when="with --plan", expected="--plan, or --tenant/--all"
            )
        if not replan:  # it bounds the re-plan: without one it was accepted and not read
            refuse_unread(("time_limit",), when="with --no-replan", expected="--replan")
        if state.server_url:
            from straits.cli.remote import remote_impact

            answer = remote_impact(
                date.date(),
                regime,
                prices,
                capacity,
                plan_refs or [],
                all_plans,
                replan,
                time_limit,
                tenant,
            )
        else:
            answer = None
            results = _impact_here(
                date.date(),
                regime,
                prices,
                capacity,
                plan_refs or [],
                all_plans,
                replan,
                time_limit,
                tenant,
                db,
                rules,
                fmt,
            )
    except StraitsError as exc:
        fail(exc)
        return
    if answer is None:
        answer = {
            "date": date.date().isoformat(),
            "regime": regime,
            "plans": [r.to_json() for r in results],
        }
    for doc in answer["plans"]:
        if fmt != "table" and doc.get("replan"):
            doc["replan"].pop("plan", None)
    if fmt != "table":
        emit(answer, fmt)
    else:
        for doc in answer["plans"]:
            show(doc)
    if exit_code and any(d.get("blocking") for d in answer["plans"]):
        raise typer.Exit(EXIT_AFFECTED)


def _impact_here(
    date: dt.date,
    regime: str | None,
    prices: Path | None,
    capacity: Path | None,
    refs: list[str],
    all_plans: bool,
    replan: bool,
    time_limit: float,
    tenant: str | None,
    db: str | None,
    rules: list[Path] | None,
    fmt: str,
) -> list[Any]:
    from straits.cli.plan_source import load_source, planned, refuse_unread_db
    from straits.impact import impact as run_impact
    from straits.impact import load_overrides
    from straits.rules import ruleset

    dashes = [
        opt
        for opt, given in (("--prices", prices), ("--capacity", capacity))
        if given is not None and str(given) == "-"
    ] + ["--plan"] * sum(r == "-" for r in refs)
    if len(dashes) > 1:
        raise InputError(
            "stdin can be read once",
            path=dashes[-1],
            expected="`-` for at most one of --prices, --capacity and --plan",
        )
    ov = load_overrides(prices, capacity)
    rs = ruleset(rule_dirs(rules))
    plans: list[tuple[str, Any, dict[str, Any], str]] = []
    if refs:
        sources = [load_source(ref, db=db, what="--plan") for ref in refs]
        refuse_unread_db(sources, expected="--plan with a recorded plan id, or no --plan,")
        for source in sources:
            doc = planned(source, rs).document
            assert doc is not None
            plans.append((doc.id, doc.scenario, doc.plan, doc.scenario.name))
    else:
        from straits.store.records import recorded_plans

        store = open_store(db, existing=True)
        recs = recorded_plans(store, tenant=tenant, latest_per_scenario=not all_plans)
        if not recs:
            raise InputError(
                f"no recorded plans in {store!r}",
                path="--plan",
                expected="a plan recorded with `straits plan --record` or "
                "`straits demo`, or --plan PLAN",
            )
        plans = [(r.id, r.scenario, r.plan, r.scenario.name) for r in recs]
    results = []
    for i, (plan_id, sc, plan_json, name) in enumerate(plans, 1):
        if fmt == "table" and err_console.is_terminal and not state.quiet:
            err_console.print(
                f"[dim]re-checking plan {plan_id[:8]} ({name}) {i}/{len(plans)}...[/dim]"
            )
        results.append(
            run_impact(
                plan_id,
                sc,
                plan_json,
                rs,
                date=date,
                regime=regime,
                overrides=ov,
                replan=replan,
                time_limit=time_limit,
            )
        )
    return results


def show(r: Any) -> None:
    """One plan's impact (a ``PlanImpact`` or its JSON), lines wrapped under their text."""
    from rich.text import Text

    from straits.cli.explain import hanging, reason_text

    j = r if isinstance(r, dict) else r.to_json()
    head = (
        f"Plan {str(j['plan_id'])[:12]} ({j['scenario']}, made {j['plan_date']} under "
        f"{j['plan_regime']}{', training at p90' if j.get('plan_risk') == 'p90' else ''}) "
        f"re-checked as of {j['checked_date']} under {j['regime']}"
    )
    asked = j.get("asked_date", j["checked_date"])
    if asked != j["checked_date"]:
        head += f" ({asked}, asked for, is before the plan's own date)"
    if not j["changes"]:
        console.print(hanging("", Text(f"{head}: no stage changes", style="green")))
    else:
        t = Text(head, style="bold")
        t.append(f": {len(j['affected_stages'])} stage(s) affected")
        blocked = sum(c["severity"] == "blocking" for c in j["changes"])
        if blocked:
            t.append(f", {blocked} blocked", style="bold red")
        console.print(hanging("", t))
    if state.quiet:  # --quiet: the one summary line of each plan
        return
    if j["changes"]:
        for c in j["changes"]:
            line = Text()
            if c["severity"] == "blocking":
                line.append("blocked", style="bold red")
            else:
                line.append("info", style="cyan")
            delta = (
                ""
                if c.get("delta_usd") is None
                else (f" ({'+' if c['delta_usd'] >= 0 else '-'}{money(abs(c['delta_usd']))})")
            )
            line.append(f" {c['workload']}/{c['stage']} [{c['kind']}]{delta}")
            console.print(hanging("  ", line))
            console.print(hanging("      ", Text(str(c["summary"]))))
            for x in c.get("rules", ()):
                console.print(hanging("      rule ", reason_text(x)))
    if j.get("finished"):
        console.print(
            hanging(f"  finished before {j['checked_date']}: ", Text(", ".join(j["finished"])))
        )
    rp = j.get("replan")
    if rp:
        unplaced = f"; unplaced: {', '.join(rp['unplaced'])}" if rp["unplaced"] else ""
        console.print(
            hanging(
                "  ",
                Text(
                    f"proposed re-plan ({rp['status']}): {money(rp['total_cost_usd'])} vs "
                    f"{money(rp['recorded_total_cost_usd'])} recorded{unplaced}"
                ),
            )
        )
        if rp.get("not_reached"):
            console.print(
                hanging(
                    "    ",
                    Text(
                        f"the re-plan's time limit ran out before {len(rp['not_reached'])} "
                        "stage(s): nothing is proposed for them (raise --time-limit)",
                        style="yellow",
                    ),
                )
            )
        for s in rp["stages"]:
            if s["moved"]:
                console.print(
                    hanging(
                        "    ",
                        Text(
                            f"{s['workload']}/{s['stage']}: {s['was']} -> {s['now']} "
                            f"({money(s['cost_was'])} -> {money(s['cost_now'])})"
                        ),
                    )
                )
        for w in (rp.get("plan") or {}).get("why_not", ()):
            console.print(hanging("    why not: ", Text(str(w["text"]))))
    console.print()
