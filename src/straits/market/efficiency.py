"""How much work a chip-hour of each chip does, by kind, from Straits' estimator.

Work is counted in H100-equivalent hours (h100e-hours): the chip-hours the estimator says an
H100-SXM needs. A chip's *efficiency* for a kind is H100 chip-hours / its own chip-hours for the
same work: the training kinds are sized with :func:`estimate_training` on the market's training
model, the serving kinds with :func:`estimate_serving` at its tokens-per-second target. So the
H20's strength at serving and weakness at training, or the Ascend's lower MFU, come from the same
model of chips the planner uses.
"""

from __future__ import annotations

from functools import lru_cache

from straits.catalog import get_chip
from straits.errors import StraitsError
from straits.estimate import estimate_serving, estimate_training
from straits.market.loading import MarketError
from straits.market.params import KINDS, TRAINING_KINDS, ModelTemplate

REFERENCE_CHIP = "H100-SXM"
#: tokens of the reference training run (chip-hours scale linearly with tokens; only ratios count)
REFERENCE_TOKENS = 1e12
REFERENCE_DAYS = 30.0


@lru_cache(maxsize=1024)
def chip_hours(template: ModelTemplate, kind: str, chip_id: str) -> float:
    """Chip-hours of the reference work of ``kind`` on ``chip_id``."""
    return _sized(template, kind, chip_id)[0]


@lru_cache(maxsize=1024)
def _sized(template: ModelTemplate, kind: str, chip_id: str) -> tuple[float, bool]:
    """Chip-hours of the reference work and whether the estimator says it fits a cluster."""
    chip = get_chip(chip_id)
    spec = template.spec()
    try:
        if kind == "train":
            est = estimate_training(spec, REFERENCE_TOKENS, chip)
        else:
            est = estimate_serving(
                spec, chip, None, REFERENCE_DAYS, tokens_per_s=template.serve_tokens_per_s
            )
    except StraitsError as exc:
        raise MarketError(
            f"the estimator cannot size the market's {kind} model on {chip_id}: {exc}",
            path=f"models.{kind}",
        ) from None
    if not est.chip_hours > 0:
        raise MarketError(
            f"the estimator gives no chip-hours for {kind} on {chip_id}", path=f"models.{kind}"
        )
    return est.chip_hours, bool(est.fits)


def unfit_notes(models: dict[str, ModelTemplate], chips: list[str]) -> list[str]:
    """One note per model and chip the estimator says fits no cluster: its efficiency there is
    still the estimator's figure (the fewest chips that could hold it), an extrapolation."""
    notes = []
    for family in ("train", "serve"):
        bad = [c for c in chips if not _sized(models[family], family, c)[1]]
        if bad:
            notes.append(
                f"the market's {family} model (models.{family}) fits no cluster of "
                + ", ".join(bad)
                + ": its work per chip-hour there is extrapolated by the estimator"
            )
    return notes


def efficiency(models: dict[str, ModelTemplate], chips: list[str]) -> dict[str, dict[str, float]]:
    """``eff[kind][chip]``: h100e-hours of work per chip-hour of ``chip``."""
    out: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        family = "train" if kind in TRAINING_KINDS else "serve"
        t = models[family]
        ref = chip_hours(t, family, REFERENCE_CHIP)
        out[kind] = {c: ref / chip_hours(t, family, c) for c in chips}
    return out
