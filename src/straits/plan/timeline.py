"""Chips in use over time in one pool, against a capacity that may change over time.

A pool's capacity is a step function (its availability windows); bookings add demand over
intervals. :meth:`Timeline.earliest` finds the earliest start at which a stage's chips are free
for its whole duration in one sweep over the merged breakpoints.
"""

from __future__ import annotations

import bisect
import itertools
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
    _ends: tuple[list[tuple[float, float, int]], list[float]] | None = field(
        default=None, repr=False
    )
    """(the segments, their ends): where :meth:`earliest` starts its sweep"""

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
        segs = self.segments()
        # segments are contiguous and sorted, so those that end by ``ready`` are a prefix:
        # skipped by bisection, not one by one
        first = bisect.bisect_right(self._ends_of(segs), ready + EPS)
        for seg_start, seg_end, free in itertools.islice(segs, first, None):
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
        self._segments = self._after(start, end, chips)

    def book(self, start: float, end: float, chips: int) -> None:
        for seg_start, seg_end, free in self.segments():
            if seg_start < end - EPS and seg_end > start + EPS and free < chips:
                raise ValueError("booking exceeds the pool's capacity")
        self.bookings.append((start, end, chips))
        self._segments = self._after(start, end, chips)

    def _ends_of(self, segs: list[tuple[float, float, int]]) -> list[float]:
        if self._ends is None or self._ends[0] is not segs:
            self._ends = (segs, [e for _, e, _ in segs])
        return self._ends[1]

    def _after(self, start: float, end: float, chips: int) -> list[tuple[float, float, int]] | None:
        """The segments once [start, end) also holds ``chips``: the list :meth:`segments`
        would rebuild from every booking, made from the current one by cutting the segments
        at ``start`` and ``end`` and taking the chips from those in between (free chips are
        integers, so the result is exact). None (rebuilt when next read) where there is no
        current list or the booking is not an interval within it."""
        segs = self._segments
        if segs is None or not (segs[0][0] <= start < end < INF):
            return None
        ends = self._ends_of(segs)
        first = bisect.bisect_right(ends, start)  # the segment holding ``start``
        last = bisect.bisect_right(ends, end)  # the segment holding ``end``
        middle: list[tuple[float, float, int]] = []
        for a, b, free in segs[first : last + 1]:
            # a segment's chips in use, read where it starts (a cut's capacity is read at the
            # cut itself, as a rebuild reads it)
            used = self.capacity_at(a) - free
            cuts = [a, *(c for c in (start, end) if a < c < b)]
            for k, c in enumerate(cuts):
                f = free if c == a else self.capacity_at(c) - used
                if start <= c < end:
                    f -= chips
                middle.append((c, cuts[k + 1] if k + 1 < len(cuts) else b, f))
        return segs[:first] + middle + segs[last + 1 :]
