"""Chips in use over time in one pool: a list of bookings and an earliest-fit query."""

from __future__ import annotations

from dataclasses import dataclass, field

EPS = 1e-9


@dataclass
class Timeline:
    """Bookings of one pool of ``capacity`` chips; times are hours from the plan start."""

    capacity: int
    bookings: list[tuple[float, float, int]] = field(default_factory=list)

    def used(self, start: float, end: float) -> int:
        """The most chips in use at any instant of [start, end)."""
        points = {start} | {s for s, _, _ in self.bookings if start <= s < end}
        return max((sum(n for s, e, n in self.bookings if s <= t + EPS and t < e - EPS)
                    for t in points), default=0)

    def earliest(self, chips: int, hours: float, ready: float) -> float | None:
        """The earliest start >= ``ready`` at which ``chips`` are free for ``hours``."""
        if chips > self.capacity:
            return None
        starts = sorted({ready} | {e for _, e, _ in self.bookings if e > ready})
        for t in starts:
            if self.used(t, t + hours) + chips <= self.capacity:
                return t
        return None  # unreachable: after the last booking ends the pool is empty

    def book(self, start: float, end: float, chips: int) -> None:
        if self.used(start, end) + chips > self.capacity:
            raise ValueError("booking exceeds the pool's capacity")
        self.bookings.append((start, end, chips))
