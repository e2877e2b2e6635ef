"""Rich rendering of a plan: assignments, diagnosis, warnings."""

from __future__ import annotations

import datetime as dt

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from straits.cli.common import duration, money
from straits.cli.explain import reason_line
from straits.plan import Plan


def _when(plan: Plan, hours: float) -> str:
    t = plan.start + dt.timedelta(hours=hours)
    return t.strftime("%m-%d %H:%M" if t.year == plan.start.year else "%y-%m-%d %H:%M")


def assignments_table(plan: Plan) -> Table:
    t = Table(title=f"Plan {plan.scenario} from {plan.date} (UTC) under {plan.regime}, "
                    f"objective {plan.objective}, {plan.solver}: {plan.status}",
              title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    relies = any(a.satisfied for a in plan.assignments)
    t.add_column("stage / where", no_wrap=True)
    t.add_column("when (UTC) / took", no_wrap=True)
    t.add_column("cost", justify="right", no_wrap=True)
    t.add_column("tCO2e", justify="right", no_wrap=True)
    if relies:
        t.add_column("relies on")
    for a in sorted(plan.assignments, key=lambda a: (a.start_h, a.workload)):
        took = duration(a.end_h - a.start_h)
        if a.late_hours > 0:
            took += f", [red]late {duration(a.late_hours)}[/red]"
        row = [f"[bold]{a.workload}/{a.stage}[/bold]\n  {a.site} {a.chip} x{a.chips:,}",
               f"{_when(plan, a.start_h)} -> {_when(plan, a.end_h)}\n  {took}",
               money(a.cost_usd), "-" if a.tco2e is None else f"{a.tco2e:,.0f}"]
        if relies:
            row.append(", ".join(a.satisfied) or "-")
        t.add_row(*row)
    for u in plan.unplaced:
        t.add_row(f"[bold]{u.workload}/{u.stage}[/bold]\n  [red]unplaced[/red]",
                  *([""] * (4 if relies else 3)))
    return t


def diagnosis_view(plan: Plan, *, cite: bool = True) -> Group:
    parts: list[Text] = [Text("Why each stage went where it did:", style="bold")]
    for d in plan.diagnosis:
        style = "red" if d.chosen is None else ""
        head = Text(f"  {d.workload}/{d.stage}", style="bold " + style)
        head.append(f" -> {d.chosen or 'UNPLACED'}: ", style=style)
        head.append(d.summary())
        parts.append(head)
        if cite:
            parts += [reason_line(c, "  -") for c in d.citations]
    return Group(*parts)


def warnings_view(plan: Plan) -> Group | None:
    warnings = plan.warnings()
    if not warnings and not plan.notes and not plan.why_not:
        return None
    parts: list[Text] = []
    if plan.why_not:
        parts.append(Text("Why not:", style="bold red"))
        parts += [Text(f"  {x.text}", style="red") for x in plan.why_not]
    if warnings:
        parts.append(Text("Warnings (guidance and red flags; they do not change decisions):",
                          style="bold yellow"))
        for w, stages in warnings.values():
            line = reason_line(w, "!")
            line.append(f"  touches: {', '.join(stages)}", style="yellow")
            parts.append(line)
    for note in plan.notes:
        parts.append(Text(f"  note: {note}", style="dim"))
    return Group(*parts)


def totals_line(plan: Plan) -> Text:
    penalty = f" + {money(plan.penalty_usd)} late penalty" if plan.penalty_usd else ""
    t = Text(f"Total {money(plan.total_cost_usd)}{penalty}, makespan "
             f"{duration(plan.makespan_hours)}, "
             f"{len(plan.assignments)} placed, {len(plan.unplaced)} unplaced; energy "
             f"{plan.energy_mwh:,.0f} MWh, {plan.tco2e:,.0f} tCO2e.", style="bold")
    return t


def timings_line(plan: Plan) -> Text | None:
    """'time: load 0.2 s, rules 0.3 s, greedy 14.1 s, ... (52.3 of 55 s)'."""
    t = plan.timings
    if not t:
        return None
    phases = ", ".join(f"{name.replace('_', '-')} {s:,.1f} s" for name, s in t["phases"].items())
    limit = f" of {t['time_limit_s']:g} s" if t.get("time_limit_s") else ""
    within = ", ".join(f"{name} {s:,.1f} s" for name, s in t.get("within", {}).items())
    return Text(f"time: {phases} ({t['elapsed_s']:,.1f}{limit}"
                + (f"; of which {within}" if within else "") + ")", style="dim")


def plan_view(plan: Plan) -> Group:
    parts: list[RenderableType] = [assignments_table(plan), totals_line(plan)]
    timing = timings_line(plan)
    if timing is not None:
        parts.append(timing)
    parts += [Text(""), diagnosis_view(plan)]
    w = warnings_view(plan)
    if w is not None:
        parts += [Text(""), w]
    return Group(*parts)
