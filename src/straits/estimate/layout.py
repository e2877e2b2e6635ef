"""How a training job is laid out on N chips: tensor, pipeline, expert and data parallelism,
ZeRO sharding and activation recomputation.

The estimator tries every layout that divides the cluster and keeps the fastest one whose
memory fits (see :mod:`straits.estimate.memory` and :mod:`straits.estimate.steptime`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

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

    @property
    def rc(self) -> int:
        """Recomputation as a level: 0 none, 1 selective, 2 full."""
        return RC_LEVELS.index(self.recompute)

    def describe(self) -> str:
        parts = [f"TP{self.tp}", f"PP{self.pp}", f"DP{self.dp}"]
        if self.ep > 1:
            parts.append(f"EP{self.ep}")
        parts.append(f"ZeRO-{self.zero}")
        if self.recompute != "none":
            parts.append(f"recompute={self.recompute}")
        return " ".join(parts)


RC_LEVELS: tuple[Recompute, ...] = ("none", "selective", "full")


class Shapes:
    """Many layouts of one cluster as arrays, so that memory and step time are computed for all
    of them at once by the same formulas (numpy broadcasting)."""

    def __init__(self, items: list[Layout]) -> None:
        self.items = items
        self.chips = items[0].chips if items else 0
        self.tp = np.array([x.tp for x in items], dtype=np.int64)
        self.pp = np.array([x.pp for x in items], dtype=np.int64)
        self.ep = np.array([x.ep for x in items], dtype=np.int64)
        self.zero = np.array([x.zero for x in items], dtype=np.int64)
        self.rc = np.array([x.rc for x in items], dtype=np.int64)
        self.dp = self.chips // (self.tp * self.pp)


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
                    for rc in RC_LEVELS:
                        yield Layout(chips, tp, pp, ep, zero, rc)
