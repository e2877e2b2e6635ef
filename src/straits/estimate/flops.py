"""Training compute: FLOPs per token and per stage.

FLOPs per token ~ 6N + 12·L·H·Q·T (Kaplan et al. 2020; PaLM paper, App. B), with N the
(activated, for MoE) non-embedding parameters, L layers, H heads of dimension Q (H·Q = d_model)
and T the sequence length. The second term is the attention score/value work.
"""

from __future__ import annotations

from straits.model.scenario import ModelSpec


def flops_per_token(model: ModelSpec) -> float:
    head_dim = model.d_model / model.heads
    return 6.0 * model.active + 12.0 * model.layers * model.heads * head_dim * model.seq_len


def training_flops(model: ModelSpec, tokens: float) -> float:
    return flops_per_token(model) * tokens


def inference_flops_per_token(model: ModelSpec) -> float:
    """Forward pass only: 2N + 4·L·H·Q·T/2 (mean context of half the sequence)."""
    head_dim = model.d_model / model.heads
    return 2.0 * model.active + 2.0 * model.layers * model.heads * head_dim * model.seq_len
