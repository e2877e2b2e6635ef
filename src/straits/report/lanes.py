"""The lanes of a pool's chart: which lane each stage is drawn on (overlapping stages never
hide each other; a stage too short to see keeps its lane for its mark) and how tall the chart
is for that many lanes."""

from __future__ import annotations

import datetime as dt

from straits.report.short_stages import axis_seconds, occupied_until
from straits.report.usage import PoolView


def lanes_of(pool: PoolView, drawn: int) -> list[int]:
    """A lane for each of the first ``drawn`` tasks, so overlapping tasks on one pool never
    hide each other. A task's lane depends only on the tasks before it, so the tasks not drawn
    are not read: 100,000 one-minute stages on one pool (each a mark that keeps its lane) took
    a lane each over all of them, a scan of every lane per task, 12 s to draw 40 of them."""
    ends: list[dt.datetime] = []
    lanes = []
    span = axis_seconds(pool)
    for t in pool.tasks[:drawn]:
        until = occupied_until(t, span)
        for i, e in enumerate(ends):
            if e <= t.start:
                ends[i] = until
                lanes.append(i)
                break
        else:
            ends.append(until)
            lanes.append(len(ends) - 1)
    return lanes


#: the height of a lane past 12 lanes (px): a bar and its name in 12 px text, unshrunk
LANE_PX = 24


def pool_height(lanes: int) -> tuple[int, float, float]:
    """(the chart's height, the top of the chips panel, the bottom of the lanes) for
    ``lanes``: up to 12 lanes share a panel of the chart's upper half; past that every lane
    keeps 24 px and the chips panel its 12-lane size (40 lanes were squeezed into the
    12-lane panel: bars 5 px high, their names 4 px, unreadable)."""
    if lanes <= 12:
        return 220 + 22 * lanes, 0.42, 0.5
    plot = 174 + 30 + LANE_PX * lanes  # chips panel, gap, lanes (margins: 70 px)
    return 70 + plot, 174 / plot, (174 + 30) / plot
