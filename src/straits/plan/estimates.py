"""The estimator's answers, shared by every stage of a portfolio.

A portfolio's stages ask the estimator the same questions over and over: every workload of a
model shape trains on some chips at the same counts, and each stage's table asks for every
(chip, count) of its pools. The estimator is a pure function of its arguments, so
:class:`EstimateMemo` keeps each answer under the call's own arguments, all of them, whatever
they are (an argument added to the call is in the key the day it is added): a memo at the call
site, which leaves :mod:`straits.estimate` as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from straits.catalog import Chip
from straits.estimate import Estimate, estimate_serving, estimate_training


class EstimateMemo:
    """:func:`~straits.estimate.estimate_training` and
    :func:`~straits.estimate.estimate_serving`, each answer computed once per distinct call."""

    def __init__(self) -> None:
        self._by_chip: dict[int, tuple[Chip, dict[Hashable, Estimate]]] = {}
        """id of a chip -> (the chip, kept alive so its id stays its own; its answers)"""
        self.calls = 0
        self.computed = 0

    def _call(self, fn: Callable[..., Estimate], chip: Chip, at: int, args: tuple[Any, ...],
              kw: dict[str, Any]) -> Estimate:
        """``fn(*args, **kw)`` with ``chip`` inserted as positional argument ``at``."""
        self.calls += 1
        entry = self._by_chip.get(id(chip))
        if entry is None:
            entry = self._by_chip[id(chip)] = (chip, {})
        key = (fn, args, tuple(sorted(kw.items())))
        hit = entry[1].get(key)
        if hit is None:
            self.computed += 1
            hit = entry[1][key] = fn(*args[:at], chip, *args[at:], **kw)
        return hit

    def training(self, model: Any, tokens: float, chip: Chip, *args: Any, **kw: Any
                 ) -> Estimate:
        """:func:`~straits.estimate.estimate_training` (``chip`` is its third argument)."""
        return self._call(estimate_training, chip, 2, (model, tokens, *args), kw)

    def serving(self, model: Any, chip: Chip, *args: Any, **kw: Any) -> Estimate:
        """:func:`~straits.estimate.estimate_serving` (``chip`` is its second argument)."""
        return self._call(estimate_serving, chip, 1, (model, *args), kw)

