"""The estimator's parameters, each with where its value came from.

Straits predicts step time from mechanisms (compute at an achievable fraction of peak,
memory-bound kernels at the HBM bandwidth, tensor-parallel all-reduces over the scale-up link,
MoE all-to-all and data-parallel gradient reduction over the scale-out network, the pipeline
bubble). The parameters below are the few numbers those mechanisms cannot derive from a chip's
datasheet. Values marked *fitted* were chosen by `benchmarks/estimator_calibration.py --fit`
on the runs of shared/reference/calibration-runs.md and nothing else; the others come from first
principles or published measurements, as stated. Accuracy is reported on other published runs
by the same benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

#: Achievable fraction of the dense BF16 peak on large matrix multiplications, per chip family
#: (first principles / typical vendor-library results, confidence M): Ampere libraries reach
#: ~85% of 312 TFLOP/s; Hopper ~75-80% of 989; MI300X and early Blackwell software less; Ascend
#: and TPU set between. The framework factor below multiplies all of them.
GEMM_FRACTION: dict[str, float] = {
    "ampere": 0.85,
    "hopper": 0.78,
    "blackwell": 0.70,
    "cdna3": 0.55,
    "davinci": 0.65,
    "tpu": 0.80,
}
DEFAULT_GEMM_FRACTION = 0.70


@dataclass(frozen=True)
class Calibration:
    framework: float = 0.68
    """*fitted*: end-to-end efficiency of the compute kernels relative to a GEMM microbenchmark
    (kernel launches, small GEMMs, optimizer, data loading, stragglers). One value for every
    chip family."""

    attention: float = 0.70
    """FlashAttention-2 reaches 50-73% of A100 peak forward+backward against ~85% for GEMMs
    (Dao 2023, Sec. 4.1): attention runs at ~0.7 of GEMM efficiency."""

    fp8: float = 0.60
    """*fitted*: FP8 GEMMs reach this fraction of the BF16 GEMM efficiency against the doubled
    FP8 peak (fine-grained scaling and casts; DeepSeek-V3 report Sec. 3.3): net 1.2x BF16 GEMM
    throughput, at the low end of the 1.2-1.5x end-to-end speed-ups reported for FP8."""

    moe_gemm: float = 0.80
    """Grouped expert GEMMs are smaller and unevenly loaded: this fraction of dense efficiency
    (first principles; confidence M)."""

    elementwise_bytes: float = 64.0
    """HBM bytes per hidden unit per token per layer moved by memory-bound kernels (norms,
    activations, residuals, rotary embeddings) forward and backward, after fusion: a count of
    reads and writes of BF16 activations (first principles)."""

    tp_exposed: float = 0.70
    """Share of tensor-parallel all-reduce time on the critical path (sequence parallelism
    overlaps part of it; Megatron-LM; confidence M)."""

    dp_overlap: float = 0.80
    """Share of the backward pass that can hide the data-parallel gradient reduction
    (bucketed overlap in PyTorch DDP/FSDP; confidence M)."""

    ep_exposed: float = 0.50
    """*fitted*: share of MoE all-to-all time not hidden behind computation (DeepSeek-V3's
    DualPipe hides nearly all of it; plain schedules hide little)."""

    goodput: float = 0.90
    """Share of wall-clock time spent making training progress: Llama 3 reports higher than 90%
    effective training time despite 419 interruptions in 54 days (Llama 3 paper, Sec. 3.3.4).
    Covers restarts, checkpointing and lost work."""

    evaluation: float = 0.01
    """Share of the run spent on periodic evaluation (first principles; confidence M)."""

    gemm_fractions: tuple[tuple[str, float], ...] = tuple(GEMM_FRACTION.items())


DEFAULT = Calibration()


def gemm_fraction(family: str, cal: Calibration = DEFAULT) -> float:
    return dict(cal.gemm_fractions).get(family, DEFAULT_GEMM_FRACTION)


@lru_cache(maxsize=65536)
def default_global_batch(tokens: float, seq_len: int) -> float:
    """Tokens per optimizer step when the model does not say: 4M tokens for a 2T-token run
    (Llama 2), growing as tokens^0.7 to 16M at 15.6T (Llama 3 405B); clamped to [1M, 64M],
    and rounded to a number of sequences on a sqrt(2) grid (batches are round numbers, and
    estimates of one model on one chip are then shared across runs of similar length)."""
    batch: float = 4e6 * (tokens / 2e12) ** 0.7
    batch = min(max(batch, 1e6), 6.4e7)
    seqs = max(1.0, batch / seq_len)
    seqs = round(2 ** (round(2 * math.log2(seqs)) / 2))
    return float(max(1, seqs) * seq_len)
