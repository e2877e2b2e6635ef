"""`straits plan --pareto N`: the cost / time frontier, as a table, JSON or a chart."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from straits.cli.common import Format, console, duration, emit, money, note

if TYPE_CHECKING:
    from straits.cli.plan_source import PlanSource
    from straits.plan.deadline import Deadline
    from straits.plan.pareto import FrontierPoint
    from straits.rules import RuleSet


def pareto(
    source: PlanSource,
    rs: RuleSet,
    options: dict[str, Any],
    points: int,
    fmt: Format,
    chart: Path | None,
    deadline: Deadline,
) -> int:
    """Print (or draw) the frontier; return how many stages its plans leave unplaced (every
    point leaves the same number: the frontier keeps only the plans that place the most)."""
    from straits.plan.candidates import Candidates
    from straits.plan.collector import fewer_collections
    from straits.plan.pareto import frontier

    sc = source.scenario
    with fewer_collections():
        cand = Candidates(
            sc, rs, regime=options["regime"] or sc.regime, date=sc.date, deadline=deadline
        )
        found = frontier(cand, points=points, seed=options["seed"], deadline=deadline)
    if chart is not None:
        from straits.fileio import write_output
        from straits.report import pareto_report

        written = write_output(
            chart, pareto_report([p.to_json() for p in found], sc.name, sc.risk), option="-o"
        )
        note(f"wrote {written}")
    else:
        print_frontier(found, fmt, sc.risk)
    return min(p.unplaced for p in found)


def print_frontier(points: list[FrontierPoint], fmt: Format, risk: str = "p50") -> None:
    """The frontier and the risk its plans were made at (at p90 every point's makespan and
    cost are the training estimates' high end: without it, they read as central figures)."""
    if fmt != "table":
        emit({"risk": risk, "pareto": [p.to_json() for p in points]}, fmt)
        return
    from rich.table import Table

    at = "; training at p90 (the estimates' high end)" if risk == "p90" else ""
    t = Table(
        title="Cost / time frontier (rental, data movement, bought chips; makespan to the "
        f"minute{at})",
        title_justify="left",
    )
    for col in ("makespan", "cost", "unplaced", "search"):
        t.add_column(col, justify="right" if col != "search" else "left")
    for p in points:
        t.add_row(duration(p.makespan_hours), money(p.cost_usd), str(p.unplaced), p.status)
    console.print(t)
