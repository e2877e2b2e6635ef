"""How a training job is laid out on N chips: tensor, pipeline, expert and data parallelism,
ZeRO sharding and activation recomputation.

The estimator tries every layout that divides the cluster and keeps the fastest one whose
memory fits (see :mod:`straits.estimate.memory` and :mod:`straits.estimate.steptime`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from straits.model.scenario import ModelSpec

Recompute = Literal["none", "selective", "full"]
NODE = 8
"""Chips per scale-up domain (an HGX / Ascend server): tensor parallelism stays inside it."""

TP_DEGREES = (1, 2, 4, 8)
PP_DEGREES = (1, 2, 4, 8, 16, 32, 64)
EP_DEGREES = (1, 2, 4, 8, 16, 32, 64, 128)


@dataclass(frozen=True)
class Layout:
    chips: int
    tp: int = 1
    pp: int = 1
    ep: int = 1
    zero: Literal[1, 3] = 1
    recompute: Recompute = "none"

    @property
    def dp(self) -> int:
        """Data-parallel replicas (expert parallelism runs inside them)."""
        return self.chips // (self.tp * self.pp)

    def describe(self) -> str:
        parts = [f"TP{self.tp}", f"PP{self.pp}", f"DP{self.dp}"]
        if self.ep > 1:
            parts.append(f"EP{self.ep}")
        parts.append(f"ZeRO-{self.zero}")
        if self.recompute != "none":
            parts.append(f"recompute={self.recompute}")
        return " ".join(parts)


def layouts(model: ModelSpec, chips: int) -> Iterator[Layout]:
    """Every layout of ``model`` on ``chips`` chips worth trying."""
    for tp in TP_DEGREES:
        if tp > min(NODE, chips) or model.heads % tp:
            continue
        for pp in PP_DEGREES:
            if pp > model.layers or chips % (tp * pp):
                continue
            dp = chips // (tp * pp)
            eps = [e for e in EP_DEGREES if dp % e == 0] if model.is_moe else [1]
            for ep in eps:
                for zero in (1, 3):
                    for rc in ("none", "selective", "full"):
                        yield Layout(chips, tp, pp, ep, zero, rc)
