"""Self-contained HTML reports (no network): the plan report, the charts of a frontier or a
sweep, and a generic page builder (``html.Page``) for other reports such as the market's.

``build_view`` turns a plan document into plain data (``view.py``); ``figures.py`` draws it as
Plotly figures; ``page.py`` lays it out with Jinja2 templates. The web console serves the same
view and templates, and ``html.Page`` renders through them too, so every report looks alike.
"""

from __future__ import annotations

from typing import Any

from straits.model.scenario import Scenario
from straits.report.charts import pareto_figure, sweep_figure
from straits.report.figures import POOL_CHARTS, plan_figures
from straits.report.html import Page, Section
from straits.report.page import render
from straits.report.view import PlanView, Recorded, build_view, cited_rules, reason_totals
from straits.rules.engine import RuleSet

#: stages listed in the report's "why not" section (unplaced ones first; the rest are counted)
WHY_NOT_LIMIT = 400


def plan_context(view: PlanView) -> dict[str, Any]:
    """What the plan templates need besides the view (shared with the web console)."""
    figures = plan_figures(view)
    used = [p for p in view.pools if p.tasks]
    return {
        "view": view,
        "figures": figures,
        "figure_ids": list(figures),
        "pool_charts": used[:POOL_CHARTS],
        "more_pools": max(0, len(used) - POOL_CHARTS),
        "reason_totals": reason_totals(view),
        "cited": cited_rules(view),
        "why_not_limit": WHY_NOT_LIMIT,
        # the heatmap's own title: its columns are several weeks each on a long plan
        "utilisation_label": figures["utilisation"]["layout"]["title"]["text"]
        if "utilisation" in figures
        else "",
    }


def plan_report(
    plan: dict[str, Any],
    sc: Scenario,
    rules: RuleSet,
    *,
    source: str,
    recorded: Recorded | None = None,
) -> str:
    """The report of ``plan`` (the ``straits plan --json`` document) as one HTML file."""
    view = build_view(plan, sc, rules, source=source, recorded=recorded)
    ctx = plan_context(view)
    s = view.summary
    title = f"{s.scenario}: {s.placed}/{s.stages} stages placed, {_usd(s.total_cost_usd)}"
    return render("report.html.j2", title=title, **ctx)


def _usd(v: float | None) -> str:
    from straits.report.page import usd

    return usd(v)


def pareto_report(points: list[dict[str, Any]], scenario: str, risk: str = "p50") -> str:
    """The frontier's chart; ``risk`` p90 says its points are the training estimates' high
    end."""
    rows = [
        [
            f"{p['makespan_hours'] / 24:,.1f}",
            f"${p['cost_usd']:,.0f}",
            p.get("unplaced", 0),
            p.get("status", ""),
        ]
        for p in sorted(points, key=lambda p: p["makespan_hours"])
    ]
    return render(
        "chart.html.j2",
        title=f"{scenario}: cost against time",
        subtitle=f"Pareto frontier, {len(points)} points"
        + (", training at p90 (the estimates' high end)" if risk == "p90" else ""),
        figures={"pareto": pareto_figure(points)},
        figure_ids=["pareto"],
        table={"head": ["Makespan (days)", "Cost", "Unplaced", "Status"], "rows": rows},
    )


def sweep_report(rows: list[dict[str, Any]], title: str) -> str:
    table_rows = [
        [
            f"{r['chips']:,}" + ("" if r.get("fits", True) is not False else " (does not fit)"),
            f"{r['days']:,.1f}",
            _usd(r.get("cost_usd")),
            f"{r.get('mfu', 0):.3f}",
        ]
        for r in sorted(rows, key=lambda r: r["chips"])
    ]
    return render(
        "chart.html.j2",
        title=title,
        subtitle="Days and cost by chip count",
        figures={"sweep": sweep_figure(rows, title)},
        figure_ids=["sweep"],
        table={"head": ["Chips", "Days", "Cost", "MFU"], "rows": table_rows},
    )


__all__ = [
    "Page",
    "PlanView",
    "Recorded",
    "Section",
    "build_view",
    "pareto_report",
    "plan_context",
    "plan_report",
    "sweep_report",
]
