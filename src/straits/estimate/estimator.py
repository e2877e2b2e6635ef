"""What a stage needs on a chip: FLOPs, the fewest chips, layout, MFU, time, cost.

:func:`estimate_training` and :func:`estimate_serving` are the one entry point: the planner and
the CLI both call them, so the figures a person reads are the figures the optimizer used.
Whole-run chip-hours = step time x steps / goodput / (1 - evaluation share), goodput falling
with the cluster size (interruptions) and the age of the software stack (stalls); the per-step
MFU and the whole-run overheads are reported separately. Training estimates carry a calibrated
central 80% interval (:mod:`.interval`) and can be moved to its high end for planning
(:func:`at_risk`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from typing import Any, Literal

from straits.catalog import Chip, get_chip
from straits.catalog.tpu_slices import TPU_SLICES
from straits.errors import EstimateError
from straits.estimate import checks
from straits.estimate.calibration import (
    DEFAULT,
    Calibration,
    default_global_batch,
    require_shipped,
)
from straits.estimate.efficiency import Efficiency, min_chips, predict
from straits.estimate.energy import Energy, energy
from straits.estimate.flops import training_flops
from straits.estimate.interval import (
    DEFAULT_RISK,
    Interval,
    Risk,
    given_mfu_interval,
    training_interval,
)
from straits.estimate.memory import kv_gb, min_chips_serving, serving_state_gb
from straits.estimate.misfit import misfit
from straits.estimate.nearest import uncalibrated_note
from straits.estimate.rounding import figure
from straits.estimate.serving import (
    ServingPlan,
    largest_slice_short,
    replica_size,
    serving_plan,
)
from straits.estimate.stack import DEFAULT_YEAR, FIRST_YEAR, LAST_YEAR
from straits.estimate.steptime import StepTime
from straits.model.scenario import ModelSpec
from straits.model.types import MIN_MFU

SECONDS_PER_HOUR = 3600.0
EfficiencyBasis = Literal["predicted", "given"]


@dataclass(frozen=True)
class Estimate:
    kind: str
    chip: str
    chips: int
    min_chips: int
    fits: bool
    flops: float
    mfu: float
    hours: float
    """wall-clock hours of the whole run (overheads included)"""
    chip_hours: float
    cost_usd: float | None
    usd_per_chip_hour: float | None
    layout: str = ""
    batch_tokens: float = 0.0
    step_seconds: float = 0.0
    memory_gb: dict[str, float] = field(default_factory=dict)
    factors: dict[str, float] = field(default_factory=dict)
    step: StepTime | None = None
    overheads: dict[str, float] = field(default_factory=dict)
    serving: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    software_year: int = DEFAULT_YEAR
    low_factor: float = 1.0
    """chip-hours (and hours, cost) at the low end of the interval, over the central figure"""
    high_factor: float = 1.0
    interval: Interval | None = None
    """the calibrated interval the factors come from (None: no claim, e.g. a serving stage)"""
    risk: Risk = DEFAULT_RISK
    """``p90``: the central figures are the interval's high end (see :func:`at_risk`)"""
    efficiency_basis: EfficiencyBasis = "predicted"
    """``given``: the step time comes from a measured MFU the request gave, not the model's"""
    predicted_mfu: float = 0.0
    """the per-step MFU the model predicts (shown beside a given one; equal to ``mfu`` else)"""

    @property
    def days(self) -> float:
        return self.hours / 24.0

    @property
    def chip_hours_low(self) -> float:
        return self.chip_hours * self.low_factor

    @property
    def chip_hours_high(self) -> float:
        return self.chip_hours * self.high_factor

    @property
    def hours_low(self) -> float:
        return self.hours * self.low_factor

    @property
    def hours_high(self) -> float:
        return self.hours * self.high_factor

    def _cost(self, factor: float) -> float | None:
        return None if self.cost_usd is None else self.cost_usd * factor

    @property
    def mfu_components(self) -> dict[str, Any]:
        """The kernel-rate factors and the shares of the step time."""
        if self.step is None:
            return {}
        return {"factors": self.factors, "step_shares": self.step.shares()}

    def energy(
        self,
        chip: Chip,
        *,
        pue: float | None = None,
        gco2_per_kwh: float | None = None,
        country: str | None = None,
    ) -> Energy | None:
        return energy(
            chip, self.chip_hours, self.kind, pue=pue, gco2_per_kwh=gco2_per_kwh, country=country
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "chip": self.chip,
            "chips": self.chips,
            "min_chips": self.min_chips,
            "fits": self.fits,
            "flops": self.flops,
            "mfu": figure(self.mfu, 4),
            "hours": self.hours,
            "days": self.days,
            "chip_hours": self.chip_hours,
            "cost_usd": self.cost_usd,
            "chip_hours_low": self.chip_hours_low,
            "chip_hours_high": self.chip_hours_high,
            "days_low": self.hours_low / 24.0,
            "days_high": self.hours_high / 24.0,
            "cost_usd_low": self._cost(self.low_factor),
            "cost_usd_high": self._cost(self.high_factor),
            "interval": self.interval.to_json() if self.interval is not None else None,
            "risk": self.risk,
            "usd_per_chip_hour": self.usd_per_chip_hour,
            "layout": self.layout,
            "global_batch_tokens": self.batch_tokens,
            "step_seconds": figure(self.step_seconds, 4),
            "memory_per_chip_gb": self.memory_gb,
            "mfu_components": self.mfu_components,
            "overheads": self.overheads,
            "notes": list(self.notes),
        }
        if self.kind == "train":
            out["software_year"] = self.software_year
            out["efficiency"] = {
                "basis": self.efficiency_basis,
                "mfu": figure(self.mfu, 4),
                "predicted_mfu": figure(self.predicted_mfu, 4),
            }
        else:  # every serving answer has the key: the replicas of a target, else null
            out["serving"] = self.serving or None
        return out


def at_risk(est: Estimate, risk: Risk) -> Estimate:
    """``est`` with its central figures moved to where a plan at ``risk`` budgets: the
    interval's high end for ``p90`` (the low and high ends themselves stay where they are)."""
    if risk == est.risk or est.interval is None:
        return est
    f = est.interval.factor(risk) / est.interval.factor(est.risk)
    return replace(
        est,
        hours=est.hours * f,
        chip_hours=est.chip_hours * f,
        cost_usd=None if est.cost_usd is None else est.cost_usd * f,
        low_factor=est.low_factor / f,
        high_factor=est.high_factor / f,
        risk=risk,
    )


def _price(chip: Chip, usd_per_chip_hour: float | None) -> float | None:
    if usd_per_chip_hour is not None:
        return usd_per_chip_hour
    return chip.rent_usd_per_hour.mid if chip.rent_usd_per_hour is not None else None


@cache
def _range_notes(chip_id: str) -> tuple[str, ...]:
    chip = get_chip(chip_id)
    return tuple(
        f"{chip.id} {name} is a range in the sources; midpoint used" for name in chip.mid_figures
    )


def estimate_training(
    model: ModelSpec,
    tokens: float,
    chip: Chip,
    chips: int | None = None,
    usd_per_chip_hour: float | None = None,
    *,
    cal: Calibration = DEFAULT,
    software_year: int = DEFAULT_YEAR,
    risk: Risk = DEFAULT_RISK,
    mfu: float | None = None,
) -> Estimate:
    """Estimate a training stage of ``tokens`` tokens on ``chips`` chips (default: the fewest
    that fit; :func:`~straits.estimate.typical.typical_chips` gives the size people use) with
    the software stack of ``software_year``; ``risk='p90'`` puts the central figures at the
    interval's high end.

    ``mfu``, a per-step model FLOPs utilization the user measured on their stack (0.01-1),
    replaces the predicted one: the step time is the model FLOPs of a step at that share of the
    chips' peak; the layout, memory, interruptions and evaluation stay as modelled, and the
    interval narrows to what a known efficiency leaves (:func:`given_mfu_interval`)."""
    if tokens <= 0:
        raise EstimateError("tokens must be positive", path="tokens", expected="a number > 0")
    if chips is not None and chips <= 0:
        raise EstimateError("chips must be positive", path="chips", expected="an integer > 0")
    require_shipped(cal)
    checks.finite(model, tokens=tokens)
    checks.price(usd_per_chip_hour)
    if not FIRST_YEAR <= software_year <= LAST_YEAR:
        raise EstimateError(
            f"software_year {software_year} is out of range",
            path="software_year",
            expected=f"a year {FIRST_YEAR}-{LAST_YEAR}",
        )
    if mfu is not None and not (math.isfinite(mfu) and MIN_MFU <= mfu <= 1.0):
        raise EstimateError(
            f"mfu {mfu!r} is not a utilization",
            path="mfu",
            expected=f"a measured per-step MFU, {MIN_MFU} to 1 (0.4 for 40%)",
        )
    est = _priced(
        model,
        float(tokens),
        chip.id,
        chips,
        cal,
        _price(chip, usd_per_chip_hour),
        software_year,
        None if mfu is None else float(mfu),
    )
    return at_risk(est, risk)


@lru_cache(maxsize=131072)
def _priced(
    model: ModelSpec,
    tokens: float,
    chip_id: str,
    chips: int | None,
    cal: Calibration,
    price: float | None,
    year: int,
    mfu: float | None = None,
) -> Estimate:
    est = _training(model, tokens, chip_id, chips, cal, year, mfu)
    if price == est.usd_per_chip_hour:
        return est
    return replace(
        est, usd_per_chip_hour=price, cost_usd=None if price is None else est.chip_hours * price
    )


@dataclass(frozen=True)
class _Core:
    """What does not depend on the number of tokens: the layout, step time, memory."""

    need: int
    eff: Efficiency
    notes: tuple[str, ...]
    factors: dict[str, float]
    memory: dict[str, float]
    layout: str
    price: float | None


@lru_cache(maxsize=65536)
def _core(
    model: ModelSpec, chip_id: str, chips: int | None, batch: float, cal: Calibration, year: int
) -> _Core:
    chip = get_chip(chip_id)
    need = min_chips(model, chip, batch, cal, year)
    n = chips if chips is not None else need
    eff = predict(model, chip, n, batch, cal, year)
    if eff.fits and n < need:  # a count the grid of sizes skips (11 chips where it tries 8, 16)
        need = n
    notes = _range_notes(chip.id)
    if not eff.fits:
        notes += (misfit(model, chip, n, need, eff, batch, cal, year),)
    if batch < model.seq_len:
        notes += (
            f"a global batch of {batch:,.0f} tokens is less than one {model.seq_len:,}-token "
            "sequence: each step is that many tokens, with a whole sequence's activations",
        )
    if model.precision == "fp8" and not chip.peak_fp8_tflops:
        notes += (f"{chip.id} has no FP8 matrix units: `precision: fp8` estimated at BF16",)
    notes += _dense_top_k(model)
    if model.params < SMALLEST_CALIBRATED:
        notes += (
            f"{model.params:.2g} parameters is below the smallest published runs the "
            f"estimator was calibrated on (1B); treat the figures as a rough guide",
        )
    return _Core(
        need,
        eff,
        notes,
        eff.factors(model, chip, cal, year),
        eff.memory.to_json(),
        eff.layout.describe(),
        _price(chip, None),
    )


def _dense_top_k(model: ModelSpec) -> tuple[str, ...]:
    """A ``top_k`` on a model whose active parameters are all of them: estimated dense, with
    every parameter active (a mixture of experts given without ``active_params`` would be
    costed at several times its compute, silently)."""
    if model.top_k is None or model.is_moe:
        return ()
    return (
        f"`top_k: {model.top_k}` is set but `active_params` is not below `params`: estimated as "
        "a dense model with every parameter active (give `active_params` for a mixture of experts)",
    )


#: the smallest models among the published runs (Pythia 1B, TinyLlama 1.1B)
SMALLEST_CALIBRATED = 1e9


def run_hours(
    step_seconds: float,
    tokens: float,
    batch: float,
    chips: int,
    cal: Calibration,
    year: int = DEFAULT_YEAR,
) -> tuple[float, float]:
    """(wall-clock hours of the steps alone, of the whole run): steps x step time, then
    interruptions and stalls of a stack of ``year`` (goodput) and evaluation."""
    step_hours = tokens / batch * step_seconds / SECONDS_PER_HOUR
    return step_hours, step_hours / cal.goodput(chips, year) / (1.0 - cal.evaluation)


@lru_cache(maxsize=65536)
def _training(
    model: ModelSpec,
    tokens: float,
    chip_id: str,
    chips: int | None,
    cal: Calibration,
    year: int,
    mfu: float | None = None,
) -> Estimate:
    batch = model.global_batch_tokens or default_global_batch(tokens, model.seq_len)
    core = _core(model, chip_id, chips, batch, cal, year)
    eff = core.eff
    n = eff.layout.chips
    step_seconds = eff.step.total
    if mfu is not None:  # the measured efficiency: model FLOPs of a step at mfu x peak
        step_seconds = eff.step.model_flops / (eff.step.peak_flops * mfu)
    step_hours, hours = run_hours(step_seconds, tokens, batch, n, cal, year)
    price = core.price
    overheads = {
        "goodput": round(cal.goodput(n, year), 4),
        "unstalled": round(cal.unstalled(year), 4),
        "evaluation": cal.evaluation,
        "interruptions": round(cal.failure_rate * n * hours, 1),
        "step_chip_hours": n * step_hours,
        "overhead_chip_hours": n * (hours - step_hours),
    }
    iv = training_interval() if mfu is None else given_mfu_interval()
    given = mfu is not None
    return Estimate(
        kind="train",
        chip=chip_id,
        chips=n,
        min_chips=core.need,
        fits=eff.fits,
        flops=training_flops(model, tokens),
        mfu=eff.mfu if mfu is None else mfu,
        hours=hours,
        chip_hours=n * hours,
        cost_usd=None if price is None else n * hours * price,
        usd_per_chip_hour=price,
        layout=core.layout,
        batch_tokens=batch,
        step_seconds=step_seconds,
        memory_gb=core.memory,
        # a given MFU replaces the kernel factors and the step breakdown the model predicts
        factors={} if given else core.factors,
        step=None if given else eff.step,
        overheads=overheads,
        notes=core.notes + (() if given else uncalibrated_note(chip_id)),
        software_year=year,
        low_factor=iv.low_factor,
        high_factor=iv.high_factor,
        interval=iv,
        efficiency_basis="given" if given else "predicted",
        predicted_mfu=eff.mfu,
    )


def _replica_shape(chip: Chip) -> str:
    return "a whole slice" if chip.id in TPU_SLICES else "a power-of-two tensor-parallel group"


def estimate_serving(
    model: ModelSpec,
    chip: Chip,
    chips: int | None,
    days: float,
    usd_per_chip_hour: float | None = None,
    *,
    tokens_per_s: float | None = None,
    prompt_tokens: int = 1024,
    output_tokens: int = 256,
    cal: Calibration = DEFAULT,
) -> Estimate:
    """A serving stage holds ``chips`` chips for ``days`` days; without ``chips``, enough
    replicas for ``tokens_per_s`` output tokens per second."""
    require_shipped(cal)
    checks.finite(model, days=days, tokens_per_s=tokens_per_s)
    checks.positive("chips", chips, "an integer")
    checks.positive("days", days, "a serving period in days")
    checks.positive("tokens_per_s", tokens_per_s, "output tokens per second")
    checks.positive("prompt_tokens", prompt_tokens, "a token count")
    checks.positive("output_tokens", output_tokens, "a token count")
    checks.price(usd_per_chip_hour)
    context = prompt_tokens + output_tokens
    need = replica_size(model, chip, context)  # the replica its throughput is for, not less
    plan: ServingPlan | None = None
    if tokens_per_s is not None:
        plan = serving_plan(model, chip, tokens_per_s, prompt_tokens, output_tokens, cal)
    if chips is None:
        if plan is None:
            raise EstimateError(
                "a serving estimate needs `chips` or `tokens_per_s`",
                expected="chips > 0 or tokens_per_s > 0",
            )
        chips = plan.chips
    hours = days * 24.0
    price = _price(chip, usd_per_chip_hour)
    notes = _range_notes(chip.id) + _dense_top_k(model)
    short = largest_slice_short(chip, need)  # a TPU replica larger than any slice
    if chips < need or short is not None:
        notes += (
            f"does not fit: one replica needs {need} x {chip.id} "
            f"({serving_state_gb(model):,.0f} GB of BF16 weights plus KV cache, "
            f"{kv_gb(model, context):,.1f} GB for one request of {context:,} tokens, "
            f"on {min_chips_serving(model, chip, context)} chips at least, a replica being "
            f"{_replica_shape(chip)}), "
            + (f"got {chips}" if short is None else f"more than the largest slice ({short} chips)"),
        )
    elif plan is not None and chips < plan.chips:
        held = plan.held(chips)
        holds = (
            f"hold {held:,} replica(s) of {plan.replica_chips} and serve about "
            f"{plan.served(chips):,.0f}"
            if held
            else f"hold no whole replica of {plan.replica_chips} (the size its throughput is "
            "estimated at) and serve none"
        )
        notes += (
            f"below the target: {chips:,} x {chip.id} {holds} of the {tokens_per_s:,.0f} "
            f"output tokens/s asked for, which need {plan.chips:,} ({plan.replicas:,} "
            f"replicas of {plan.replica_chips})",
        )
    return Estimate(
        kind="serve",
        chip=chip.id,
        chips=chips,
        min_chips=need,
        fits=chips >= need and short is None,
        flops=0.0,
        mfu=0.0,
        hours=hours,
        chip_hours=chips * hours,
        cost_usd=None if price is None else chips * hours * price,
        usd_per_chip_hour=price,
        serving=plan.to_json() if plan else {},
        notes=notes,
    )
