"""``straits demo``: the shipped scenario under the enacted rules and the AI Diffusion rule."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from straits.cli.common import (
    DbOption,
    JsonOption,
    OutputOption,
    actor_name,
    console,
    duration,
    emit,
    fail,
    money,
    nonempty_path,
    open_store,
    output_format,
    refuse_unread,
)
from straits.errors import InputError, StraitsError

if TYPE_CHECKING:
    from straits.demo import StageDifference
    from straits.model.scenario import Scenario
    from straits.plan import Plan
    from straits.store import Store

STORY = (
    "A cloud company headquartered in China trains a 72B chat model. It may rent H100s in "
    "Singapore and Johor from non-Chinese operators: renting is not an export of the chip. Its "
    "Chinese users' dialogues (3,000,000 people) may not leave China without a CAC security "
    "assessment, so fine-tuning happens at home on the H800/H20/Ascend base. The January 2025 "
    "AI Diffusion rule would have barred the offshore rental; it was rescinded on 2025-05-13, "
    "before its compliance date. Here is the same scenario under both."
)


def _cell(plan: Plan, workload: str, stage: str) -> str:
    a = plan.assignment(workload, stage)
    if a is None:
        return "[red]unplaced[/red]"
    late = f" [red]late {duration(a.late_hours)}[/red]" if a.late_hours > 0 else ""
    return (
        f"{a.site} {a.chip} x{a.chips:,}\n{money(a.cost_usd)}, "
        f"{duration(a.end_h - a.start_h)}{late}"
    )


def _record(sc: Scenario, plans: dict[str, Plan], store: Store) -> dict[str, Any]:
    """Record both plans in the ledger, each under its content id: a plan recorded by an
    earlier run (the same scenario, rules and result) is not appended again."""
    from straits.cli.plan_source import record
    from straits.rules import ruleset
    from straits.store import ledger

    rs = ruleset()
    entries = {}
    for regime, plan in plans.items():
        plan_id, seq, new = record(
            store,
            sc,
            plan,
            rs,
            {"regime": regime},
            tenant="hz-cloud",
            actor=actor_name(None) + " (demo)",
        )
        entry = ledger.get_entry(store, seq) if seq is not None else None
        entries[regime] = {
            "plan_id": plan_id,
            "ledger_seq": seq,
            "new": new,
            "hash": entry.hash if entry is not None else None,
        }
    return {"database": repr(store), "entries": entries}


def _drift(store: Store | None) -> list[tuple[Any, Any]]:
    """Plans made the day before two rule changes, recorded and read back from the ledger,
    then re-checked as of the change (`straits impact`)."""
    from straits.demo import drift_plans
    from straits.impact import impact
    from straits.rules import ruleset

    rs = ruleset()
    out = []
    for case, sc, plan, made_with in drift_plans(rs):
        plan_id, recorded_sc, plan_json = "unrecorded", sc, plan.to_json()
        if store is not None:
            from straits.cli.plan_source import record
            from straits.store.records import find_plan

            plan_id, _, _ = record(
                store,
                sc,
                plan,
                made_with,
                {"regime": plan.regime},
                tenant="hz-cloud",
                actor=actor_name(None) + " (demo)",
            )
            rec = find_plan(store, plan_id)
            recorded_sc, plan_json = rec.scenario, rec.plan
        out.append(
            (
                case,
                impact(
                    plan_id, recorded_sc, plan_json, rs, date=case.checked, regime=case.check_regime
                ),
            )
        )
    return out


def demo(
    json_out: bool = JsonOption,
    output: str = OutputOption,
    record: bool = typer.Option(
        True,
        "--record/--no-record",
        help="Record the plans in the audit ledger and verify "
        "it (once: a later run finds them recorded).",
    ),
    report: Path = typer.Option(
        None,
        "--report",
        metavar="DIR",
        click_type=nonempty_path(),
        help="Where to write the HTML report of each regime's "
        "plan (default: the Straits data directory, "
        "$XDG_DATA_HOME/straits/reports).",
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Write no report."),
    db: str = DbOption,
) -> None:
    """Tell the story of Straits on the shipped scenario (examples/offshore-2025.yaml): plan it
    under the `enacted` rules and under the `ai-diffusion` regime side by side, show the
    rules that made the difference, and record both plans in the tamper-evident ledger."""
    from straits.demo import rule_differences, run_demo

    try:
        fmt = output_format(output, json_out)
        if not record:  # taken and dropped, exit 0 (h49)
            refuse_unread(("db",), when="with --no-record", expected="--record with --db")
        if no_report:
            refuse_unread(("report",), when="with --no-report", expected="--report or --no-report")
        sc, plans, diffs = run_demo()
        store = open_store(db) if record else None
        recorded = _record(sc, plans, store) if store is not None else None
        drift = _drift(store)
        if recorded is not None and store is not None:  # once everything the demo records is in
            from straits.store import ledger

            recorded["verify"] = ledger.verify(store).to_json()
        reports = {} if no_report else _reports(sc, plans, recorded, report)
    except StraitsError as exc:
        fail(exc)
        return
    if fmt != "table":
        emit(
            {
                "scenario": sc.name,
                "plans": {r: p.to_json() for r, p in plans.items()},
                "differences": [d.to_json() for d in diffs],
                "rule_differences": [g.to_json() for g in rule_differences(diffs)],
                "ledger": recorded,
                "drift": [{"case": case.title, **_lean(im.to_json())} for case, im in drift],
                "reports": reports,
            },
            fmt,
        )
        return
    _story(sc, plans, diffs, recorded, drift)
    if reports:
        console.print()
        console.rule("reports")
        for regime, path in reports.items():
            console.print(
                f"the {regime} plan as a report you can open or forward: {path}",
                soft_wrap=True,
                markup=False,
            )


def _reports(
    sc: Scenario, plans: dict[str, Plan], recorded: dict[str, Any] | None, where: Path | None
) -> dict[str, str]:
    """Write each regime's plan as a self-contained HTML report; the paths written."""
    from straits.cli.config import data_home
    from straits.fileio import write_output
    from straits.report import plan_report
    from straits.report.view import Recorded
    from straits.rules import ruleset

    out_dir = where if where is not None else data_home() / "straits" / "reports"
    rs = ruleset()
    written = {}
    for regime, plan in plans.items():
        entry = (recorded or {}).get("entries", {}).get(regime)
        rec = (
            None
            if entry is None or entry.get("ledger_seq") is None
            else Recorded(
                plan_id=entry["plan_id"],
                seq=entry["ledger_seq"],
                hash=entry["hash"],
                tenant="hz-cloud",
            )
        )
        html = plan_report(
            plan.to_json(details=True),
            sc,
            rs,
            recorded=rec,
            source=f"straits demo: {sc.name} under the {regime} rules",
        )
        try:
            path = write_output(
                (out_dir / f"demo-{regime}.html").resolve(), html, option="--report"
            )
        except OSError as exc:
            raise InputError(
                f"cannot write the demo's report: {exc.strerror or exc}",
                path="--report",
                expected="a writable directory",
            ) from None
        written[regime] = str(path)
    return written


def _story(
    sc: Scenario,
    plans: dict[str, Plan],
    diffs: list[StageDifference],
    recorded: dict[str, Any] | None,
    drift: list[tuple[Any, Any]],
) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from straits.cli.explain import hanging
    from straits.cli.plan_view import diagnosis_view, warnings_view
    from straits.demo import REGIMES

    console.print(Panel(STORY, title=f"straits demo: {sc.name} ({sc.date})", expand=False))
    t = Table(title="Where each stage runs", title_justify="left")
    t.add_column("stage")
    for r in REGIMES:
        t.add_column(r)
    for d in diffs:
        t.add_row(
            f"{d.workload}/{d.stage}", *(_cell(plans[r], d.workload, d.stage) for r in REGIMES)
        )
    t.add_row(
        "[bold]total[/bold]",
        *(
            f"[bold]{money(plans[r].total_cost_usd)}[/bold]"
            + (f" + {money(plans[r].penalty_usd)} late penalty" if plans[r].penalty_usd else "")
            + f", makespan {duration(plans[r].makespan_hours)}, {len(plans[r].unplaced)} unplaced"
            for r in REGIMES
        ),
    )
    console.print(t)
    _rules_view(diffs)
    for r in REGIMES:
        console.print()
        console.rule(f"{r}")
        console.print(diagnosis_view(plans[r]))
        w = warnings_view(plans[r])
        if w is not None:
            console.print(w)
    if recorded is not None:
        console.print()
        console.rule("ledger")
        for r, e in recorded["entries"].items():
            verb = "recorded" if e["new"] else "found already recorded:"
            console.print(
                f"{verb} the {r} plan {e['plan_id'][:12]} as ledger entry "
                f"{e['ledger_seq']} in {recorded['database']}",
                soft_wrap=True,
            )
        v = recorded["verify"]
        console.print(
            f"[bold green]ledger verifies[/bold green]: {v['entries']} entries, head "
            f"{v['head_hash'][:16]}; `straits ledger show` lists them"
            if v["ok"]
            else f"[bold red]ledger broken[/bold red]: {v['problem']}"
        )
    console.print()
    console.rule("what rule changes did to plans made the day before (straits impact)")
    from straits.cli.impact_cmd import show

    for case, im in drift:
        console.print(hanging("", Text(f"{case.title}: {case.story}", style="bold")))
        show(im)


def _rules_view(diffs: list[StageDifference]) -> None:
    """Each rule that blocked options under one regime only, printed once, with the stages
    it moved from where they run under the other regime."""
    from rich.text import Text

    from straits.cli.explain import hanging, reason_line
    from straits.demo import REGIMES, rule_differences

    grouped = rule_differences(diffs)
    console.print(Text("The rules that made the difference:", style="bold"))
    if not grouped:
        console.print("  none: every stage had the same lawful options under both regimes")
    for g in grouped:
        other = next(r for r in REGIMES if r != g.regime)
        console.print(reason_line(g.reason, "-"))
        console.print(
            Text(
                f"      in force under {g.regime} only: blocked {g.options_blocked} "
                f"option{'s' if g.options_blocked != 1 else ''} of "
                f"{len(g.moved) + len(g.unmoved)} stage(s)",
                style="magenta",
            )
        )
        for d in g.moved:
            console.print(
                hanging(
                    "      ",
                    Text(
                        f"moved {d.workload}/{d.stage}: {d.placements[other]} under {other} -> "
                        f"{d.placements[g.regime]} under {g.regime}"
                    ),
                )
            )
        if g.unmoved:
            console.print(hanging("      same place under both: ", Text(", ".join(g.unmoved))))


def _lean(impact_json: dict[str, Any]) -> dict[str, Any]:
    if impact_json.get("replan"):
        impact_json["replan"] = {k: v for k, v in impact_json["replan"].items() if k != "plan"}
    return impact_json
