"""Memory a stage needs, and the fewest chips that hold it.

Training in mixed precision with Adam keeps, per parameter: BF16 weights (2 B) and gradients
(2 B), plus FP32 master weights, first and second moments (12 B) = 16 B (Rajbhandari et al. 2020,
ZeRO, Sec. 3.1). Fully sharded across chips (ZeRO-3 / FSDP), the fewest chips is the total divided
by the usable memory per chip. Serving holds BF16 weights (2 B per parameter) plus a KV-cache
reserve.
"""

from __future__ import annotations

import math

from straits.catalog import Chip
from straits.model.scenario import ModelSpec

GB = 1e9
TRAIN_BYTES_PER_PARAM = 16.0
SERVE_BYTES_PER_PARAM = 2.0
#: share of HBM usable for model state; the rest goes to activations, buffers and fragmentation
USABLE_FRACTION = 0.85
#: share of serving memory kept for the KV cache and activations
KV_RESERVE = 0.30


def training_state_gb(model: ModelSpec) -> float:
    return model.params * TRAIN_BYTES_PER_PARAM / GB


def serving_state_gb(model: ModelSpec) -> float:
    return model.params * SERVE_BYTES_PER_PARAM / GB


def min_chips_training(model: ModelSpec, chip: Chip) -> int:
    return max(1, math.ceil(training_state_gb(model) / (chip.memory_gb * USABLE_FRACTION)))


def min_chips_serving(model: ModelSpec, chip: Chip) -> int:
    """Chips for one serving replica: weights in the memory left after the KV-cache reserve."""
    usable = chip.memory_gb * USABLE_FRACTION * (1.0 - KV_RESERVE)
    return max(1, math.ceil(serving_state_gb(model) / usable))
