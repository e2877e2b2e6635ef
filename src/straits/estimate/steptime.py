"""Time of one optimizer step on one layout, from mechanisms.

Per chip, for a global batch of B tokens over N chips (data-parallel degree D, tensor t,
pipeline p, expert e):

* matrix multiplications: 6·A·B/N FLOPs (A active parameters) at the chip's achievable GEMM
  rate (BF16, or FP8 at its own efficiency; expert GEMMs a little slower);
* attention: 12·L·h·T·B/N FLOPs at the attention kernels' rate;
* memory-bound kernels: B·L/N token-layers of ``elementwise_bytes``·h over the HBM bandwidth;
  with full recomputation the forward runs twice (4/3 of the FLOPs), with selective only
  attention does;
* tensor parallelism: 4 all-reduces (6 with full recomputation) of 2h bytes per token-layer,
  ring cost 2(t-1)/t, over half the bidirectional scale-up bandwidth; partly exposed;
* MoE: all-to-all of the routed token copies (dispatch + combine, forward and backward) to the
  other chips of the expert-parallel group, over the scale-up link inside a node and the
  scale-out network beyond it (none without expert parallelism: every expert is local); partly
  exposed;
* the pipeline bubble (p-1)/(v·m + p-1) with m microbatches per replica and v virtual stages;
* data-parallel gradient reduction, ring cost 2(D-1)/D (x1.5 for ZeRO-3's extra all-gather), over
  the scale-out network, hidden behind the backward pass up to ``dp_overlap``; an expert
  shard's gradients are reduced among the D/e replicas that hold it;
* the optimizer update, memory-bound over the chip's ZeRO shard of the state.

Compute runs at the chip family's kernel efficiency for the software year
(:meth:`~straits.estimate.calibration.Calibration.kernel_efficiency`), less for narrow models
(:meth:`~straits.estimate.calibration.Calibration.width_efficiency`). Without fused attention
(stacks before 2023) attention also moves every score through HBM (``score_bytes`` per score).

MFU counts model FLOPs only (no recomputation) against the dense BF16 peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from straits.catalog import Chip
from straits.estimate.calibration import DEFAULT, Calibration
from straits.estimate.layout import NODE, Layout, Shapes
from straits.estimate.memory import state_shards
from straits.estimate.stack import DEFAULT_YEAR, stack
from straits.model.scenario import ModelSpec

#: scale-up bandwidth assumed when a chip's is not published (GB/s, bidirectional)
UNKNOWN_SCALEUP_GBPS = 400.0
UNKNOWN_SCALEOUT_GBIT = 200.0
#: share of a MoE model's active parameters in its expert MLPs (MLPs hold ~2/3 of a
#: transformer layer's parameters)
MOE_ACTIVE_IN_EXPERTS = 2.0 / 3.0
MAX_INTERLEAVE = 4


@dataclass(frozen=True)
class StepTime:
    gemm: float
    attention: float
    memory_bound: float
    tp_comm: float
    ep_comm: float
    bubble: float
    dp_comm: float
    optimizer: float
    model_flops: float
    """model FLOPs per chip per step"""
    peak_flops: float

    @property
    def total(self) -> float:
        return (
            self.gemm
            + self.attention
            + self.memory_bound
            + self.tp_comm
            + self.ep_comm
            + self.bubble
            + self.dp_comm
            + self.optimizer
        )

    @property
    def mfu(self) -> float:
        return self.model_flops / (self.peak_flops * self.total)

    def shares(self) -> dict[str, float]:
        t = self.total
        return {
            k: round(getattr(self, k) / t, 4)
            for k in (
                "gemm",
                "attention",
                "memory_bound",
                "tp_comm",
                "ep_comm",
                "bubble",
                "dp_comm",
                "optimizer",
            )
        }


def step_time(
    model: ModelSpec,
    chip: Chip,
    layout: Layout | Shapes,
    batch_tokens: float,
    cal: Calibration = DEFAULT,
    year: int = DEFAULT_YEAR,
) -> StepTime:
    """Step time of ``layout`` with the software stack of ``year``; given :class:`Shapes`
    (arrays of layouts) every field of the result is an array, one entry per layout, from the
    same formulas."""
    n = layout.chips
    t, p, e, d = layout.tp, layout.pp, layout.ep, layout.dp
    rc = layout.rc
    h, layers, seq = model.d_model, model.layers, model.seq_len
    peak = chip.peak_tflops * 1e12
    base = cal.kernel_efficiency(chip.family, year)
    rate = peak * base * cal.width_efficiency(h, chip.peak_tflops)
    if model.precision == "fp8" and chip.peak_fp8_tflops:
        rate = rate * (chip.peak_fp8_tflops / chip.peak_tflops) * cal.fp8
    if model.is_moe:  # expert GEMMs run slower than the dense ones
        rate = 1.0 / (
            (1 - MOE_ACTIVE_IN_EXPERTS) / rate + MOE_ACTIVE_IN_EXPERTS / (rate * cal.moe_gemm)
        )
    rc_gemm = np.where(rc == 2, 4.0 / 3.0, 1.0)  # full recomputation reruns the forward
    rc_attn = np.where(rc == 0, 1.0, 4.0 / 3.0)  # selective reruns attention only

    gemm_flops = 6.0 * model.active * batch_tokens / n
    attn_flops = 12.0 * layers * h * seq * batch_tokens / n
    t_gemm = gemm_flops * rc_gemm / rate
    t_attn = attn_flops * rc_attn / (peak * base * cal.attention)
    hbm = chip.memory_tbps * 1e12
    token_layers = batch_tokens * layers / n
    t_mem = token_layers * cal.elementwise_bytes * h * rc_gemm / hbm
    if not stack(year).fused_attention:  # every score goes through HBM, per head (sharded by TP)
        t_mem = t_mem + token_layers * cal.score_bytes * model.heads / t * seq * rc_attn / hbm

    up = (chip.io_gbps or UNKNOWN_SCALEUP_GBPS) / 2.0 * 1e9  # one direction, bytes/s
    out_gbit = chip.scaleout_gbit.mid if chip.scaleout_gbit else UNKNOWN_SCALEOUT_GBIT
    out = out_gbit / 8.0 * 1e9
    all_reduces = np.where(rc == 2, 6.0, 4.0)
    t_tp = (
        (batch_tokens / d)
        * (layers / p)
        * all_reduces
        * 2.0
        * (t - 1)
        / t
        * 2.0
        * h
        / up
        * cal.tp_exposed
    )
    t_ep = 0.0 * t_tp
    if model.is_moe:
        dispatch = 1.0 if model.precision == "fp8" else 2.0
        per_token_layer = 2.0 * (dispatch + 2.0) * model.experts_per_token * h
        # of a token's e destinations, 1 is its own chip (no traffic), those of the expert group
        # inside its node (NODE / t replicas there) go over scale-up, the rest over scale-out:
        # with e = 1 every expert is local and there is no all-to-all
        in_node = np.minimum(1.0, (NODE / t) / e)
        off_chip_in_node = in_node - 1.0 / e
        t_ep = (
            token_layers
            * per_token_layer
            * ((1.0 - in_node) / out + off_chip_in_node / up)
            * cal.ep_exposed
        )
    micro = np.maximum(1.0, batch_tokens / d / seq)
    v = np.maximum(1, np.minimum(MAX_INTERLEAVE, layers // p))
    bubble_share = (p - 1) / (v * micro + p - 1)
    busy = t_gemm + t_attn + t_mem + t_tp + t_ep
    t_bubble = busy * bubble_share / (1.0 - bubble_share)

    # gradients are reduced among the replicas of a shard: d of a dense one, d / e of an expert's
    dense_shard, expert_shard, _, ed = state_shards(model, layout)
    ring = dense_shard * (d - 1) / d + expert_shard * (ed - 1) / ed
    volume = 2.0 * ring * 2.0 * np.where(layout.zero == 3, 1.5, 1.0)
    backward = (2.0 / 3.0) * (t_gemm + t_attn + t_mem)
    t_dp = np.maximum(0.0, volume / out - cal.dp_overlap * backward)
    # read/write master weights, moments and grads of the chip's ZeRO shard of the state
    t_opt = 20.0 * (dense_shard / d + expert_shard / ed) / hbm

    model_flops = (6.0 * model.active + 12.0 * layers * h * seq) * batch_tokens / n
    parts = (t_gemm, t_attn, t_mem, t_tp, t_ep, t_bubble, t_dp, t_opt)
    if isinstance(layout, Layout):
        g, a, m, tp, ep, b, dp, o = (float(x) for x in parts)
        return StepTime(g, a, m, tp, ep, b, dp, o, model_flops, peak)
    return StepTime(*parts, model_flops, peak)  # type: ignore[arg-type]


def max_data_parallel(batch_tokens: float, seq_len: int) -> int:
    """Replicas the batch can feed: at least one sequence each."""
    return max(1, math.floor(batch_tokens / seq_len))
