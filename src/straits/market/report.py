"""The market view as an offline HTML page (built on :mod:`straits.report.html`)."""

from __future__ import annotations

from typing import Any

from straits.market.loading import range_params, sourced_figures, walk_params
from straits.market.params import SOURCE_FIELDS
from straits.market.result import UNITS, MarketResult
from straits.report.html import Page

COLOURS = {"offshore": "#d95f02", "home": "#1b9e77", "domestic": "#7570b3", "unmet": "#999999"}


def _events(fig: Any, result: MarketResult) -> None:
    """Dashed lines at the rule events that change what the rules decide."""
    for e in result.events:
        fig.add_vline(x=e.date.isoformat(), line_width=1, line_dash="dot", line_color="#888")


def market_page(result: MarketResult, other: MarketResult | None = None) -> Page:
    import plotly.graph_objects as go

    m = result.market
    months = [r.month for r in result.months]
    page = Page(
        f"Market view: {m.name}",
        subtitle=f"{m.start} to {m.end}, home {m.home}, regime {result.regime}"
        + (f" (compared with {other.regime})" if other else "")
        + f", seed {result.seed}, firms {sum(result.firms.values()):,}",
        footer="Straits market view. Not legal advice; a model, with its assumptions listed below.",
    )
    runs = [result] + ([other] if other else [])

    sec = page.section(
        "Offshore rental by home firms",
        "Chip-hours home-headquartered firms rented abroad each month, by "
        "country (solid), and what they first asked of it before full pools turned them "
        "away (dotted). A country can rent out more than it was first asked: demand "
        "another country's full pools turned away is offered to it once more. Dotted "
        "vertical lines: rule changes.",
    )
    fig = go.Figure()
    for run in runs:
        for c in m.supply.countries:
            fig.add_trace(
                go.Scatter(
                    x=months,
                    y=[r.offshore_chip_hours[c] for r in run.months],
                    name=f"{c} rented ({run.regime})",
                    mode="lines",
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=months,
                    y=[r.offshore_demand_chip_hours[c] for r in run.months],
                    name=f"{c} asked ({run.regime})",
                    mode="lines",
                    line={"dash": "dot"},
                )
            )
    _events(fig, result)
    fig.update_layout(yaxis_title="chip-hours / month", height=420)
    sec.figure(fig)
    fig = go.Figure()
    for run in runs:
        for c in m.supply.countries:
            fig.add_trace(
                go.Scatter(
                    x=months,
                    y=[r.offshore_mw[c] for r in run.months],
                    name=f"{c} ({run.regime})",
                    mode="lines",
                )
            )
    fig.update_layout(yaxis_title="MW rented by home firms", height=320)
    sec.figure(fig)

    for run in runs:
        sec = page.section(
            f"Where home firms' compute ran ({run.regime})",
            "Shares of home firms' demand (h100e-hours): own chips at home, "
            "domestic accelerators, rented abroad, or unmet.",
        )
        fig = go.Figure()
        for key in ("home", "domestic", "offshore", "unmet"):
            fig.add_trace(
                go.Scatter(
                    x=months,
                    y=[r.shares()[key] for r in run.months],
                    name=key,
                    stackgroup="one",
                    mode="lines",
                    line={"color": COLOURS[key]},
                )
            )
        _events(fig, run)
        fig.update_layout(yaxis_title="share of demand", yaxis_tickformat=".0%", height=360)
        sec.figure(fig)

    sec = page.section(
        "Prices and utilisation",
        "Rental price per chip-hour and share of rentable chip-hours used, by "
        "country (all tenants).",
    )
    for key, title, fmt in (
        ("price_usd_per_chip_hour", "USD per chip-hour", None),
        ("utilisation", "utilisation", ".0%"),
    ):
        fig = go.Figure()
        for run in runs:
            for c in m.supply.countries:
                fig.add_trace(
                    go.Scatter(
                        x=months,
                        y=[getattr(r, key)[c] for r in run.months],
                        name=f"{c} ({run.regime})",
                        mode="lines",
                    )
                )
        fig.update_layout(
            yaxis_title=title, height=300, **({"yaxis_tickformat": fmt} if fmt else {})
        )
        sec.figure(fig)

    sec = page.section(
        "What data residency keeps at home",
        "Home chip-hours on work whose data the data-residency rules (and only "
        "they) keep from going abroad.",
    )
    fig = go.Figure()
    for run in runs:
        fig.add_trace(
            go.Scatter(
                x=months,
                y=[r.residency_home_chip_hours for r in run.months],
                name=run.regime,
                mode="lines",
            )
        )
    fig.update_layout(yaxis_title="chip-hours / month", height=300)
    sec.figure(fig)

    if other is not None:
        sec = page.section(f"Difference: {result.regime} minus {other.regime}")
        fig = go.Figure()
        for label, attr in (
            ("offshore", "offshore_total"),
            ("home", "home_chip_hours"),
            ("domestic", "domestic_accelerator_chip_hours"),
        ):
            fig.add_trace(
                go.Bar(
                    x=months,
                    y=[
                        getattr(a, attr) - getattr(b, attr)
                        for a, b in zip(result.months, other.months, strict=True)
                    ],
                    name=label,
                )
            )
        fig.update_layout(barmode="group", yaxis_title="chip-hours / month", height=320)
        sec.figure(fig)

    sec = page.section(
        "Rule events",
        "Dates in the period on which the rules in force "
        f"under the {result.regime} regime change (from the packs).",
    )
    sec.table(
        ["date", "rules added", "rules removed"],
        [[e.date.isoformat(), ", ".join(e.added), ", ".join(e.removed)] for e in result.events],
    )

    sec = page.section("Summary by year", f"Home firms' compute, {result.regime}.")
    summ = result.summary()["by_year"]
    cols = [
        "offshore_chip_hours",
        "home_chip_hours",
        "domestic_accelerator_chip_hours",
        "unmet_h100e_hours",
        "demand_h100e_hours",
    ]
    sec.table(["year", *cols], [[y, *[d[c] for c in cols]] for y, d in summ.items()])

    beside = result.notes_beside(other)
    if result.notes or beside:
        sec = page.section("Notes", "What to know before reading the figures.")
        if beside and other is not None:  # the compared regime's own notes, named so
            sec.table(
                ["regime", "note"],
                [[result.regime, n] for n in result.notes] + [[other.regime, n] for n in beside],
            )
        else:
            sec.table(["note"], [[n] for n in result.notes])

    raw = m.model_dump(by_alias=True, mode="json")
    sec = page.section(
        "Assumptions: parameters given as ranges",
        "The simulation used the midpoint of each range. Ranges marked "
        "'unpublished' are the model's assumptions where no public figure "
        "exists: sweep them with `straits market sweep`.",
    )
    sec.table(
        ["parameter", "low", "high", "confidence", "unpublished", "source"],
        [
            [p.path, p.low, p.high, p.confidence, "yes" if p.unpublished else "", p.source]
            for p in range_params(raw)
        ],
    )
    sec = page.section("Every parameter with its source")
    rows = []
    for path, node in walk_params(raw):
        value = node.get("value")
        rows.append(
            [
                path,
                value if value is not None else f"{node['low']} - {node['high']}",
                node["confidence"],
                node["source"],
            ]
        )
    sec.table(["parameter", "value", "confidence", "source"], rows)
    figures = [
        [
            path,
            ", ".join(
                f"{k} {v}"
                for k, v in node.items()
                if isinstance(v, int | float | str) and k not in SOURCE_FIELDS
            ),
            node.get("confidence") or "",
            node["source"],
        ]
        for path, node in sourced_figures(raw)
    ]
    if figures:
        sec = page.section(
            "Other figures with their source",
            "The data each kind of work reads (its count of people decides what the "
            "data-protection rules ask) and the model that sizes the work.",
        )
        sec.table(["entry", "figures", "confidence", "source"], figures)
    sec = page.section("Units")
    sec.table(["unit", "meaning"], [[k, v] for k, v in UNITS.items()])
    return page
