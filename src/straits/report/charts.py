"""Charts of outputs other than a plan: the cost / time frontier (``plan --pareto``) and an
estimate's sweep over cluster sizes (``estimate --sweep chips``). JSON-able dicts, as the
plan's figures (``figures.py``)."""

from __future__ import annotations

from typing import Any

from straits.report.figures import LAYOUT, Figure

#: what a sweep point's hover adds: nothing for a size that fits
FITS_TEXT = {True: "", False: " (does not fit)"}


def pareto_figure(points: list[dict[str, Any]]) -> Figure:
    """The cost / time frontier of ``straits plan --pareto``."""
    pts = sorted(points, key=lambda p: p["makespan_hours"])
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "frontier",
                "x": [round(p["makespan_hours"] / 24, 2) for p in pts],
                "y": [p["cost_usd"] for p in pts],
                "line": {"shape": "hv"},
                "customdata": [[p.get("unplaced", 0), p.get("status", "")] for p in pts],
                "hovertemplate": "%{x} days, $%{y:,.0f}<br>%{customdata[0]} unplaced, "
                "%{customdata[1]}<extra></extra>",
            }
        ],
        "layout": {
            **LAYOUT,
            "title": {"text": "Cost against time: the Pareto frontier"},
            "height": 420,
            "xaxis": {"title": {"text": "makespan (days)"}},
            "yaxis": {"title": {"text": "cost (US dollars)"}, "tickformat": "$~s"},
        },
    }


def sweep_figure(rows: list[dict[str, Any]], title: str) -> Figure:
    """Days and cost against the chip count (``straits estimate --sweep chips``). A size no
    layout fits is drawn as a cross and says so on hover (its figures are for a cluster that
    cannot run); the cost line is left out when the chip has no price (``cost_usd`` null)."""
    rows = sorted(rows, key=lambda r: r["chips"])
    x = [r["chips"] for r in rows]
    fits = [r.get("fits", True) is not False for r in rows]
    marker = {
        "symbol": ["circle" if f else "x" for f in fits],
        "size": [7 if f else 11 for f in fits],
    }
    fit_text = [[FITS_TEXT[f]] for f in fits]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "days",
            "x": x,
            "y": [r["days"] for r in rows],
            "line": {"color": "#0072B2"},
            "marker": marker,
            "customdata": fit_text,
            "hovertemplate": "%{x} chips: %{y:.1f} days%{customdata[0]}<extra></extra>",
        },
    ]
    if any(r.get("cost_usd") is not None for r in rows):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "cost",
                "x": x,
                "y": [r.get("cost_usd") for r in rows],
                "yaxis": "y2",
                "line": {"color": "#D55E00", "dash": "dash"},
                "marker": marker,
                "customdata": fit_text,
                "hovertemplate": "%{x} chips: $%{y:,.0f}%{customdata[0]}<extra></extra>",
            }
        )
    if all("days_low" in r and "days_high" in r for r in rows):
        data.insert(
            0,
            {
                "type": "scatter",
                "mode": "lines",
                "name": "days, 80% range",
                "x": x + x[::-1],
                "y": [r["days_high"] for r in rows] + [r["days_low"] for r in rows][::-1],
                "fill": "toself",
                "line": {"width": 0},
                "fillcolor": "rgba(0,114,178,0.15)",
                "hoverinfo": "skip",
            },
        )
    return {
        "data": data,
        "layout": {
            **LAYOUT,
            "title": {"text": title},
            "height": 420,
            "legend": {"orientation": "h"},
            "xaxis": {"type": "log", "title": {"text": "chips"}},
            "yaxis": {"type": "log", "title": {"text": "days"}},
            "yaxis2": {
                "overlaying": "y",
                "side": "right",
                "type": "log",
                "title": {"text": "cost (US dollars)"},
                "tickformat": "$~s",
            },
        },
    }
