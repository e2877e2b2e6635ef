"""Rich rendering of a plan from its JSON contract (or plan document): assignments, diagnosis,
warnings, guidance. A plan made here, one read from a file and one fetched from a server
render the same."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from straits.cli.common import amount, duration, money
from straits.cli.explain import hanging, reason_line
from straits.limits import as_utc

Doc = Mapping[str, Any]


def _instant(text: str) -> dt.datetime:
    """A plan's time in UTC, whatever offset its document wrote it with (the table's times
    are UTC, unlabelled)."""
    return as_utc(dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")))


def _when(year: int, t: dt.datetime) -> str:
    return t.strftime("%m-%d %H:%M" if t.year == year else "%y-%m-%d %H:%M")


def _year(plan: Doc) -> int:
    try:
        return dt.date.fromisoformat(str(plan["date"])).year
    except (KeyError, ValueError):
        return 0


def assignments_table(plan: Doc) -> Table:
    ident = f" {str(plan['id'])[:12]}" if plan.get("id") else ""
    t = Table(
        title=f"Plan{ident} of {plan.get('scenario')} from {plan.get('date')} (UTC) "
        f"under {plan.get('regime')}, objective {plan.get('objective')}, "
        + ("training at p90 (the estimates' high end), " if plan.get("risk") == "p90" else "")
        + f"{plan.get('solver')}: {plan.get('status')}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
    )
    rows = sorted(plan.get("assignments", ()), key=lambda a: (a["start"], a["workload"]))
    relies = any(a.get("requires") for a in rows)
    t.add_column("stage / where", no_wrap=True)
    t.add_column("when (UTC) / took", no_wrap=True)
    t.add_column("cost", justify="right", no_wrap=True)
    t.add_column("tCO2e", justify="right", no_wrap=True)
    if relies:
        t.add_column("relies on")
    year = _year(plan)
    for a in rows:
        start, end = _instant(a["start"]), _instant(a["end"])
        took = duration((end - start).total_seconds() / 3600)
        if a.get("late_hours", 0) > 0:
            took += f", [red]late {duration(a['late_hours'])}[/red]"
        bought = " (bought)" if a.get("bought") else ""
        row = [
            f"[bold]{a['workload']}/{a['stage']}[/bold]\n  {a['site']} {a['chip']} "
            f"x{a['chips']:,}{bought}",
            f"{_when(year, start)} -> {_when(year, end)}\n  {took}",
            money(a.get("cost_usd")),
            "-" if a.get("tco2e") is None else amount(a["tco2e"]),
        ]
        if relies:
            row.append(", ".join(a.get("requires") or ()) or "-")
        t.add_row(*row)
    for u in plan.get("unplaced", ()):
        t.add_row(
            f"[bold]{u['workload']}/{u['stage']}[/bold]\n  [red]unplaced[/red]",
            *([""] * (4 if relies else 3)),
        )
    return t


def _energy(plan: Doc) -> str:
    """The plan's energy and carbon; a null total (a placed stage's chip has no power figure,
    or its grid no intensity) is unknown, never 0."""
    mwh, t = plan.get("energy_mwh"), plan.get("tco2e")
    if not isinstance(mwh, int | float):
        return "energy and tCO2e unknown"
    return f"energy {amount(mwh)} MWh, " + (
        f"{amount(t)} tCO2e" if isinstance(t, int | float) else "tCO2e unknown"
    )


def totals_line(plan: Doc) -> Text:
    penalty = plan.get("penalty_usd") or 0
    late = f" + {money(penalty)} late penalty" if penalty else ""
    total, high = plan.get("total_cost_usd", 0), plan.get("total_cost_usd_high")
    if plan.get("risk") != "p90" and isinstance(high, int | float) and high > (total or 0):
        # the high end prices compute only: the lateness a slower run would add is not in it
        # (docs/contracts.md), which beside a penalty must be said (atk91)
        late += f" (up to {money(high)} " + (
            "with compute at the estimates' high end, penalties as planned; "
            "--risk p90 schedules it)"
            if penalty
            else "at the estimates' high end)"
        )
    return Text(
        f"Total {money(total)}{late}, makespan "
        f"{duration(plan.get('makespan_hours', 0))}, "
        f"{len(plan.get('assignments', ()))} placed, "
        f"{len(plan.get('unplaced', ()))} unplaced; {_energy(plan)}.",
        style="bold",
    )


def summary_line(plan: Doc) -> Text:
    """One line for --quiet: the status, id, totals and what is unplaced."""
    t = Text(f"{plan.get('status')}", style="bold")
    if plan.get("id"):
        t.append(f" plan {plan['id']}")
    t.append(": ")
    t.append_text(totals_line(plan))
    unplaced = [f"{u['workload']}/{u['stage']}" for u in plan.get("unplaced", ())]
    if unplaced:
        t.append(f" Unplaced: {', '.join(unplaced)}.", style="red")
    return t


def diagnosis_view(plan: Any, *, cite: bool = True) -> Group:
    plan = _json(plan)
    parts: list[RenderableType] = [Text("Why each stage went where it did:", style="bold")]
    for d in plan.get("diagnosis", ()):
        style = "red" if d.get("chosen") is None else ""
        head = Text(f"{d['workload']}/{d['stage']}", style="bold " + style)
        head.append(f" -> {d.get('chosen') or 'UNPLACED'}: ", style=style)
        head.append(str(d.get("summary", "")))
        parts.append(hanging("  ", head))
        if cite:
            parts += [reason_line(c, "-", indent=4) for c in d.get("rules", ())]
    return Group(*parts)


def warnings_view(plan: Any) -> Group | None:
    plan = _json(plan)
    warnings, notes, why_not = (
        plan.get("warnings") or (),
        plan.get("notes") or (),
        plan.get("why_not") or (),
    )
    guidance = plan.get("guidance") or ()
    if not (warnings or notes or why_not or guidance):
        return None
    parts: list[RenderableType] = []
    if why_not:
        parts.append(Text("Why not:", style="bold red"))
        parts += [hanging("  ", Text(str(x["text"]), style="red")) for x in why_not]
    if warnings:
        parts.append(
            Text(
                "Warnings (guidance and red flags; they do not change decisions):",
                style="bold yellow",
            )
        )
        for w in warnings:
            body = Text()
            from straits.cli.explain import reason_text

            body.append_text(reason_text(w))
            body.append(f"  touches: {', '.join(w.get('stages', ()))}", style="yellow")
            parts.append(hanging("  ! ", body))
    for note in notes:
        parts.append(hanging("  note: ", Text(str(note), style="dim")))
    for g in guidance:
        parts.append(hanging("  hint: ", Text(str(g.get("text", ""))), style="bold cyan"))
    return Group(*parts)


def timings_line(plan: Any) -> Text | None:
    """'time: load 0.2 s, rules 0.3 s, greedy 14.1 s, ... (52.3 of 55 s)'."""
    t = _json(plan).get("timings")
    if not t:
        return None
    phases = ", ".join(f"{name.replace('_', '-')} {s:,.1f} s" for name, s in t["phases"].items())
    limit = f" of {t['time_limit_s']:g} s" if t.get("time_limit_s") else ""
    within = ", ".join(f"{name} {s:,.1f} s" for name, s in t.get("within", {}).items())
    return Text(
        f"time: {phases} ({t['elapsed_s']:,.1f}{limit}"
        + (f"; of which {within}" if within else "")
        + ")",
        style="dim",
    )


def plan_view(plan: Any) -> Group:
    plan = _json(plan)
    parts: list[RenderableType] = [assignments_table(plan), totals_line(plan)]
    timing = timings_line(plan)
    if timing is not None:
        parts.append(timing)
    parts += [Text(""), diagnosis_view(plan)]
    w = warnings_view(plan)
    if w is not None:
        parts += [Text(""), w]
    return Group(*parts)


def _json(plan: Any) -> Doc:
    """A plan document, a plan JSON contract, or a :class:`~straits.plan.Plan`."""
    return plan if isinstance(plan, Mapping) else plan.to_json()
