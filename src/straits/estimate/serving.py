"""Chips a serving stage needs for a target of output tokens per second.

One replica holds the BF16 weights on the fewest chips that leave room for a KV cache. Decoding
is bound by memory bandwidth: each step reads the weights once (for MoE, the experts the batch
touches) and every sequence's KV cache, producing one token per sequence. The batch is as large
as the KV memory allows. Prefill is bound by compute: 2·A FLOPs per prompt token. A replica
completes ``batch`` requests every ``output_tokens`` decode steps plus their prefills.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from straits.catalog import Chip
from straits.catalog.tpu_slices import TPU_SLICES
from straits.estimate.calibration import DEFAULT, Calibration
from straits.estimate.memory import USABLE_FRACTION, kv_gb, min_chips_serving
from straits.estimate.rounding import figure
from straits.model.scenario import ModelSpec

#: share of HBM bandwidth decoding achieves (paged attention, small GEMVs; confidence M)
DECODE_BANDWIDTH = 0.70
MAX_BATCH = 256


@dataclass(frozen=True)
class ServingPlan:
    replica_chips: int
    replicas: int
    batch: int
    decode_step_s: float
    tokens_per_s_per_replica: float
    bound: str

    @property
    def chips(self) -> int:
        return self.replica_chips * self.replicas

    def held(self, chips: int) -> int:
        """Whole replicas ``chips`` chips hold: 6 chips of 4-chip replicas are one, 2 idle (as
        ``straits export`` runs them)."""
        return chips // self.replica_chips

    def served(self, chips: int) -> float:
        """Output tokens/s the whole replicas of ``chips`` chips serve (a part of a replica
        serves nothing: 6 chips of 4-chip replicas were said to serve one and a half
        replicas' tokens)."""
        return self.held(chips) * self.tokens_per_s_per_replica

    def to_json(self) -> dict[str, float | int | str]:
        return {
            "replica_chips": self.replica_chips,
            "replicas": self.replicas,
            "batch": self.batch,
            "decode_step_ms": figure(self.decode_step_s * 1e3, 2),
            "tokens_per_s_per_replica": figure(self.tokens_per_s_per_replica, 1),
            "bound": self.bound,
        }


def kv_bytes_per_token(model: ModelSpec) -> float:
    return kv_gb(model, 1.0) * 1e9


def replica_size(model: ModelSpec, chip: Chip, context_tokens: float = 0.0) -> int:
    """Chips of one serving replica: the fewest that hold the weights and the KV cache
    (:func:`~straits.estimate.memory.min_chips_serving`) rounded up to a tensor-parallel group,
    a power of two (3 H100s hold a 70B model; its replica is 4), on a Cloud TPU the smallest
    slice of at least that many. The one size the estimate's ``min_chips`` and ``fits``, its
    throughput and ``straits export`` use (``fits`` took the memory minimum, 3, while the
    throughput was a 4-chip replica's)."""
    need = min_chips_serving(model, chip, context_tokens)
    size = 1 << (need - 1).bit_length()
    slices = TPU_SLICES.get(chip.id)
    if slices is not None:  # a TPU replica is a whole slice (4 chips at least on v4)
        size = slices.at_least(need) or size
    return size


def largest_slice_short(chip: Chip, replica: int) -> int | None:
    """On a Cloud TPU whose largest slice is smaller than ``replica`` chips, that largest
    slice (no slice holds a replica: the planner leaves such a stage unplaced); else None."""
    slices = TPU_SLICES.get(chip.id)
    if slices is None or slices.at_least(replica) is not None:
        return None
    return slices.max_chips or max(slices.small)


def replica_throughput(
    model: ModelSpec, chip: Chip, prompt_tokens: int, output_tokens: int, cal: Calibration = DEFAULT
) -> ServingPlan:
    r = replica_size(model, chip, prompt_tokens + output_tokens)
    weights = 2.0 * model.params
    free = r * chip.memory_gb * 1e9 * USABLE_FRACTION - weights
    kv = kv_bytes_per_token(model)
    batch = int(max(1, min(MAX_BATCH, free // (kv * (prompt_tokens + output_tokens)))))
    bw = r * chip.memory_tbps * 1e12 * DECODE_BANDWIDTH
    rate = r * chip.peak_tflops * 1e12 * cal.kernel_efficiency(chip.family)
    read = 2.0 * min(model.params, model.active * batch) if model.is_moe else weights
    context = prompt_tokens + output_tokens / 2.0
    t_mem = (read + batch * context * kv) / bw
    t_compute = 2.0 * model.active * batch / rate
    step = max(t_mem, t_compute)
    prefill = 2.0 * model.active * prompt_tokens / rate
    tps = batch * output_tokens / (output_tokens * step + batch * prefill)
    return ServingPlan(r, 1, batch, step, tps, "memory" if t_mem >= t_compute else "compute")


def serving_plan(
    model: ModelSpec,
    chip: Chip,
    tokens_per_s: float,
    prompt_tokens: int = 1024,
    output_tokens: int = 256,
    cal: Calibration = DEFAULT,
) -> ServingPlan:
    one = replica_throughput(model, chip, prompt_tokens, output_tokens, cal)
    replicas = max(1, math.ceil(tokens_per_s / one.tokens_per_s_per_replica))
    return ServingPlan(
        one.replica_chips,
        replicas,
        one.batch,
        one.decode_step_s,
        one.tokens_per_s_per_replica,
        one.bound,
    )
