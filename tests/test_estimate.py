"""Estimator v1: FLOPs formula, memory and the fewest chips, time and cost."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from straits.catalog import catalog, get_chip
from straits.errors import EstimateError
from straits.estimate import estimate_serving, estimate_training, flops_per_token
from straits.estimate.memory import KV_RESERVE, USABLE_FRACTION
from straits.model.scenario import ModelSpec

LLAMA2_70B = ModelSpec(params=7e10, layers=80, d_model=8192, heads=64, seq_len=4096)


def test_flops_per_token_is_6n_plus_attention() -> None:
    # 6N + 12 L H Q T with H Q = d_model
    assert flops_per_token(LLAMA2_70B) == pytest.approx(6 * 7e10 + 12 * 80 * 8192 * 4096)


def test_moe_uses_active_parameters() -> None:
    moe = ModelSpec(params=6.71e11, active_params=3.7e10, layers=61, d_model=7168, heads=128,
                    seq_len=4096)
    assert flops_per_token(moe) == pytest.approx(6 * 3.7e10 + 12 * 61 * 7168 * 4096)


def test_min_chips_holds_16_bytes_per_parameter() -> None:
    h100 = get_chip("H100-SXM")
    est = estimate_training(LLAMA2_70B, 2e12, h100)
    assert est.min_chips == math.ceil(7e10 * 16 / 1e9 / (80 * USABLE_FRACTION))
    assert est.chips == est.min_chips and est.fits


def test_time_and_cost_follow_from_flops_and_mfu() -> None:
    h100 = get_chip("H100-SXM")
    est = estimate_training(LLAMA2_70B, 2e12, h100, chips=1024, usd_per_chip_hour=2.0)
    expected_hours = est.flops / (1024 * 989e12 * est.mfu) / 3600
    assert est.hours == pytest.approx(expected_hours)
    assert est.chip_hours == pytest.approx(1024 * expected_hours)
    assert est.cost_usd == pytest.approx(2.0 * est.chip_hours)
    assert est.days == pytest.approx(expected_hours / 24)


def test_too_few_chips_says_so_with_figures() -> None:
    est = estimate_training(LLAMA2_70B, 2e12, get_chip("A100-SXM-40GB"), chips=4)
    assert not est.fits
    assert any("needs at least" in n and "1,120 GB" in n for n in est.notes)


def test_zero_tokens_is_an_input_error() -> None:
    with pytest.raises(EstimateError):
        estimate_training(LLAMA2_70B, 0, get_chip("H100-SXM"))


def test_serving_holds_weights_and_kv_reserve() -> None:
    est = estimate_serving(LLAMA2_70B, get_chip("H100-SXM"), chips=8, days=30,
                           usd_per_chip_hour=2.0)
    assert est.fits
    assert est.min_chips == math.ceil(140 / (80 * USABLE_FRACTION * (1 - KV_RESERVE)))
    assert est.chip_hours == 8 * 30 * 24
    small = estimate_serving(LLAMA2_70B, get_chip("H100-SXM"), chips=2, days=1)
    assert not small.fits


models = st.builds(
    lambda p, layers, width, heads, seq: ModelSpec(params=p, layers=layers, d_model=width * heads,
                                                   heads=heads, seq_len=seq),
    st.floats(1e8, 1e12), st.integers(1, 160), st.integers(32, 256), st.integers(1, 128),
    st.sampled_from([2048, 4096, 8192, 32768]))
chips = st.sampled_from(catalog().ids)


@given(models, st.floats(1e9, 1e14), chips, st.integers(1, 64))
def test_more_chips_same_flops_less_time(model: ModelSpec, tokens: float, chip_id: str,
                                         extra: int) -> None:
    chip = get_chip(chip_id)
    a = estimate_training(model, tokens, chip, chips=8)
    b = estimate_training(model, tokens, chip, chips=8 + extra)
    assert b.flops == a.flops
    assert b.hours <= a.hours


@given(models, chips, st.floats(1.01, 10))
def test_bigger_models_never_need_fewer_chips(model: ModelSpec, chip_id: str, k: float) -> None:
    chip = get_chip(chip_id)
    bigger = model.model_copy(update={"params": model.params * k})
    assert (estimate_training(bigger, 1e12, chip).min_chips
            >= estimate_training(model, 1e12, chip).min_chips)
