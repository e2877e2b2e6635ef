"""Estimates of what a stage needs on a chip: FLOPs, memory, chips, time, cost."""

from straits.estimate.estimator import Estimate, estimate_serving, estimate_training
from straits.estimate.flops import flops_per_token, training_flops
from straits.estimate.memory import min_chips_serving

__all__ = [
    "Estimate",
    "estimate_serving",
    "estimate_training",
    "flops_per_token",
    "min_chips_serving",
    "training_flops",
]
