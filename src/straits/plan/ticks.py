"""The CP-SAT model's time step: a minute.

Durations and transfers are rounded up to it and availability windows widened to it, so the
model never overlaps what really runs, and a chain of stages loses at most a few minutes to
rounding against a deadline. The greedy planner packs stages up to their deadlines: in whole
hours a 60-day serving stage after a fine-tune missed a deadline the greedy plan met with an
hour to spare; at 1,000 workloads over 200 sites, quarter hours still lost five of the greedy
plan's stages when it was re-timed into the model, minutes one.
"""

from __future__ import annotations

import math

TICKS_PER_HOUR = 60


def ticks_up(h: float) -> int:
    """Hours as model ticks, rounded up."""
    return max(0, math.ceil(h * TICKS_PER_HOUR - 1e-9))


def ticks_down(h: float) -> int:
    """Hours as model ticks, rounded down."""
    return max(0, math.floor(h * TICKS_PER_HOUR + 1e-9))


def tick_hours(t: float) -> float:
    """Model ticks as hours."""
    return t / TICKS_PER_HOUR
