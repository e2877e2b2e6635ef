"""The CP-SAT model's time step: a quarter of an hour.

Durations and transfers are rounded up to it and availability windows widened to it, so the
model never overlaps what really runs, and a chain of stages loses at most a few quarter hours
to rounding against a deadline (in whole hours, a 60-day serving stage after a fine-tune could
miss a deadline the greedy plan met with an hour to spare).
"""

from __future__ import annotations

import math

TICKS_PER_HOUR = 4


def ticks_up(h: float) -> int:
    """Hours as model ticks, rounded up."""
    return max(0, math.ceil(h * TICKS_PER_HOUR - 1e-9))


def ticks_down(h: float) -> int:
    """Hours as model ticks, rounded down."""
    return max(0, math.floor(h * TICKS_PER_HOUR + 1e-9))


def tick_hours(t: float) -> float:
    """Model ticks as hours."""
    return t / TICKS_PER_HOUR
