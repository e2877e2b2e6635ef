"""What real runs lose, as mechanisms: the software stack by year, narrow models, interruptions,
the cluster people use, the interval and planning at its high end."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from straits.catalog import get_chip
from straits.errors import EstimateError
from straits.estimate import at_risk, estimate_serving, estimate_training, typical_chips
from straits.estimate.calibration import DEFAULT, Calibration
from straits.estimate.interval import training_interval
from straits.estimate.layout import Layout
from straits.estimate.memory import training_memory
from straits.estimate.stack import FUSED_FROM, stack
from straits.estimate.typical import TypicalDays, fit_typical_days
from straits.model.scenario import ModelSpec

SMALL = ModelSpec(params=7e9, layers=32, d_model=4096, heads=32, seq_len=4096)
MID = ModelSpec(params=7e10, layers=80, d_model=8192, heads=64, kv_heads=8, seq_len=4096)
MOE = ModelSpec(
    params=2.4e11, active_params=2.1e10, layers=60, d_model=5120, heads=128, seq_len=4096, top_k=6
)

models = st.builds(
    lambda p, layers, width, heads, seq: ModelSpec(
        params=p, layers=layers, d_model=width * heads, heads=heads, seq_len=seq
    ),
    st.floats(1e9, 2e11),
    st.integers(16, 96),
    st.sampled_from([64, 128]),
    st.sampled_from([16, 32, 64]),
    st.sampled_from([2048, 4096, 8192]),
)
gpu = st.sampled_from(["A100-SXM-80GB", "H100-SXM", "H800-SXM", "MI300X"])


# --- the software stack -------------------------------------------------------------------------
@given(
    models,
    st.floats(1e11, 1e13),
    gpu,
    st.sampled_from([256, 1024, 4096]),
    st.integers(2023, 2025),
    st.integers(1, 5),
)
@settings(max_examples=40, deadline=None)
def test_older_software_is_never_faster(
    model: ModelSpec, tokens: float, chip_id: str, n: int, year: int, older: int
) -> None:
    chip = get_chip(chip_id)
    new = estimate_training(model, tokens, chip, n, software_year=year)
    old = estimate_training(model, tokens, chip, n, software_year=year - older)
    if new.fits and old.fits:
        assert old.chip_hours >= new.chip_hours * (1 - 1e-9)
        assert old.mfu <= new.mfu + 1e-9


@pytest.mark.parametrize("year", [2020, 2021, 2022])
def test_stacks_before_fused_attention_recompute_every_layer(year: int) -> None:
    assert not stack(year).fused_attention and stack(year).recompute == ("full",)
    est = estimate_training(MID, 2e12, get_chip("A100-SXM-80GB"), 512, software_year=year)
    assert est.fits and "recompute=full" in est.layout
    fused = estimate_training(MID, 2e12, get_chip("A100-SXM-80GB"), 512, software_year=FUSED_FROM)
    current = estimate_training(MID, 2e12, get_chip("A100-SXM-80GB"), 512)
    assert est.factors["software_era"] < fused.factors["software_era"] < 1
    assert "software_era" not in current.factors


@pytest.mark.parametrize("recompute", ["none", "selective", "full"])
def test_unfused_attention_stores_scores_unless_recomputed(recompute: str) -> None:
    lay = Layout(chips=64, tp=8, pp=1, recompute=recompute)  # type: ignore[arg-type]
    fused = training_memory(MID, lay, fused_attention=True)
    unfused = training_memory(MID, lay, fused_attention=False)
    if recompute == "none":
        assert unfused.activations_gb > fused.activations_gb
    else:
        assert unfused.activations_gb == pytest.approx(fused.activations_gb)
    assert unfused.weights_gb == fused.weights_gb


@pytest.mark.parametrize("year", [2017, 2036])
def test_software_year_out_of_range_is_an_input_error(year: int) -> None:
    with pytest.raises(EstimateError) as err:
        estimate_training(SMALL, 1e12, get_chip("H100-SXM"), 64, software_year=year)
    assert err.value.path == "software_year"


# --- narrow models, interruptions ---------------------------------------------------------------
@given(st.integers(512, 32768), st.integers(1, 4096))
def test_narrow_models_reach_less_of_the_gemm_rate(width: int, wider: int) -> None:
    for peak in (312.0, 989.0):
        a = DEFAULT.width_efficiency(width, peak)
        assert 0 < a <= 1
        assert DEFAULT.width_efficiency(width + wider, peak) >= a
    assert DEFAULT.width_efficiency(width, 989.0) <= DEFAULT.width_efficiency(width, 312.0)


@given(st.integers(1, 100_000), st.integers(1, 100_000))
def test_goodput_falls_with_cluster_size(n: int, more: int) -> None:
    assert 0 < DEFAULT.goodput(n + more) <= DEFAULT.goodput(n) <= 1


@given(st.integers(1, 100_000), st.integers(2015, 2030), st.integers(0, 10))
def test_an_older_stack_loses_more_of_the_run(n: int, year: int, older: int) -> None:
    assert 0 < DEFAULT.goodput(n, year - older) <= DEFAULT.goodput(n, year) <= DEFAULT.goodput(n)
    assert DEFAULT.unstalled(2025) == 1.0 == Calibration().unstalled(2020)


def test_stalls_cost_the_run_never_the_step() -> None:
    """An older stack's stalls lengthen the run (interruptions aside) but not the steps: the
    per-step MFU and a step-time figure do not see them."""
    a100 = get_chip("A100-SXM-80GB")
    none = Calibration()
    stalls = replace(none, era_overhead=0.2)
    for year in (2022, 2025):
        plain = estimate_training(MID, 1e12, a100, 512, cal=none, software_year=year)
        slow = estimate_training(MID, 1e12, a100, 512, cal=stalls, software_year=year)
        assert slow.mfu == plain.mfu
        assert slow.overheads["step_chip_hours"] == plain.overheads["step_chip_hours"]
        kept = math.exp(-0.2 * (2025 - year))
        assert slow.overheads["unstalled"] == pytest.approx(kept, abs=1e-4)
        assert slow.chip_hours == pytest.approx(plain.chip_hours / kept)


def test_whole_run_overheads_grow_with_the_cluster() -> None:
    h100 = get_chip("H100-SXM")
    small = estimate_training(MID, 2e12, h100, 256)
    big = estimate_training(MID, 2e12, h100, 8192)
    assert big.overheads["goodput"] < small.overheads["goodput"]
    assert big.overheads["interruptions"] > small.overheads["interruptions"]


# --- the cluster people use ---------------------------------------------------------------------
@given(st.sampled_from([SMALL, MID, MOE]), st.floats(1e11, 2e13), gpu)
@settings(max_examples=25, deadline=None)
def test_typical_cluster_holds_the_model_and_meets_the_typical_length(
    model: ModelSpec, tokens: float, chip_id: str
) -> None:
    chip = get_chip(chip_id)
    n = typical_chips(model, tokens, chip)
    fewest = estimate_training(model, tokens, chip).min_chips
    assert n >= fewest
    est = estimate_training(model, tokens, chip, n)
    assert est.fits


def test_more_tokens_never_shrink_the_typical_cluster() -> None:
    h100 = get_chip("H100-SXM")
    sizes = [typical_chips(MID, t, h100) for t in (1e11, 1e12, 5e12, 2e13)]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_typical_run_length_is_a_line_in_log_space() -> None:
    line = TypicalDays(math.log(2.0), 0.25, 3)
    points = [(c, line.days(c)) for c in (1e4, 1e5, 1e6, 1e7)]
    got = fit_typical_days(points)
    assert got.a == pytest.approx(line.a) and got.b == pytest.approx(line.b)
    assert got.runs == 4
    assert line.days(1e7) > line.days(1e5)


# --- the interval and planning at its high end --------------------------------------------------
@given(
    models,
    st.floats(1e10, 1e13),
    gpu,
    st.sampled_from([None, 64, 1024]),
    st.sampled_from(["p50", "p90"]),
)
@settings(max_examples=30, deadline=None)
def test_interval_orders_low_central_high(
    model: ModelSpec, tokens: float, chip_id: str, n: int | None, risk: str
) -> None:
    est = estimate_training(model, tokens, get_chip(chip_id), n, usd_per_chip_hour=2.0, risk=risk)  # type: ignore[arg-type]
    out = est.to_json()
    for key in ("chip_hours", "days", "cost_usd"):
        assert out[f"{key}_low"] <= out[key] * (1 + 1e-12)
        assert out[key] <= out[f"{key}_high"] * (1 + 1e-12)
    assert out["interval"]["level"] == pytest.approx(0.8)


def test_p90_plans_on_the_high_end_and_keeps_the_interval() -> None:
    chip = get_chip("H100-SXM")
    p50 = estimate_training(MID, 2e12, chip, 1024, usd_per_chip_hour=2.0)
    p90 = estimate_training(MID, 2e12, chip, 1024, usd_per_chip_hour=2.0, risk="p90")
    assert p90.chip_hours == pytest.approx(p50.chip_hours_high)
    assert p90.hours == pytest.approx(p50.hours_high)
    assert p90.cost_usd == pytest.approx(2.0 * p50.chip_hours_high)
    assert (p90.chip_hours_low, p90.chip_hours_high) == pytest.approx(
        (p50.chip_hours_low, p50.chip_hours_high)
    )
    assert at_risk(p90, "p50").chip_hours == pytest.approx(p50.chip_hours)
    assert p90.to_json()["risk"] == "p90"
    iv = training_interval()
    assert iv.low_factor < 1 < iv.high_factor


def test_serving_claims_no_interval() -> None:
    est = estimate_serving(MID, get_chip("H100-SXM"), 16, days=10)
    out = est.to_json()
    assert out["interval"] is None
    assert out["chip_hours_low"] == out["chip_hours"] == out["chip_hours_high"]


def test_calibration_is_hashable_and_its_defaults_are_the_shipped_fit() -> None:
    assert hash(DEFAULT) == hash(DEFAULT)
    assert Calibration() != DEFAULT  # fitted.yaml ships and is loaded


# --- hostile figures ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "tokens", "path"),
    [
        (SMALL, math.inf, "tokens"),
        (SMALL, math.nan, "tokens"),
        (SMALL.model_copy(update={"params": math.inf}), 1e12, "model.params"),
        (MOE.model_copy(update={"active_params": math.inf}), 1e12, "model.active_params"),
    ],
)
def test_infinite_figures_are_input_errors(model: ModelSpec, tokens: float, path: str) -> None:
    """JSON's Infinity and NaN parse; an estimate of them is refused, not printed as
    Infinity (nor an OverflowError deep in the layout search)."""
    with pytest.raises(EstimateError) as err:
        estimate_training(model, tokens, get_chip("H100-SXM"))
    assert err.value.path == path
    with pytest.raises(EstimateError):
        typical_chips(model, tokens, get_chip("H100-SXM"))


def test_infinite_serving_days_are_an_input_error() -> None:
    with pytest.raises(EstimateError) as err:
        estimate_serving(SMALL, get_chip("H100-SXM"), 8, days=math.inf)
    assert err.value.path == "days"
