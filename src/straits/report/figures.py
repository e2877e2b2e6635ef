"""Plotly figures of a plan view, as plain JSON-able dicts (no Plotly Python objects).

Figures are data: the page hands each dict to ``Plotly.newPlot`` unchanged, after
:func:`as_text` (every string but the page's own hover templates shown as text). Colours are never
the only signal: bars carry their labels in hover text and the tables beside each chart, rule
effects also differ by pattern, and lines by dash.
"""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from typing import Any

from straits.report.lanes import lanes_of, pool_height
from straits.report.short_stages import short_marks, too_short
from straits.report.usage import PoolView, average_share
from straits.report.view import CostRow, PlanView, RuleSpan

Figure = dict[str, Any]

#: pools drawn one by one (task lanes over capacity and use); the rest are in the heatmap only
POOL_CHARTS = 12
#: tasks drawn per pool chart (the rest are counted in the title)
POOL_TASKS = 40
#: groups drawn in a cost chart (the rest are summed into "others")
COST_ROWS = 25
#: colour-blind-safe qualitative palette (Okabe-Ito)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
EFFECT_STYLE = {
    "deny": ("#D55E00", "x"),
    "requires": ("#E69F00", "/"),
    "warn": ("#56B4E9", "."),
    "note": ("#999999", ""),
}
LAYOUT = {
    "margin": {"l": 10, "r": 10, "t": 40, "b": 30},
    "font": {"size": 12},
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
    "hoverlabel": {"align": "left"},
}


#: keys whose strings are the page's own Plotly templates (``%{...}`` placeholders, ``<br>``):
#: no data may be formatted into them (it reaches them through ``customdata``)
TEMPLATE_KEYS = frozenset({"hovertemplate", "texttemplate"})


def as_text(value: Any, key: str = "") -> Any:
    """``value`` (a figure, or any part of one) with every string but templates escaped for
    Plotly, which draws tags in chart text: ``<span style="background:url(...)">`` in a rule's
    title was fetched from the network by the offline report, ``<a href>`` made a link out.
    Plotly decodes the entities, so the text reads as it was written."""
    if isinstance(value, str):
        if key in TEMPLATE_KEYS:
            return value
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, dict):
        return {k: as_text(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_text(v, key) for v in value]
    return value


def _iso(t: dt.datetime | dt.date) -> str:
    return t.isoformat()


def _ms(a: dt.datetime, b: dt.datetime) -> float:
    return (b - a).total_seconds() * 1000.0


def pool_figure(pool: PoolView, colours: dict[str, str]) -> Figure:
    """Tasks on the pool's lanes (top) over its capacity and chips in use (bottom), on the
    plan's whole time span so that every pool's chart lines up with the others."""
    shown = pool.tasks[:POOL_TASKS]
    lanes = lanes_of(pool, len(shown))
    by_workload: dict[str, list[int]] = {}
    for i, t in enumerate(shown):
        by_workload.setdefault(t.workload, []).append(i)
    data: list[dict[str, Any]] = []
    for wl, idx in by_workload.items():
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": wl,
                "legendgroup": wl,
                "y": [f"lane {lanes[i] + 1}" for i in idx],
                "base": [_iso(shown[i].start) for i in idx],
                "x": [_ms(shown[i].start, shown[i].end) for i in idx],
                "text": [shown[i].stage + (" (bought)" if shown[i].bought else "") for i in idx],
                "textposition": "inside",
                "insidetextanchor": "start",
                "marker": {
                    "color": colours.get(wl, PALETTE[0]),
                    "pattern": {"shape": ["/" if shown[i].bought else "" for i in idx]},
                },
                "customdata": [
                    [shown[i].label, shown[i].chips, round(shown[i].cost_usd)] for i in idx
                ],
                "hovertemplate": "%{customdata[0]}<br>%{customdata[1]} chips<br>"
                "$%{customdata[2]:,}<extra></extra>",
                "yaxis": "y2",
                "xaxis": "x",
            }
        )
    short = too_short(pool, shown)
    if short:
        data.append(short_marks(shown, short, [lanes[i] for i in short], colours, PALETTE[0]))
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "capacity",
            "x": [_iso(t) for t, _ in pool.capacity],
            "y": [n for _, n in pool.capacity],
            "line": {"shape": "hv", "color": "#444", "dash": "dash"},
            "showlegend": False,
            "hovertemplate": "capacity %{y} chips<extra></extra>",
        }
    )
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": "in use",
            "x": [_iso(t) for t, _ in pool.use],
            "y": [n for _, n in pool.use],
            "line": {"shape": "hv", "color": "#0072B2"},
            "fill": "tozeroy",
            "showlegend": False,
            "hovertemplate": "in use %{y} chips<extra></extra>",
        }
    )
    if any(n for _, n in pool.bought_use):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "bought, in use",
                "x": [_iso(t) for t, _ in pool.bought_use],
                "y": [n for _, n in pool.bought_use],
                "line": {"shape": "hv", "color": "#009E73", "dash": "dot"},
                "showlegend": False,
                "hovertemplate": "bought chips in use %{y}<extra></extra>",
            }
        )
    more = len(pool.tasks) - len(shown)
    n = len(pool.tasks)
    used = pool.utilisation
    # a pool used a little is not "0% used"
    used_text = f"{used:.0%}" if used == 0 or used >= 0.005 else "<1%"
    # the chips the pool has over the plan's span, availability windows included: its base
    # count alone read "peak 4,096 of 512 chips" for a pool a window grows to 4,096
    caps = [c for _, c in pool.capacity] or [pool.count]
    of = f"{max(caps):,}" if min(caps) == max(caps) else f"up to {max(caps):,}"
    title = (
        f"{pool.key} ({pool.country}): {n} stage{'' if n == 1 else 's'}, peak "
        f"{pool.peak:,} of {of} chips"
        # chips bought for a stage are no part of the pool's count: said, not left out (a
        # stage on 2,048 bought H20s was "peak 0 of 256 chips, 0% used")
        + (f" and {pool.bought_peak:,} bought" if pool.bought_peak else "")
        + f", {used_text} used"
        + (f"; first {len(shown)} stages drawn" if more > 0 else "")
    )
    lanes_n = max(lanes, default=0) + 1
    height, chips_top, lanes_bottom = pool_height(lanes_n)
    return {
        "data": data,
        "layout": {
            **LAYOUT,
            "title": {"text": title, "font": {"size": 13}},
            "barmode": "overlay",
            "height": height,
            "showlegend": False,
            "xaxis": {
                "type": "date",
                "anchor": "y",
                "range": [_iso(pool.capacity[0][0]), _iso(pool.capacity[-1][0])],
            },
            "yaxis": {
                "domain": [0, chips_top],
                "title": {"text": "chips"},
                "rangemode": "tozero",
                "automargin": True,
                "tickformat": "~s",
            },
            "yaxis2": {
                "domain": [lanes_bottom, 1],
                "autorange": "reversed",
                "showticklabels": lanes_n > 1,
                "type": "category",
                "automargin": True,
            },
        },
    }


def utilisation_figure(pools: tuple[PoolView, ...], weeks: int = 52) -> Figure:
    """The average share of each used pool's chips in use, per week (weighted by time over
    the week, :func:`average_share`): every pool at a glance."""
    used = [p for p in pools if p.tasks]
    if not used:
        return {"data": [], "layout": {**LAYOUT, "title": {"text": "no pool is used"}}}
    start = min(p.capacity[0][0] for p in used)
    end = max(p.capacity[-1][0] for p in used)
    # at most weeks * 4 columns, each as many weeks as that takes: the columns stopped at
    # 208 weeks, and a plan to 2035 or 2100 was drawn to mid-2029 with no word of the rest
    span_weeks = max(1, -(-(end - start).days // 7))
    step = -(-span_weeks // (weeks * 4))
    columns = -(-span_weeks // step)
    edges = [start + dt.timedelta(days=7 * step * i) for i in range(columns + 1)]
    per = "week" if step == 1 else f"{step} weeks"

    z = [[average_share(p, a, b) for a, b in pairwise(edges)] for p in used]
    return {
        "data": [
            {
                "type": "heatmap",
                "z": z,
                # every column's edges (one more than columns): a column spans its weeks,
                # and a plan of one instant has a week of axis, not a millisecond
                "x": [_iso(e) for e in edges],
                "y": [p.key for p in used],
                "zmin": 0,
                "zmax": 1,
                "colorscale": [[0, "#f7fbff"], [0.5, "#6baed6"], [1, "#08306b"]],
                "colorbar": {"title": {"text": "in use"}, "tickformat": ".0%"},
                "hovertemplate": "%{y}<br>%{z:.1%}: average share of chips in use, "
                + ("week of" if step == 1 else f"{per} from")
                + " %{x}<extra></extra>",
            }
        ],
        "layout": {
            **LAYOUT,
            "title": {"text": f"Average share of chips in use per {per}, {len(used)} pools"},
            "height": min(2400, 120 + 16 * len(used)),
            "yaxis": {"autorange": "reversed", "automargin": True},
            "xaxis": {"type": "date"},
        },
    }


def map_figure(view: PlanView) -> Figure:
    geo = view.geo
    by = {s.site: s for s in geo.sites}
    data: list[dict[str, Any]] = []
    for kind, colour, dash in (("data", "#D55E00", "solid"), ("weights", "#009E73", "dot")):
        lon: list[float | None] = []
        lat: list[float | None] = []
        for m in geo.movements:
            if m.kind == kind and m.src in by and m.dst in by:
                lon += [by[m.src].lon, by[m.dst].lon, None]
                lat += [by[m.src].lat, by[m.dst].lat, None]
        if lon:
            data.append(
                {
                    "type": "scattergeo",
                    "mode": "lines",
                    "lon": lon,
                    "lat": lat,
                    "name": f"{kind} moved",
                    "hoverinfo": "skip",
                    "line": {"color": colour, "width": 2, "dash": dash},
                }
            )
    hq = sorted({s.operator_hq for s in geo.sites})
    for i, op in enumerate(hq):
        mine = [s for s in geo.sites if s.operator_hq == op]
        data.append(
            {
                "type": "scattergeo",
                "mode": "markers+text",
                "name": f"operator HQ {op}",
                "lon": [s.lon for s in mine],
                "lat": [s.lat for s in mine],
                "text": [s.site for s in mine],
                "textposition": "top center",
                "marker": {
                    "size": [10 + min(20, 3 * s.stages) for s in mine],
                    "color": PALETTE[i % len(PALETTE)],
                    "symbol": ["circle" if s.stages else "circle-open" for s in mine],
                    "line": {"width": 1, "color": "#333"},
                },
                "customdata": [
                    [s.country, s.operator_hq, s.stages, ", ".join(s.chips)] for s in mine
                ],
                "hovertemplate": "%{text}<br>country %{customdata[0]}, operator HQ "
                "%{customdata[1]}<br>%{customdata[2]} stages placed<br>"
                "%{customdata[3]}<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": {
            **LAYOUT,
            "height": 460,
            "title": {"text": "Sites, operators' headquarters, and what moves between them"},
            "legend": {"orientation": "h"},
            "geo": {
                "projection": {"type": "natural earth"},
                "showcountries": True,
                "countrycolor": "#bbb",
                "showland": True,
                "landcolor": "#f3f3f3",
                "fitbounds": "locations",
                "resolution": 110,
            },
        },
    }


def cost_figure(rows: tuple[CostRow, ...], by: str) -> Figure:
    shown = list(rows[:COST_ROWS])
    rest = rows[COST_ROWS:]
    if rest:
        shown.append(
            CostRow(
                f"{len(rest)} others",
                sum(r.compute_usd for r in rest),
                sum(r.egress_usd for r in rest),
                sum(r.capex_usd for r in rest),
                sum(r.penalty_usd for r in rest),
            )
        )
    parts = (
        ("compute", "compute_usd", "#0072B2", ""),
        ("egress", "egress_usd", "#E69F00", "/"),
        ("capex (amortised)", "capex_usd", "#009E73", "x"),
        ("late penalty", "penalty_usd", "#D55E00", "."),
    )
    free = not any(getattr(r, attr) for r in shown for _, attr, _, _ in parts)
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": name,
            "y": [r.key for r in shown],
            "x": [round(getattr(r, attr), 2) for r in shown],
            "marker": {"color": colour, "pattern": {"shape": shape}},
            "hovertemplate": "%{y}<br>" + name + " $%{x:,.0f}<extra></extra>",
        }
        for name, attr, colour, shape in parts
        # every part at $0 (a plan that costs nothing) is still drawn, as bars of $0: the
        # chart was empty, an axis from -$1 to $6 and rows numbered 0 to 4, with no word
        if any(getattr(r, attr) for r in shown) or (attr == "compute_usd" and free)
    ]
    return {
        "data": data,
        "layout": {
            **LAYOUT,
            "barmode": "stack",
            "title": {"text": f"Cost by {by}" + (": $0, nothing costs anything" if free else "")},
            "height": 160 + 24 * len(shown),
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
            "xaxis": {
                "title": {"text": "US dollars"},
                "tickformat": "$~s",
                **({"range": [0, 1], "tickvals": [0]} if free else {}),
            },
            "yaxis": {"autorange": "reversed", "automargin": True},
        },
    }


def rules_figure(spans: tuple[RuleSpan, ...], on: dt.date, regime: str) -> Figure:
    """Each rule's window; those in force on the plan's date solid, the others faded."""
    horizon = max(
        [on + dt.timedelta(days=365)]
        + [s.start for s in spans]
        + [s.end for s in spans if s.end is not None]
    )
    # rules older than this are drawn from the left edge (their start is in the hover text)
    first = max(min([s.start for s in spans] + [on]), on - dt.timedelta(days=5 * 365))
    data = []
    for effect, (colour, shape) in EFFECT_STYLE.items():
        mine = [s for s in spans if s.effect == effect]
        if not mine:
            continue
        ends = [s.end or horizon for s in mine]
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": effect,
                "y": [s.rule for s in mine],
                "base": [_iso(s.start) for s in mine],
                "x": [
                    max(86_400_000.0, (e - s.start).total_seconds() * 1000)
                    for s, e in zip(mine, ends, strict=True)
                ],
                "marker": {
                    "color": colour,
                    "pattern": {"shape": shape},
                    "opacity": [1.0 if s.in_force else 0.35 for s in mine],
                },
                "customdata": [
                    [
                        s.title,
                        s.citation,
                        s.confidence,
                        _iso(s.start),
                        _iso(s.end) if s.end else "open",
                        "in force" if s.in_force else "not in force",
                    ]
                    for s in mine
                ],
                "hovertemplate": "%{customdata[0]}<br>%{customdata[1]}<br>confidence "
                "%{customdata[2]}<br>%{customdata[3]} to %{customdata[4]} "
                "(%{customdata[5]})<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": {
            **LAYOUT,
            "barmode": "overlay",
            "height": 160 + 18 * len(spans),
            "title": {"text": f"Rules under the {regime} regime; in force on {on} solid"},
            "xaxis": {
                "type": "date",
                "range": [_iso(first - dt.timedelta(days=60)), _iso(horizon)],
            },
            "yaxis": {"autorange": "reversed", "automargin": True, "type": "category"},
            "legend": {"orientation": "h"},
            "shapes": [
                {
                    "type": "line",
                    "x0": _iso(on),
                    "x1": _iso(on),
                    "yref": "paper",
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": "#000", "width": 2, "dash": "dash"},
                }
            ],
            "annotations": [
                {
                    "x": _iso(on),
                    "y": 1,
                    "yref": "paper",
                    "text": f"plan date {on}",
                    "showarrow": False,
                    "yanchor": "bottom",
                    "xanchor": "right",
                }
            ],
        },
    }


def workload_colours(view: PlanView) -> dict[str, str]:
    names = sorted({str(a["workload"]) for a in view.assignments})
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(names)}


def plan_figures(view: PlanView) -> dict[str, Figure]:
    """Every figure of the plan report, by the id of the element it is drawn in."""
    colours = workload_colours(view)
    figs: dict[str, Figure] = {}
    used = [p for p in view.pools if p.tasks]
    for i, p in enumerate(used[:POOL_CHARTS]):
        figs[f"pool-{i}"] = pool_figure(p, colours)
    if len(used) > 1:
        figs["utilisation"] = utilisation_figure(view.pools)
    figs["map"] = map_figure(view)
    if view.assignments:  # no stage placed: no axes of nothing (the page says so)
        figs["cost-workload"] = cost_figure(view.cost_by_workload, "workload")
        figs["cost-site"] = cost_figure(view.cost_by_site, "site")
    figs["rules"] = rules_figure(
        view.rules, dt.date.fromisoformat(view.summary.date), view.summary.regime
    )
    return figs
