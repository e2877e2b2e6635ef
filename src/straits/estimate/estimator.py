"""What a stage needs on a chip: FLOPs, the fewest chips, time, cost.

The one entry point is :func:`estimate_training` / :func:`estimate_serving`; the planner and the
CLI both call them, so the figures a person reads are the figures the optimizer used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from straits.catalog import Chip
from straits.errors import EstimateError
from straits.estimate.efficiency import predict_mfu
from straits.estimate.flops import training_flops
from straits.estimate.memory import min_chips_serving, min_chips_training
from straits.model.scenario import ModelSpec

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class Estimate:
    chip: str
    chips: int
    min_chips: int
    fits: bool
    flops: float
    mfu: float
    hours: float
    chip_hours: float
    cost_usd: float | None
    usd_per_chip_hour: float | None
    mfu_components: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def days(self) -> float:
        return self.hours / 24.0

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["days"] = self.days
        out["notes"] = list(self.notes)
        return out


def _range_notes(chip: Chip) -> tuple[str, ...]:
    return tuple(f"{chip.id} {name} is a range in the sources; midpoint used"
                 for name in chip.mid_figures)


def estimate_training(model: ModelSpec, tokens: float, chip: Chip, chips: int | None = None,
                      usd_per_chip_hour: float | None = None) -> Estimate:
    """Estimate a training stage of ``tokens`` tokens on ``chips`` chips (default: the fewest)."""
    if tokens <= 0:
        raise EstimateError("tokens must be positive", path="tokens", expected="a number > 0")
    if chips is not None and chips <= 0:
        raise EstimateError("chips must be positive", path="chips", expected="an integer > 0")
    need = min_chips_training(model, chip)
    n = chips if chips is not None else need
    flops = training_flops(model, tokens)
    eff = predict_mfu(model, chip, n)
    hours = flops / (n * chip.peak_tflops * 1e12 * eff.mfu) / SECONDS_PER_HOUR
    price = usd_per_chip_hour
    if price is None and chip.rent_usd_per_hour is not None:
        price = chip.rent_usd_per_hour.mid
    chip_hours = n * hours
    notes = _range_notes(chip)
    if n < need:
        notes += (f"does not fit: needs at least {need} x {chip.id} "
                  f"({model.params * 16 / 1e9:,.0f} GB of weights, gradients and Adam states), "
                  f"got {n}",)
    return Estimate(
        chip=chip.id, chips=n, min_chips=need, fits=n >= need, flops=flops, mfu=eff.mfu,
        hours=hours, chip_hours=chip_hours,
        cost_usd=None if price is None else chip_hours * price,
        usd_per_chip_hour=price, mfu_components=eff.components, notes=notes,
    )


def estimate_serving(model: ModelSpec, chip: Chip, chips: int, days: float,
                     usd_per_chip_hour: float | None = None) -> Estimate:
    """A serving stage holds ``chips`` chips for ``days`` days."""
    need = min_chips_serving(model, chip)
    hours = days * 24.0
    price = usd_per_chip_hour
    if price is None and chip.rent_usd_per_hour is not None:
        price = chip.rent_usd_per_hour.mid
    notes = _range_notes(chip)
    if chips < need:
        notes += (f"does not fit: one replica needs {need} x {chip.id} "
                  f"({model.params * 2 / 1e9:,.0f} GB of BF16 weights plus KV cache), got {chips}",)
    return Estimate(
        chip=chip.id, chips=chips, min_chips=need, fits=chips >= need, flops=0.0, mfu=0.0,
        hours=hours, chip_hours=chips * hours,
        cost_usd=None if price is None else chips * hours * price,
        usd_per_chip_hour=price, notes=notes,
    )
