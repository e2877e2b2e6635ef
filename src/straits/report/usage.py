"""Each pool's capacity and use over the plan's time: the data behind the Gantt chart."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from straits.model.scenario import Pool, Scenario


@dataclass(frozen=True)
class Task:
    """One placed stage on a pool."""

    workload: str
    stage: str
    start: dt.datetime
    end: dt.datetime
    chips: int
    bought: bool
    cost_usd: float

    @property
    def label(self) -> str:
        return f"{self.workload}/{self.stage}"


@dataclass(frozen=True)
class PoolView:
    site: str
    country: str
    chip: str
    count: int
    """chips outside every availability window"""
    capacity: tuple[tuple[dt.datetime, int], ...]
    """step function: from each instant on, the pool has this many chips (rented)"""
    use: tuple[tuple[dt.datetime, int], ...]
    """step function of rented chips in use"""
    bought_use: tuple[tuple[dt.datetime, int], ...]
    """step function of chips the tenants bought for this pool, in use"""
    tasks: tuple[Task, ...]
    utilisation: float
    """rented chip-hours used / chip-hours available over the plan's span (0 when unused)"""

    @property
    def key(self) -> str:
        return f"{self.site}/{self.chip}"

    @property
    def peak(self) -> int:
        return max((n for _, n in self.use), default=0)

    @property
    def bought_peak(self) -> int:
        """The most chips bought for the pool's stages in use at once."""
        return max((n for _, n in self.bought_use), default=0)

    @property
    def chip_hours(self) -> float:
        return sum(t.chips * (t.end - t.start).total_seconds() / 3600 for t in self.tasks)


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def capacity_steps(
    pool: Pool, start: dt.datetime, end: dt.datetime
) -> tuple[tuple[dt.datetime, int], ...]:
    """The pool's chip count from ``start`` to ``end`` as (instant, count) steps."""
    cuts = {start, end}
    for w in pool.availability:
        for day in (w.start, w.end):
            if day is not None and start < _midnight(day) < end:
                cuts.add(_midnight(day))

    # the window starting last counts, as the planner reads it; of two starting the same
    # day, the one listed later
    latest_first = list(reversed(sorted(pool.availability, key=lambda w: w.start)))

    def count_at(t: dt.datetime) -> int:
        for w in latest_first:
            if _midnight(w.start) <= t and (w.end is None or t < _midnight(w.end)):
                return w.count
        return pool.count

    steps: list[tuple[dt.datetime, int]] = []
    for t in sorted(cuts):
        n = count_at(t) if t < end else (steps[-1][1] if steps else pool.count)
        if not steps or steps[-1][1] != n or t == end:
            steps.append((t, n))
    return tuple(steps)


def use_steps(
    tasks: list[Task], start: dt.datetime, end: dt.datetime
) -> tuple[tuple[dt.datetime, int], ...]:
    """Chips in use over time as (instant, count) steps, from ``start`` to ``end``."""
    delta: dict[dt.datetime, int] = {start: 0, end: 0}
    for t in tasks:
        delta[t.start] = delta.get(t.start, 0) + t.chips
        delta[t.end] = delta.get(t.end, 0) - t.chips
    steps: list[tuple[dt.datetime, int]] = []
    level = 0
    for at in sorted(delta):
        level += delta[at]
        if not steps or steps[-1][1] != level or at == end:
            steps.append((at, level))
    return tuple(steps)


def _area(steps: tuple[tuple[dt.datetime, int], ...]) -> float:
    return sum(a[1] * (b[0] - a[0]).total_seconds() / 3600 for a, b in pairwise(steps))


def pool_views(plan: dict[str, Any], sc: Scenario, start: dt.datetime) -> tuple[PoolView, ...]:
    """One view per pool the plan uses, busiest first, then every unused pool."""
    tasks: dict[tuple[str, str], list[Task]] = {}
    for a in plan.get("assignments") or []:
        t = Task(
            str(a["workload"]),
            str(a["stage"]),
            _instant(a["start"]),
            _instant(a["end"]),
            int(a["chips"]),
            bool(a.get("bought", False)),
            float(a.get("cost_usd", 0.0)),
        )
        tasks.setdefault((str(a["site"]), str(a["chip"])), []).append(t)
    end = max((t.end for ts in tasks.values() for t in ts), default=start)
    end = max(end, start + dt.timedelta(days=1))
    views = []
    for site in sc.sites:
        for pool in site.pools:
            mine = sorted(tasks.get((site.id, pool.chip), []), key=lambda t: (t.start, t.label))
            rented = [t for t in mine if not t.bought]
            cap = capacity_steps(pool, start, end)
            use = use_steps(rented, start, end)
            available = _area(cap)
            views.append(
                PoolView(
                    site=site.id,
                    country=site.country,
                    chip=pool.chip,
                    count=pool.count,
                    capacity=cap,
                    use=use,
                    bought_use=use_steps([t for t in mine if t.bought], start, end),
                    tasks=tuple(mine),
                    utilisation=_area(use) / available if available > 0 else 0.0,
                )
            )
    views.sort(key=lambda v: (not v.tasks, -v.chip_hours, v.key))
    return tuple(views)


def average_share(p: PoolView, start: dt.datetime, end: dt.datetime) -> float | None:
    """The average share of ``p``'s chips in use from ``start`` to ``end``, weighted by time
    (None where the pool has no chips all along): a stage that runs there, however briefly,
    makes it more than 0 (one instant per week, its middle, missed a 5-hour stage)."""
    weighted = seconds = 0.0
    for a, b, cap, use in _pieces(p.capacity, p.use, start, end):
        if cap > 0:
            span = (b - a).total_seconds()
            weighted += span * use / cap
            seconds += span
    if seconds <= 0:
        return None
    share = weighted / seconds
    # 3 significant digits: a brief stage's share is small, never rounded to 0
    return float(f"{share:.3g}")


def _pieces(
    cap: tuple[tuple[dt.datetime, int], ...],
    use: tuple[tuple[dt.datetime, int], ...],
    start: dt.datetime,
    end: dt.datetime,
) -> list[tuple[dt.datetime, dt.datetime, int, int]]:
    """``[start, end)`` cut where either step function changes: (from, to, capacity, use)."""
    cuts = sorted({start, end, *(t for t, _ in cap + use if start < t < end)})
    return [(a, b, _level(cap, a), _level(use, a)) for a, b in pairwise(cuts)]


def _level(steps: tuple[tuple[dt.datetime, int], ...], t: dt.datetime) -> int:
    """The step function's value at ``t`` (0 before its first step)."""
    i = bisect_right(steps, t, key=lambda s: s[0])
    return steps[i - 1][1] if i else 0
