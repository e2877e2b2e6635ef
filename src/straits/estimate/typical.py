"""The cluster size people actually use for a training run, when a request does not say.

Published runs are not run on the fewest chips that hold the model: they are sized so the run
ends in weeks, larger runs taking somewhat longer. ``benchmarks/fit_estimator.py`` fits
log(days) = a + b x log(chip-hours) on the ``fit`` runs that published their cluster size;
the typical cluster is the smallest size (on the grid of
:func:`~straits.estimate.efficiency.cluster_sizes`) whose estimated run is no longer than that.
Bigger clusters run at a lower MFU, which is one of the things real runs lose.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache

from straits.catalog import Chip, get_chip
from straits.errors import CatalogError
from straits.estimate.calibration import DEFAULT, Calibration, fitted_document
from straits.estimate.efficiency import cluster_sizes
from straits.estimate.estimator import Estimate, estimate_training
from straits.estimate.stack import DEFAULT_YEAR
from straits.model.scenario import ModelSpec

#: the largest cluster the typical size may reach
MAX_TYPICAL_CHIPS = 65536


@dataclass(frozen=True)
class TypicalDays:
    a: float
    b: float
    runs: int
    """how many published runs the line was fitted on"""

    def days(self, chip_hours: float) -> float:
        return math.exp(self.a + self.b * math.log(max(chip_hours, 1.0)))

    def to_json(self) -> dict[str, float | int]:
        return {"a": round(self.a, 6), "b": round(self.b, 6), "runs": self.runs}


#: before any fit (never in a release): a month, whatever the size
UNFITTED = TypicalDays(math.log(30.0), 0.0, 0)


@cache
def shipped_typical_days() -> TypicalDays:
    try:
        doc = fitted_document().get("typical_days")
    except CatalogError:  # damaged fitted.yaml: the estimate itself refuses (require_shipped)
        return UNFITTED
    if not isinstance(doc, dict):
        return UNFITTED
    return TypicalDays(float(doc["a"]), float(doc["b"]), int(doc["runs"]))


def fit_typical_days(points: list[tuple[float, float]]) -> TypicalDays:
    """Least squares of log(days) on log(chip-hours) over (chip_hours, days) points."""
    if len(points) < 2:
        return UNFITTED
    xs = [math.log(c) for c, _ in points]
    ys = [math.log(d) for _, d in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = 0.0 if sxx == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return TypicalDays(my - b * mx, b, len(points))


def typical_chips(
    model: ModelSpec,
    tokens: float,
    chip: Chip,
    *,
    cal: Calibration = DEFAULT,
    software_year: int = DEFAULT_YEAR,
    typical: TypicalDays | None = None,
) -> int:
    """The smallest cluster (no fewer than fit the model) on which the run takes no longer
    than published runs of its size typically took."""
    return _typical(
        model, float(tokens), chip.id, cal, software_year, typical or shipped_typical_days()
    )


@lru_cache(maxsize=16384)
def _typical(
    model: ModelSpec, tokens: float, chip_id: str, cal: Calibration, year: int, typical: TypicalDays
) -> int:
    chip = get_chip(chip_id)

    def run(n: int) -> Estimate:
        return estimate_training(model, tokens, chip, n, cal=cal, software_year=year)

    def short_enough(n: int) -> bool:
        est = run(n)
        return est.fits and est.days <= typical.days(est.chip_hours)

    fewest = estimate_training(model, tokens, chip, None, cal=cal, software_year=year).min_chips
    sizes = [n for n in cluster_sizes(fewest) if n <= MAX_TYPICAL_CHIPS] or [fewest]
    # in order, not by bisection: a size the batch cannot feed (too many replicas, or none that
    # divides it) can sit between sizes that are short enough, so whether a size is short enough
    # is not monotone in the size, and a bisection could skip the smallest (it answered 3,232
    # H100s for a 16B model whose run is short enough on 1,248)
    found = next((n for n in sizes if short_enough(n)), None)
    if found is not None:
        return found
    # none is short enough: the largest if it fits, else the fastest that fits
    return sizes[-1] if run(sizes[-1]).fits else _fastest_fitting(sizes, run)


def _fastest_fitting(sizes: list[int], run: Callable[[int], Estimate]) -> int:
    """The size with the shortest run among those on which the model fits (the batch feeds
    only so many replicas: beyond them no size fits); the first size when none does."""
    fitting = [n for n in sizes if run(n).fits]
    return min(fitting, key=lambda n: (run(n).days, n)) if fitting else sizes[0]
