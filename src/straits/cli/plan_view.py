"""Rich rendering of a plan: assignments, diagnosis, warnings."""

from __future__ import annotations

import datetime as dt

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from straits.cli.common import duration, money
from straits.cli.explain import reason_line
from straits.plan import Plan


def _when(plan: Plan, hours: float) -> str:
    t = plan.start + dt.timedelta(hours=hours)
    return t.strftime("%Y-%m-%d %H:%M")


def assignments_table(plan: Plan) -> Table:
    t = Table(title=f"Plan {plan.scenario} on {plan.date} under {plan.regime} "
                    f"(objective {plan.objective}, {plan.solver}: {plan.status})",
              title_justify="left")
    for col, just in [("stage", "left"), ("site", "left"), ("chip", "left"),
                      ("chips", "right"), ("start (UTC)", "left"), ("end (UTC)", "left"),
                      ("took", "right"), ("cost", "right"), ("relies on", "left")]:
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for a in sorted(plan.assignments, key=lambda a: (a.start_h, a.workload)):
        end = _when(plan, a.end_h)
        if a.late_hours > 0:
            end += f" [red](late {duration(a.late_hours)})[/red]"
        t.add_row(f"{a.workload}/{a.stage}", a.site, a.chip, f"{a.chips:,}",
                  _when(plan, a.start_h), end, duration(a.end_h - a.start_h), money(a.cost_usd),
                  ", ".join(a.satisfied) or "-")
    for u in plan.unplaced:
        t.add_row(f"{u.workload}/{u.stage}", "[red]unplaced[/red]", "", "", "", "", "", "", "")
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
    if not warnings and not plan.notes:
        return None
    parts: list[Text] = []
    if warnings:
        parts.append(Text("Warnings (guidance and red flags; they do not change decisions):",
                          style="bold yellow"))
        for w, stages in warnings.values():
            line = reason_line(w, "!")
            line.append(f"  touches: {', '.join(stages)}", style="yellow")
            parts.append(line)
    for note in plan.notes:
        parts.append(Text(f"  note: {note}", style="red"))
    return Group(*parts)


def totals_line(plan: Plan) -> Text:
    t = Text(f"Total {money(plan.total_cost_usd)}, makespan {duration(plan.makespan_hours)}, "
             f"{len(plan.assignments)} placed, {len(plan.unplaced)} unplaced.", style="bold")
    return t


def plan_view(plan: Plan) -> Group:
    parts: list[RenderableType] = [assignments_table(plan), totals_line(plan), Text(""),
                                   diagnosis_view(plan)]
    w = warnings_view(plan)
    if w is not None:
        parts += [Text(""), w]
    return Group(*parts)
