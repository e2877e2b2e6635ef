"""How the estimator's JSON rounds its figures."""

from __future__ import annotations


def figure(value: float, decimals: int) -> float:
    """``value`` to ``decimals`` decimals, or to 3 significant digits when those would show a
    positive figure as 0: a 1-token step of 20 us is not a step of 0 seconds, a replica of 0.04
    tokens/s not one of none."""
    rounded = round(value, decimals)
    if rounded == 0 and value > 0:
        return float(f"{value:.3g}")
    return rounded
