"""The estimator's parameters, each with where its value came from.

Straits predicts step time from mechanisms (compute at an achievable fraction of peak,
memory-bound kernels at the HBM bandwidth, tensor-parallel all-reduces over the scale-up link,
MoE all-to-all and data-parallel gradient reduction over the scale-out network, the pipeline
bubble) and whole-run time from the step time, interruptions and evaluation. The parameters
below are the numbers those mechanisms cannot derive from a chip's datasheet. Values marked
*fitted* are written by ``benchmarks/fit_estimator.py`` into ``fitted.yaml`` from the ``fit``
runs of ``runs.yaml`` and nothing else; the others come from first principles or published
measurements, as stated. ``benchmarks/estimator_calibration.py`` judges the result on the
``check`` runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from functools import cache, lru_cache
from importlib import resources
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from straits.errors import CatalogError, InputError
from straits.estimate.stack import DEFAULT_YEAR

#: Achievable fraction of the dense BF16 peak on large matrix multiplications, per chip family
#: (first principles / typical vendor-library results, confidence M): Ampere libraries reach
#: ~85% of 312 TFLOP/s; Hopper ~75-80% of 989; MI300X and early Blackwell software less; Ascend
#: and TPU set between. The fitted framework factors below multiply them.
GEMM_FRACTION: dict[str, float] = {
    "ampere": 0.85,
    "hopper": 0.78,
    "blackwell": 0.70,
    "cdna3": 0.55,
    "davinci": 0.65,
    "tpu": 0.80,
}
DEFAULT_GEMM_FRACTION = 0.70
#: chip families with a framework factor of their own (enough `fit` runs); the others use
#: :attr:`Calibration.framework`, the geometric mean of these
FITTED_FAMILIES = ("ampere", "hopper")

#: Llama 3 paper, Sec. 3.3.4: 419 unexpected interruptions in a 54-day snapshot of pre-training
#: on 16,384 H100s (confidence V; the rate per chip-hour is derived, D)
LLAMA3_INTERRUPTIONS = 419
LLAMA3_SNAPSHOT_CHIP_HOURS = 54 * 24 * 16384
LLAMA3_PLANNED = 47

FITTED_FILE = "fitted.yaml"
#: the peak (A100, BF16 dense) at which :attr:`Calibration.gemm_width` is stated
REFERENCE_PEAK_TFLOPS = 312.0


@dataclass(frozen=True)
class Calibration:
    framework_by_family: tuple[tuple[str, float], ...] = (("ampere", 0.68), ("hopper", 0.68))
    """*fitted*: end-to-end efficiency of the compute kernels relative to a GEMM microbenchmark
    (kernel launches, small GEMMs, optimizer, data loading, stragglers, imperfect tuning), per
    chip family with enough published runs."""

    framework: float = 0.68
    """The framework factor of the other families: the geometric mean of the fitted ones."""

    era_decay: float = 0.0
    """*fitted*: kernel efficiency lost per year the software stack is older than
    :data:`~straits.estimate.stack.DEFAULT_YEAR` (beyond what fused attention and selective
    recomputation explain), as a rate: factor exp(-era_decay x years)."""

    gemm_width: float = 0.0
    """*fitted*: the model width (d_model) at which a 312-TFLOP/s chip's matrix multiplications
    reach half their large-matrix efficiency; a chip with more peak needs proportionally wider
    matrices to fill its cores (the width scales with peak / 312 TFLOP/s). The GEMM rate is
    multiplied by h / (h + width): narrow models lose more, and more on bigger chips."""

    lost_hours: float = 0.1 * 54 * 24 / (LLAMA3_INTERRUPTIONS + LLAMA3_PLANNED)
    """Wall-clock hours lost per interruption (restart, reload, recomputing the work since the
    last checkpoint): Llama 3 reports more than 90% effective training time over the same 54
    days, with 466 interruptions (419 unexpected, 47 planned); all of the other 10% put on
    interruptions gives 0.28 h each (derived, D; an upper bound)."""

    moe_gemm: float = 0.80
    """*fitted*: grouped expert GEMMs, smaller and unevenly loaded, run at this fraction of the
    dense efficiency."""

    ep_exposed: float = 0.50
    """Share of MoE all-to-all time not hidden behind computation (DeepSeek-V3's DualPipe hides
    nearly all of it; plain schedules hide little; confidence M)."""

    attention: float = 0.70
    """FlashAttention-2 reaches 50-73% of A100 peak forward+backward against ~85% for GEMMs
    (Dao 2023, Sec. 4.1): attention runs at ~0.7 of GEMM efficiency."""

    fp8: float = 0.65
    """FP8 GEMMs reach this fraction of the BF16 GEMM efficiency against the doubled FP8 peak:
    a net 1.3x over BF16, the end-to-end speed-up NVIDIA reports for Transformer Engine FP8 on
    GPT-class training (confidence M)."""

    elementwise_bytes: float = 64.0
    """HBM bytes per hidden unit per token per layer moved by memory-bound kernels (norms,
    activations, residuals, rotary embeddings) forward and backward, after fusion: a count of
    reads and writes of BF16 activations (first principles)."""

    score_bytes: float = 16.0
    """Without fused attention: HBM bytes per attention score per token, head and layer
    (write scores, softmax read/write, read for the value product, and the backward's reads and
    writes, in 16-bit; first principles, M)."""

    tp_exposed: float = 0.70
    """Share of tensor-parallel all-reduce time on the critical path (sequence parallelism
    overlaps part of it; Megatron-LM; confidence M)."""

    dp_overlap: float = 0.80
    """Share of the backward pass that can hide the data-parallel gradient reduction
    (bucketed overlap in PyTorch DDP/FSDP; confidence M)."""

    era_overhead: float = 0.0
    """*fitted*: whole-run wall-clock lost per year the software stack is older than
    :data:`~straits.estimate.stack.DEFAULT_YEAR`, beyond the interruptions ``failure_rate``
    counts, as a rate: the share of the run that makes progress is multiplied by
    exp(-era_overhead x years). Older stacks stalled more between steps: loss spikes rolled back
    to a checkpoint, hangs and restarts by hand, slow checkpointing (OPT-175B's logbook, BLOOM's
    and GLM-130B's reports; Llama 3 counts more than 90% effective training time in 2024). It
    costs nothing per step: per-step MFU and step-time figures do not see it, which is how the
    fit tells it from :attr:`era_decay`. Default 0 (none)."""

    failure_rate: float = LLAMA3_INTERRUPTIONS / LLAMA3_SNAPSHOT_CHIP_HOURS
    """Interruptions per chip-hour: 419 in 54 days on 16,384 H100s (Llama 3 paper Sec. 3.3.4),
    about 2e-5."""

    evaluation: float = 0.01
    """Share of the run spent on periodic evaluation (first principles; confidence M)."""

    gemm_fractions: tuple[tuple[str, float], ...] = tuple(GEMM_FRACTION.items())

    def framework_for(self, family: str) -> float:
        return dict(self.framework_by_family).get(family, self.framework)

    def kernel_efficiency(self, family: str, year: int = DEFAULT_YEAR) -> float:
        """Fraction of peak the compute kernels reach: the family's GEMM fraction x its
        framework factor x the software-era factor."""
        age = max(0, DEFAULT_YEAR - year)
        return (
            gemm_fraction(family, self)
            * self.framework_for(family)
            * math.exp(-self.era_decay * age)
        )

    def width_efficiency(self, d_model: int, peak_tflops: float) -> float:
        """Share of the large-matrix GEMM rate a model of width ``d_model`` reaches."""
        width = self.gemm_width * peak_tflops / REFERENCE_PEAK_TFLOPS
        return d_model / (d_model + width)

    def goodput(self, chips: int, year: int = DEFAULT_YEAR) -> float:
        """Share of wall-clock time that makes progress: each interruption costs
        ``lost_hours`` of the whole cluster, a cluster of ``chips`` is interrupted
        ``failure_rate x chips`` times an hour, and a stack of ``year`` stalls
        (:attr:`era_overhead`) more the older it is."""
        return self.unstalled(year) / (1.0 + self.failure_rate * chips * self.lost_hours)

    def unstalled(self, year: int = DEFAULT_YEAR) -> float:
        """Share of wall-clock time a stack of ``year`` does not lose to stalls between steps
        (:attr:`era_overhead`); 1 for a current stack."""
        return math.exp(-self.era_overhead * max(0, DEFAULT_YEAR - year))


def gemm_fraction(family: str, cal: Calibration) -> float:
    return dict(cal.gemm_fractions).get(family, DEFAULT_GEMM_FRACTION)


#: the parameters ``benchmarks/fit_estimator.py`` fits, in order, with their bounds
FITTED: dict[str, tuple[float, float]] = {
    "framework_ampere": (0.2, 1.2),
    "framework_hopper": (0.2, 1.2),
    "era_decay": (0.0, 0.5),
    "gemm_width": (0.0, 8192.0),
    "moe_gemm": (0.2, 1.0),
    "era_overhead": (0.0, 0.5),
}


def with_fitted(values: dict[str, float], base: Calibration | None = None) -> Calibration:
    """A calibration with the fitted parameters ``values`` (names as in :data:`FITTED`)."""
    base = base or Calibration()
    fams = tuple((f, float(values[f"framework_{f}"])) for f in FITTED_FAMILIES)
    fallback = math.exp(sum(math.log(v) for _, v in fams) / len(fams))
    rest = {k: float(v) for k, v in values.items() if not k.startswith("framework_")}
    known = {f.name for f in fields(Calibration)}
    unknown = set(rest) - known
    if unknown:
        raise ValueError(f"unknown fitted parameters: {sorted(unknown)}")
    out = replace(base, framework_by_family=fams, framework=fallback)
    return replace(out, **rest)  # type: ignore[arg-type]  # names checked above


def fitted_values(cal: Calibration) -> dict[str, float]:
    """The fitted parameters of ``cal``, named as in :data:`FITTED`."""
    out = {f"framework_{f}": cal.framework_for(f) for f in FITTED_FAMILIES}
    out.update({k: float(getattr(cal, k)) for k in FITTED if not k.startswith("framework_")})
    return out


Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Interval(_Strict):
    low: Finite
    high: Finite
    level: Annotated[float, Field(gt=0, lt=1)]
    basis: str

    @model_validator(mode="after")
    def _ordered(self) -> _Interval:
        if not self.low <= 0 <= self.high:
            raise ValueError("the interval must hold the central estimate: low <= 0 <= high")
        return self


class _GivenInterval(_Interval):
    sigma: Annotated[float, Field(ge=0)]
    """the log-normal scatter the interval is exp(+-1.2816 sigma) of"""


class _TypicalDays(_Strict):
    a: Finite
    b: Annotated[float, Field(ge=0, le=1)]
    runs: Annotated[int, Field(ge=0)]


class FittedFile(_Strict):
    """``fitted.yaml``: what ``benchmarks/fit_estimator.py`` writes."""

    parameters: dict[str, Finite]
    fit: dict[str, Any]
    typical_days: _TypicalDays
    interval: _Interval
    interval_given_mfu: _GivenInterval | None = None
    runs: dict[str, dict[str, Any]]

    @model_validator(mode="after")
    def _parameters(self) -> FittedFile:
        if set(self.parameters) != set(FITTED):
            raise ValueError(f"parameters must be exactly {sorted(FITTED)}")
        for name, value in self.parameters.items():
            lo, hi = FITTED[name]
            if not lo <= value <= hi:
                raise ValueError(f"parameter {name} = {value:g} is outside [{lo:g}, {hi:g}]")
        return self


@cache
def fitted_document() -> dict[str, Any]:
    """``fitted.yaml`` as written by the fitting script, validated (empty when absent; a
    :class:`~straits.errors.CatalogError` naming the field when it is damaged)."""
    from straits.loading import validate_as  # loading imports the model, which is heavier

    source = f"straits/estimate/{FITTED_FILE}"
    path = resources.files("straits.estimate").joinpath(FITTED_FILE)
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        validate_as(FittedFile, data, source=source)
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as exc:
        raise CatalogError(
            f"{source}: not valid YAML ({type(exc).__name__}); rerun "
            f"benchmarks/fit_estimator.py --write"
        ) from None
    except InputError as exc:
        raise CatalogError(f"{exc}; rerun benchmarks/fit_estimator.py --write") from None
    assert isinstance(data, dict)
    return data


#: why the shipped parameters could not be loaded (None: they were)
LOAD_ERROR: str | None = None


def _shipped() -> Calibration:
    global LOAD_ERROR
    try:
        params = fitted_document().get("parameters")
    except CatalogError as exc:  # reported by every estimate (require_shipped), not at import
        LOAD_ERROR = str(exc)
        return Calibration()
    return with_fitted(params) if isinstance(params, dict) else Calibration()


DEFAULT = _shipped()


def require_shipped(cal: Calibration) -> None:
    """Refuse to estimate with the default parameters when ``fitted.yaml`` is damaged (a
    silent fallback to unfitted values would be a wrong answer given as a right one)."""
    if cal is DEFAULT and LOAD_ERROR is not None:
        raise CatalogError(LOAD_ERROR)


@lru_cache(maxsize=65536)
def default_global_batch(tokens: float, seq_len: int) -> float:
    """Tokens per optimizer step when the model does not say: 4M tokens for a 2T-token run
    (Llama 2), growing as tokens^0.7 to 16M at 15.6T (Llama 3 405B); clamped to [1M, 64M],
    and rounded to a number of sequences on a sqrt(2) grid (batches are round numbers, and
    estimates of one model on one chip are then shared across runs of similar length)."""
    batch: float = 4e6 * (tokens / 2e12) ** 0.7
    batch = min(max(batch, 1e6), 6.4e7)
    seqs = max(1.0, batch / seq_len)
    seqs = round(2 ** (round(2 * math.log2(seqs)) / 2))
    return float(max(1, seqs) * seq_len)
