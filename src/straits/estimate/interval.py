"""How far a training estimate may be off: a central 80% interval, and planning at its high end.

The interval comes from the estimator's own errors on published runs it did not see:
``benchmarks/fit_estimator.py`` refits the parameters once per ``fit`` run with that run left
out, predicts the run, and keeps the 10th and 90th percentiles of log(published / predicted).
An estimate's low and high are its central figure times exp(those percentiles), so roughly 8
published runs in 10 fall inside; ``benchmarks/estimator_calibration.py`` measures how many
``check`` runs do.

A request that gives its stack's measured MFU gets a narrower interval (:func:`given_mfu_interval`):
what is left when the team's efficiency is known, a log-normal scatter whose width the fitting
script derives from ``fit`` runs alone (the same run published as a per-step MFU and as a
whole-run figure, and near-replicate runs of one team).

A plan uses the central figure by default (``risk='p50'``); with ``risk='p90'`` it budgets and
schedules every training stage at the high end, for hard deadlines and budgets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Literal

from straits.errors import CatalogError
from straits.estimate.calibration import fitted_document

Risk = Literal["p50", "p90"]
RISKS: tuple[str, ...] = ("p50", "p90")
DEFAULT_RISK: Risk = "p50"


@dataclass(frozen=True)
class Interval:
    low: float
    """log(published / predicted) at the lower percentile"""
    high: float
    """log(published / predicted) at the upper percentile"""
    level: float
    """share of published runs meant to fall inside (0.8: the 10th to the 90th percentile)"""
    basis: str

    @property
    def low_factor(self) -> float:
        return math.exp(self.low)

    @property
    def high_factor(self) -> float:
        return math.exp(self.high)

    def factor(self, risk: Risk) -> float:
        """The multiplier of the central estimate a plan uses at ``risk``."""
        return self.high_factor if risk == "p90" else 1.0

    def to_json(self) -> dict[str, float | str]:
        return {
            "level": self.level,
            "low_factor": round(self.low_factor, 4),
            "high_factor": round(self.high_factor, 4),
            "basis": self.basis,
        }


#: used when no fitted interval ships (never in a release): no claim of width
NO_INTERVAL = Interval(0.0, 0.0, 0.0, "none: the estimator has not been calibrated")


def _shipped(key: str) -> Interval:
    try:
        doc = fitted_document().get(key)
    except CatalogError:  # a damaged fitted.yaml: estimates with the shipped parameters refuse
        return NO_INTERVAL  # (require_shipped); the fitting script still runs to repair it
    if not isinstance(doc, dict):
        return NO_INTERVAL
    return Interval(float(doc["low"]), float(doc["high"]), float(doc["level"]), str(doc["basis"]))


@cache
def training_interval() -> Interval:
    """The interval of an estimate whose efficiency the model predicts."""
    return _shipped("interval")


@cache
def given_mfu_interval() -> Interval:
    """The interval of an estimate whose per-step MFU the request gave (measured)."""
    return _shipped("interval_given_mfu")
