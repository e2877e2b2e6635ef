"""Estimates of what a stage needs on a chip: FLOPs, memory, chips, time, cost."""

from straits.estimate.estimator import Estimate, at_risk, estimate_serving, estimate_training
from straits.estimate.flops import flops_per_token, training_flops
from straits.estimate.interval import RISKS, Risk
from straits.estimate.memory import min_chips_serving
from straits.estimate.nearest import nearest_runs
from straits.estimate.stack import DEFAULT_YEAR
from straits.estimate.typical import typical_chips

__all__ = [
    "DEFAULT_YEAR",
    "RISKS",
    "Estimate",
    "Risk",
    "at_risk",
    "estimate_serving",
    "estimate_training",
    "flops_per_token",
    "min_chips_serving",
    "nearest_runs",
    "training_flops",
    "typical_chips",
]
