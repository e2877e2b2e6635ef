"""Chips in use over time in one pool, against a capacity that may change over time.

A pool's capacity is a step function (its availability windows); bookings add demand over
intervals. :meth:`Timeline.earliest` finds the earliest start at which a stage's chips are free
for its whole duration in one sweep over the merged breakpoints.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

EPS = 1e-9
INF = float("inf")


@dataclass
class Timeline:
    """Bookings of one pool; times are hours from the plan start.

    ``steps`` is the capacity profile: (from hour, chips) pairs sorted by hour, the first at 0.
    """

    capacity: int
    steps: list[tuple[float, int]] = field(default_factory=list)
    bookings: list[tuple[float, float, int]] = field(default_factory=list)
    _segments: list[tuple[float, float, int]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.steps:
            self.steps = [(0.0, self.capacity)]
        self._starts = [s for s, _ in self.steps]
        self._peak = max(c for _, c in self.steps)

    def capacity_at(self, t: float) -> int:
        if len(self.steps) == 1:
            return self.steps[0][1]
        i = bisect.bisect_right(self._starts, t + EPS) - 1
        return self.steps[max(i, 0)][1]

    def segments(self) -> list[tuple[float, float, int]]:
        """(start, end, free chips) pieces covering [0, inf)."""
        if self._segments is None:
            points = {0.0} | {s for s, _ in self.steps}
            for s, e, _ in self.bookings:
                points |= {s, e}
            cuts = sorted(points)
            delta: dict[float, int] = {}
            for s, e, n in self.bookings:
                delta[s] = delta.get(s, 0) + n
                delta[e] = delta.get(e, 0) - n
            used = 0
            out = []
            for i, t in enumerate(cuts):
                used += delta.get(t, 0)
                end = cuts[i + 1] if i + 1 < len(cuts) else INF
                out.append((t, end, self.capacity_at(t) - used))
            self._segments = out
        return self._segments

    def used(self, start: float, end: float) -> int:
        """The most chips in use at any instant of [start, end)."""
        return max(
            (
                sum(n for s, e, n in self.bookings if s <= t + EPS and t < e - EPS)
                for t in {start} | {s for s, _, _ in self.bookings if start <= s < end}
            ),
            default=0,
        )

    def earliest(self, chips: int, hours: float, ready: float) -> float | None:
        """The earliest start >= ``ready`` at which ``chips`` are free for ``hours``."""
        if chips > self._peak:
            return None
        run_start: float | None = None
        for seg_start, seg_end, free in self.segments():
            if seg_end <= ready + EPS:
                continue
            if free >= chips:
                if run_start is None:
                    run_start = max(seg_start, ready)
                if seg_end - run_start >= hours - EPS:
                    return run_start
            else:
                run_start = None
        return None

    def reserve(self, start: float, end: float, chips: int) -> None:
        """Take ``chips`` over [start, end) without checking (a window of lower capacity)."""
        self.bookings.append((start, end, chips))
        self._segments = None

    def book(self, start: float, end: float, chips: int) -> None:
        for seg_start, seg_end, free in self.segments():
            if seg_start < end - EPS and seg_end > start + EPS and free < chips:
                raise ValueError("booking exceeds the pool's capacity")
        self.bookings.append((start, end, chips))
        self._segments = None
