"""The training software stack, by the year it dates from: what it can do.

Runs of 2021-2022 (Megatron-LM, DeepSpeed, GPT-NeoX, metaseq before FlashAttention was
adopted) stored each head's ``seq x seq`` attention scores and recomputed every layer in the
backward pass (activation checkpointing was their default: BLOOM, OPT, GLM-130B and MT-NLG
report it, and PaLM's hardware FLOPs utilisation of 57.8% against 46.2% MFU is the 4/3 of full
rematerialisation); from 2023, fused attention kernels (FlashAttention, xFormers; Dao et al.
2022) keep no scores and Megatron's selective recomputation (Korthikanti et al. 2022)
recomputes attention only, so a layout recomputes only what memory requires.
What the years do not capture by mechanism, two fitted trends do: slower kernels per step
(:attr:`~straits.estimate.calibration.Calibration.era_decay`) and more of the run lost between
steps (:attr:`~straits.estimate.calibration.Calibration.era_overhead`).

``software_year`` is an input of the estimate (``straits estimate`` and the Python API), by
default :data:`DEFAULT_YEAR`, a current stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

#: a current stack: FlashAttention-2/3, selective recomputation, overlapped communication
DEFAULT_YEAR = 2025
FIRST_YEAR = 2018
LAST_YEAR = 2035
#: first year with fused attention and selective recomputation in common use
FUSED_FROM = 2023


@dataclass(frozen=True)
class Stack:
    year: int
    fused_attention: bool
    """Attention without stored scores (FlashAttention-style kernels)."""
    recompute: tuple[str, ...]
    """Activation recomputation levels a layout may use: all three from 2023, else full."""

    def describe(self) -> str:
        attn = "fused attention" if self.fused_attention else "unfused attention (scores stored)"
        rc = "recomputation as memory requires" if len(self.recompute) > 1 else "full recomputation"
        return f"{self.year} software: {attn}, {rc}"


@cache
def stack(year: int = DEFAULT_YEAR) -> Stack:
    modern = year >= FUSED_FROM
    return Stack(
        year,
        fused_attention=modern,
        recompute=("none", "selective", "full") if modern else ("full",),
    )
