"""Stages too short to see on their pool's chart, drawn as marks (web31).

A bar of 1 minute beside a stage of 10 years (or of a stage that starts and ends at one
instant) is under a pixel wide: Plotly drew nothing, so the stage was in the table but on no
chart. Each such stage gets a diamond and its name at its start, on its lane, with the bar's
hover text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from straits.report.usage import PoolView, Task

#: a stage shorter than this share of its chart's time axis (under 3 px of a 1,200 px chart)
#: is drawn as a mark beside its bar: a bar of 1 minute beside a stage of 10 years, or of a
#: stage that starts and ends at one instant, was not drawn at all
SHORT_SHARE = 0.0025
#: the share of the axis a short stage's mark and name take on its lane: no other stage is
#: laid there (two stages at one instant were drawn as one mark with two names over each other)
MARK_SHARE = 0.1


def axis_seconds(pool: PoolView) -> float:
    """The length of the pool chart's time axis (the plan's whole span)."""
    return (pool.capacity[-1][0] - pool.capacity[0][0]).total_seconds()


def too_short(pool: PoolView, shown: Sequence[Task]) -> list[int]:
    span = axis_seconds(pool)
    return [
        i for i, t in enumerate(shown) if (t.end - t.start).total_seconds() <= span * SHORT_SHARE
    ]


def occupied_until(t: Task, span_s: float) -> dt.datetime:
    """When ``t`` leaves its lane free for the next stage: its end, or for a stage drawn as a
    mark, the end of its mark and name."""
    if (t.end - t.start).total_seconds() <= span_s * SHORT_SHARE:
        return max(t.end, t.start + dt.timedelta(seconds=span_s * MARK_SHARE))
    return t.end


def short_marks(
    shown: Sequence[Task],
    idx: list[int],
    lanes: list[int],
    colours: dict[str, str],
    default: str,
) -> dict[str, Any]:
    """A diamond and the stage's name at each too-short stage's start, on its lane."""
    return {
        "type": "scatter",
        "mode": "markers+text",
        "name": "short stages",
        "y": [f"lane {lane + 1}" for lane in lanes],
        "x": [shown[i].start.isoformat() for i in idx],
        "text": [shown[i].stage + (" (bought)" if shown[i].bought else "") for i in idx],
        "textposition": "middle right",
        "cliponaxis": False,  # a stage at the chart's first instant: a whole diamond
        "marker": {
            "symbol": "diamond",
            "size": 11,
            "color": [colours.get(shown[i].workload, default) for i in idx],
            "line": {"width": 1, "color": "#000"},
        },
        "customdata": [[shown[i].label, shown[i].chips, round(shown[i].cost_usd)] for i in idx],
        "hovertemplate": "%{customdata[0]}<br>%{customdata[1]} chips<br>"
        "$%{customdata[2]:,}<extra></extra>",
        "showlegend": False,
        "yaxis": "y2",
        "xaxis": "x",
    }
