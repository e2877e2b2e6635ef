"""Sweep designs: Latin hypercube (scipy's ``qmc.LatinHypercube``) or a full grid."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from straits.market.loading import MarketError, RangeParam

MAX_GRID = 100_000
#: values a design may hold (runs x parameters; 80 MB): --runs 100000 over a market of 550
#: ranges asked for 55 million, and scipy's Latin hypercube needs several times the design's
#: size while it makes it (4.7 GB for 100,000 x 2,000). The shipped market's 71 ranges fit
#: at the most --runs allows
MAX_DESIGN_VALUES = 10_000_000


@dataclass(frozen=True)
class Design:
    params: tuple[RangeParam, ...]
    values: np.ndarray
    """values[run, param]"""

    @property
    def runs(self) -> int:
        return int(self.values.shape[0])

    def point(self, run: int) -> dict[str, float]:
        return {p.path: float(self.values[run, i]) for i, p in enumerate(self.params)}


def latin_hypercube(params: list[RangeParam], runs: int, seed: int) -> Design:
    from scipy.stats import qmc

    if not params:
        raise MarketError(
            "nothing to sweep: the market has no parameter ranges",
            expected="a file with {low, high} parameters, or --param PATH",
        )
    if runs * len(params) > MAX_DESIGN_VALUES:
        raise MarketError(
            f"{runs:,} runs over {len(params):,} parameters make a design of "
            f"{runs * len(params):,} values",
            path="--runs",
            expected=f"at most {MAX_DESIGN_VALUES:,} values: at most "
            f"{MAX_DESIGN_VALUES // len(params):,} runs, or fewer parameters (--param)",
        )
    unit = qmc.LatinHypercube(d=len(params), seed=np.random.default_rng(seed)).random(runs)
    lows = np.array([p.low for p in params])
    highs = np.array([p.high for p in params])
    return Design(tuple(params), lows + unit * (highs - lows))


def grid(params: list[RangeParam], levels: int) -> Design:
    if not params:
        raise MarketError("nothing to sweep: the market has no parameter ranges")
    if levels ** len(params) > MAX_GRID:
        raise MarketError(
            f"a grid of {levels} levels over {len(params)} parameters has "
            f"{levels ** len(params):,} points",
            path="--levels",
            expected=f"at most {MAX_GRID:,} points: fewer --param or --method lhs",
        )
    axes = [np.linspace(p.low, p.high, levels) for p in params]
    return Design(tuple(params), np.array(list(itertools.product(*axes)), dtype=float))
