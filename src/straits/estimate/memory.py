"""Memory a training or serving stage needs per chip, and the fewest chips that hold it.

Training in mixed precision with Adam keeps, per parameter: weights in BF16 (2 B) and gradients
in BF16 (2 B), plus FP32 master weights and Adam's two moments (12 B) = 16 B (Rajbhandari et al.
2020, ZeRO, Sec. 3.1). FP8 training keeps the same state (DeepSeek-V3 report, Sec. 3.3).
ZeRO-1 shards the 12 B of optimizer state over the data-parallel replicas; ZeRO-3 shards all
16 B. Tensor and pipeline parallelism split the model; expert parallelism splits the experts
over ``ep`` of the ``dp`` replicas, so an expert shard is held by ``dp / ep`` replicas and ZeRO
shards its state that many ways, not ``dp`` (the whole cluster then holds the whole state).

Activations per token per layer, with FlashAttention (no stored attention scores) and sequence
parallelism: 34·h/t bytes without recomputation, about 2·h/t with full recomputation, and
selective recomputation in between (Korthikanti et al. 2022, "Reducing Activation Recomputation
in Large Transformer Models", Sec. 4). Without fused attention (software before 2023, see
:mod:`straits.estimate.stack`) a layer without recomputation also stores each head's attention
scores: 5·a·T/t more bytes per token (a heads, T the sequence length; ibid., Eq. 2). MoE layers
store the routed copies of each token as well.
With 1F1B pipelining the first stage holds the activations of ``pp`` microbatches.

Serving holds the BF16 weights plus a KV-cache reserve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from straits.catalog import Chip
from straits.estimate.layout import Layout, Shapes
from straits.model.scenario import ModelSpec

GB = 1e9
TRAIN_BYTES_PER_PARAM = 16.0
SERVE_BYTES_PER_PARAM = 2.0
#: share of HBM usable for model state and activations; the rest is the framework's own
#: buffers, communication buckets and fragmentation (PyTorch allocators typically lose 5-15%)
USABLE_FRACTION = 0.85
#: share of serving memory kept for the KV cache and activations
KV_RESERVE = 0.30
ACT_BYTES = {"none": 34.0, "selective": 18.0, "full": 2.0}
#: bytes per token, layer, head and sequence position of stored attention scores, softmax and
#: dropout mask without fused attention (Korthikanti et al. 2022, Eq. 2: 5as/h per unit of sbh)
SCORE_ACT_BYTES = 5.0
#: extra activation bytes per token and layer per routed expert copy (dispatch buffers and the
#: expert MLP input/hidden states), in units of h
MOE_ACT_PER_EXPERT = 6.0


@dataclass(frozen=True)
class MemoryUse:
    weights_gb: float
    grads_gb: float
    optimizer_gb: float
    activations_gb: float

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.grads_gb + self.optimizer_gb + self.activations_gb

    def to_json(self) -> dict[str, float]:
        return {
            "weights_gb": round(self.weights_gb, 2),
            "grads_gb": round(self.grads_gb, 2),
            "optimizer_gb": round(self.optimizer_gb, 2),
            "activations_gb": round(self.activations_gb, 2),
            "total_gb": round(self.total_gb, 2),
        }


def split_params(model: ModelSpec) -> tuple[float, float]:
    """(dense, routed-expert) parameters. The parameters never active for a token are routed
    experts; the active ones are counted as dense (a slight over-count of what every chip
    keeps, on the safe side)."""
    experts = model.params - model.active if model.is_moe else 0.0
    return model.params - experts, experts


def state_shards(model: ModelSpec, layout: Layout | Shapes) -> tuple[Any, Any, Any, Any]:
    """(dense parameters per chip before ZeRO, expert parameters per chip before ZeRO,
    replicas of a dense shard, replicas of an expert shard): tensor and pipeline parallelism
    split both; expert parallelism splits the experts over ``ep`` of the ``dp`` data-parallel
    replicas, so each expert shard is held by ``dp / ep`` of them, not ``dp``. Given
    :class:`Shapes`, arrays."""
    dense, experts = split_params(model)
    model_parallel = layout.tp * layout.pp
    dp = layout.dp
    return dense / model_parallel, experts / (model_parallel * layout.ep), dp, dp // layout.ep


@cache
def _constants(model: ModelSpec) -> tuple[bool, int]:
    return model.is_moe, model.experts_per_token


_ACT = np.array([ACT_BYTES["none"], ACT_BYTES["selective"], ACT_BYTES["full"]])


def training_memory(
    model: ModelSpec, layout: Layout | Shapes, fused_attention: bool = True
) -> MemoryUse:
    """Per-chip memory of ``layout``; given :class:`Shapes`, every field is an array. Without
    ``fused_attention`` a layer stored whole keeps its attention scores too."""
    moe, top_k = _constants(model)
    tp, pp, rc = layout.tp, layout.pp, layout.rc
    dense_shard, expert_shard, dp, edp = state_shards(model, layout)
    zero3 = layout.zero == 3
    # ZeRO shards what is replicated: the dense shard over the dp replicas, an expert shard over
    # the dp / ep replicas that hold it (expert parallelism runs inside the data-parallel ones)
    replicated = dense_shard / np.where(zero3, dp, 1) + expert_shard / np.where(zero3, edp, 1)
    weights = 2.0 * replicated
    grads = 2.0 * replicated
    optimizer = 12.0 * (dense_shard / dp + expert_shard / edp)
    per_token_layer = _ACT[rc] * model.d_model / tp
    if not fused_attention:
        per_token_layer = per_token_layer + np.where(
            rc == 0, SCORE_ACT_BYTES * model.heads * model.seq_len / tp, 0.0
        )
    if moe:
        per_token_layer = per_token_layer + np.where(
            rc == 2, 0.0, MOE_ACT_PER_EXPERT * model.d_model * top_k / tp
        )
    layers = -(-model.layers // pp)
    # 1F1B: the first stage holds pp microbatches of one sequence each
    acts = per_token_layer * model.seq_len * layers * pp
    parts = (weights / GB, grads / GB, optimizer / GB, acts / GB)
    if isinstance(layout, Layout):
        return MemoryUse(*(float(x) for x in parts))
    return MemoryUse(*parts)  # type: ignore[arg-type]


def fits(model: ModelSpec, layout: Layout, chip: Chip, fused_attention: bool = True) -> bool:
    return (
        training_memory(model, layout, fused_attention).total_gb <= chip.memory_gb * USABLE_FRACTION
    )


def training_state_gb(model: ModelSpec) -> float:
    return model.params * TRAIN_BYTES_PER_PARAM / GB


def serving_state_gb(model: ModelSpec) -> float:
    return model.params * SERVE_BYTES_PER_PARAM / GB


def kv_gb(model: ModelSpec, tokens: float) -> float:
    """The BF16 keys and values of ``tokens`` tokens of context: 2 (K and V) x layers x
    kv_heads x head_dim x 2 bytes each."""
    kv_heads = model.kv_heads or model.heads
    return 2.0 * model.layers * kv_heads * model.head_dim * 2.0 * tokens / GB


def min_chips_serving(model: ModelSpec, chip: Chip, context_tokens: float = 0.0) -> int:
    """Chips for one serving replica: weights in the memory left after the KV-cache reserve,
    and room for the KV cache of one request of ``context_tokens`` tokens beside them (a 10^8
    token context needs terabytes, more than the reserve)."""
    usable = chip.memory_gb * USABLE_FRACTION
    weights = serving_state_gb(model)
    reserve = math.ceil(weights / (usable * (1.0 - KV_RESERVE)))
    one_request = math.ceil((weights + kv_gb(model, context_tokens)) / usable)
    return max(1, reserve, one_request)
