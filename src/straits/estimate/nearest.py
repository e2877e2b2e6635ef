"""The published runs nearest to a request, with the estimator's error on each: why to trust or
doubt a number.

Nearness is a distance over what drives efficiency: the decades between active parameter
counts (weight 1) and between token counts (0.5), a different chip (0.3 within a chip family,
0.8 across families), and dense against mixture-of-experts (0.5). Only chip-hour runs are
candidates (not per-step MFU figures); ``scope`` says what a run's figure counts, and
``fitted`` whether the parameters were fitted on it (a ``fit`` run of a scope the estimator
does not model, a distillation, was not). The errors are those recorded by
``benchmarks/fit_estimator.py`` in ``fitted.yaml`` (the shipped parameters' prediction of each
run), so showing them costs nothing at request time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from straits.catalog import Chip, get_chip
from straits.errors import CatalogError
from straits.estimate.calibration import FITTED_FAMILIES, fitted_document
from straits.estimate.runs import PublishedRun, published_runs
from straits.model.scenario import ModelSpec

NEAREST = 3


@dataclass(frozen=True)
class Neighbour:
    run: PublishedRun
    distance: float
    predicted: float | None
    error: float | None
    """predicted / published - 1 with the shipped parameters (None: not recorded)"""

    def to_json(self) -> dict[str, Any]:
        r = self.run
        return {
            "run": r.id,
            "name": r.name,
            "chip": r.chip,
            "chips": r.chips,
            "tokens": r.tokens,
            "published_chip_hours": r.value,
            "predicted_chip_hours": self.predicted,
            "error": self.error,
            "used_for": r.used_for,
            "fitted": r.used_for == "fit" and r.fittable,
            "scope": r.scope,
            "source": r.source,
            "confidence": r.confidence,
        }


def distance(model: ModelSpec, tokens: float, chip: Chip, run: PublishedRun) -> float:
    other = get_chip(run.chip)
    d = abs(math.log10(model.active / run.model.active))
    d += 0.5 * abs(math.log10(tokens / run.tokens))
    if other.id != chip.id:
        d += 0.3 if other.family == chip.family else 0.8
    if model.is_moe != run.model.is_moe:
        d += 0.5
    return d


def nearest_runs(model: ModelSpec, tokens: float, chip: Chip, k: int = NEAREST) -> list[Neighbour]:
    try:
        recorded = fitted_document().get("runs", {})
    except CatalogError:
        recorded = {}  # a damaged fitted.yaml: show the runs without the errors
    scored = sorted(
        (
            (distance(model, tokens, chip, r), r.id, r)
            for r in published_runs()
            if r.metric == "chip_hours"
        ),
        key=lambda x: (x[0], x[1]),
    )
    out = []
    for d, _, r in scored[:k]:
        row = recorded.get(r.id, {}) if isinstance(recorded, dict) else {}
        pred = row.get("predicted")
        err = row.get("error")
        out.append(
            Neighbour(
                r,
                round(d, 3),
                None if pred is None else float(pred),
                None if err is None else float(err),
            )
        )
    return out


@cache
def uncalibrated_note(chip_id: str) -> tuple[str, ...]:
    """A note for a chip whose family has no framework factor of its own (too few ``fit``
    runs on it): its efficiency borrows the fitted families' and the 80% interval was
    measured on runs of other chips, which the figures alone do not say (est49)."""
    chip = get_chip(chip_id)
    if chip.family in FITTED_FAMILIES:
        return ()
    own = sum(
        1
        for r in published_runs()
        if r.used_for == "fit"
        and r.metric == "chip_hours"
        and get_chip(r.chip).family == chip.family
    )
    runs = "no" if own == 0 else f"only {own}"
    return (
        f"{runs} published chip-hour run{'' if own == 1 else 's'} of the {chip.family} family "
        f"({chip.id}) fitted: its kernel efficiency borrows the A100 and H100 families' fitted "
        "framework factor (their geometric mean), and the 80% interval was measured on runs "
        "of other chips; give a measured `mfu` where you have one",
    )
