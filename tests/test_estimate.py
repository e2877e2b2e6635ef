"""The estimator: FLOPs, memory and layouts, efficiency mechanisms, serving, energy."""

from __future__ import annotations

import math
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from straits.catalog import catalog, get_chip
from straits.errors import EstimateError
from straits.estimate import (
    estimate_serving,
    estimate_training,
    flops_per_token,
    min_chips_serving,
)
from straits.estimate.calibration import DEFAULT
from straits.estimate.efficiency import cluster_sizes, fits_anywhere
from straits.estimate.energy import DEFAULT_PUE, POWER_SHARE
from straits.estimate.layout import Layout, Recompute
from straits.estimate.memory import KV_RESERVE, USABLE_FRACTION, training_memory
from straits.model.scenario import ModelSpec

LLAMA2_70B = ModelSpec(
    params=7e10, layers=80, d_model=8192, heads=64, seq_len=4096, global_batch_tokens=4e6
)
DEEPSEEK_V3 = ModelSpec(
    params=6.71e11,
    active_params=3.7e10,
    layers=61,
    d_model=7168,
    heads=128,
    seq_len=4096,
    precision="fp8",
    top_k=8,
    global_batch_tokens=15360 * 4096,
)
SMALL = ModelSpec(params=7e9, layers=32, d_model=4096, heads=32, seq_len=4096)


# Accuracy against published runs is measured by benchmarks/estimator_calibration.py, never
# asserted here: these tests hold the mechanisms.


# --- FLOPs --------------------------------------------------------------------------------------
def test_flops_per_token_is_6n_plus_attention() -> None:
    assert flops_per_token(LLAMA2_70B) == pytest.approx(6 * 7e10 + 12 * 80 * 8192 * 4096)


def test_moe_uses_active_parameters() -> None:
    assert flops_per_token(DEEPSEEK_V3) == pytest.approx(6 * 3.7e10 + 12 * 61 * 7168 * 4096)


# --- memory and the fewest chips ----------------------------------------------------------------
def test_min_chips_is_the_fewest_that_fit() -> None:
    h100 = get_chip("H100-SXM")
    est = estimate_training(LLAMA2_70B, 2e12, h100)
    assert est.fits and est.chips == est.min_chips
    assert est.min_chips >= math.ceil(7e10 * 16 / 1e9 / (80 * USABLE_FRACTION))
    smaller = [n for n in cluster_sizes(1) if n < est.min_chips]
    assert all(not fits_anywhere(LLAMA2_70B, h100, n, 4e6) for n in smaller)
    assert est.memory_gb["total_gb"] <= 80 * USABLE_FRACTION


def test_too_few_chips_says_so_with_figures() -> None:
    est = estimate_training(LLAMA2_70B, 2e12, get_chip("A100-SXM-40GB"), chips=4)
    assert not est.fits
    note = next(n for n in est.notes if n.startswith("does not fit"))
    assert "1,120 GB" in note and "per chip of 40 GB" in note


def test_zero_tokens_is_an_input_error() -> None:
    with pytest.raises(EstimateError):
        estimate_training(LLAMA2_70B, 0, get_chip("H100-SXM"))


@given(
    st.sampled_from([1, 2, 4, 8]),
    st.sampled_from([1, 2, 4, 8, 16]),
    st.sampled_from([1, 3]),
    st.sampled_from(["none", "selective", "full"]),
)
def test_memory_per_chip_falls_as_sharding_grows(
    tp: int, pp: int, zero: Literal[1, 3], rc: Recompute
) -> None:
    base = Layout(chips=tp * pp * 16, tp=tp, pp=1, zero=zero, recompute=rc)
    more_tp = Layout(chips=base.chips * 2, tp=min(tp * 2, 16), zero=zero, recompute=rc)
    more_dp = Layout(chips=base.chips * 2, tp=tp, zero=zero, recompute=rc)
    m0 = training_memory(DEEPSEEK_V3, base)
    assert training_memory(DEEPSEEK_V3, more_tp).total_gb <= m0.total_gb
    assert training_memory(DEEPSEEK_V3, more_dp).total_gb <= m0.total_gb
    weights_pp = Layout(chips=base.chips * pp, tp=tp, pp=pp, zero=zero, recompute=rc)
    sharded = training_memory(DEEPSEEK_V3, weights_pp)
    assert sharded.weights_gb + sharded.optimizer_gb <= m0.weights_gb + m0.optimizer_gb + 1e-9


def test_recomputation_and_zero3_trade_memory() -> None:
    lay = Layout(chips=64, tp=8, pp=1)
    none = training_memory(LLAMA2_70B, lay)
    full = training_memory(LLAMA2_70B, Layout(chips=64, tp=8, pp=1, recompute="full"))
    z3 = training_memory(LLAMA2_70B, Layout(chips=64, tp=8, pp=1, zero=3))
    assert full.activations_gb < none.activations_gb / 10
    assert z3.weights_gb == pytest.approx(none.weights_gb / 8)


# --- efficiency mechanisms ----------------------------------------------------------------------
models = st.builds(
    lambda p, layers, width, heads, seq: ModelSpec(
        params=p, layers=layers, d_model=width * heads, heads=heads, seq_len=seq
    ),
    st.floats(1e9, 3e11),
    st.integers(8, 128),
    st.sampled_from([64, 128]),
    st.sampled_from([16, 32, 64]),
    st.sampled_from([2048, 4096, 8192]),
)
chips = st.sampled_from(catalog().ids)


@given(
    models, st.floats(1e11, 1e13), chips, st.sampled_from([256, 512, 1024, 2048]), st.integers(1, 4)
)
def test_more_chips_same_flops_and_sane_mfu(
    model: ModelSpec, tokens: float, chip_id: str, n: int, k: int
) -> None:
    chip = get_chip(chip_id)
    a = estimate_training(model, tokens, chip, chips=n)
    b = estimate_training(model, tokens, chip, chips=n * 2**k)
    assert b.flops == a.flops
    for e in (a, b):
        assert 0 < e.mfu < 1
        assert e.chip_hours == pytest.approx(e.chips * e.hours)
        assert e.chip_hours >= e.overheads["step_chip_hours"]


@given(models, st.sampled_from([512, 2048, 8192]))
def test_h800_never_beats_h100(model: ModelSpec, n: int) -> None:
    """Same compute, NVLink cut from 900 to 400 GB/s: never faster."""
    h100 = estimate_training(model, 1e12, get_chip("H100-SXM"), n)
    h800 = estimate_training(model, 1e12, get_chip("H800-SXM"), n)
    if h100.fits and h800.fits:
        assert h800.mfu <= h100.mfu + 1e-9


def test_small_models_lose_efficiency_on_large_clusters() -> None:
    h100 = get_chip("H100-SXM")
    small = estimate_training(SMALL, 2e12, h100, 256)
    huge = estimate_training(SMALL, 2e12, h100, 16384)
    assert huge.mfu < small.mfu
    assert huge.chip_hours > small.chip_hours


def test_fp8_is_faster_than_bf16_on_hopper() -> None:
    bf16 = DEEPSEEK_V3.model_copy(update={"precision": "bf16"})
    h800 = get_chip("H800-SXM")
    assert (
        estimate_training(DEEPSEEK_V3, 1e12, h800, 2048).hours
        < estimate_training(bf16, 1e12, h800, 2048).hours
    )


def test_time_cost_and_overheads_are_consistent() -> None:
    est = estimate_training(LLAMA2_70B, 2e12, get_chip("H100-SXM"), 1024, usd_per_chip_hour=2.0)
    steps = 2e12 / est.batch_tokens
    step_hours = steps * est.step_seconds / 3600
    assert est.hours == pytest.approx(step_hours / DEFAULT.goodput(1024) / (1 - DEFAULT.evaluation))
    assert est.cost_usd == pytest.approx(2.0 * est.chip_hours)
    assert est.days == pytest.approx(est.hours / 24)
    shares = est.mfu_components["step_shares"]
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-3)


# --- serving ------------------------------------------------------------------------------------
def test_serving_holds_weights_and_kv_reserve() -> None:
    est = estimate_serving(
        LLAMA2_70B, get_chip("H100-SXM"), chips=8, days=30, usd_per_chip_hour=2.0
    )
    assert est.fits
    # the memory minimum is 3 chips; the replica (and `min_chips`) a power of two (est30)
    assert min_chips_serving(LLAMA2_70B, get_chip("H100-SXM")) == math.ceil(
        140 / (80 * USABLE_FRACTION * (1 - KV_RESERVE))
    )
    assert est.min_chips == 4
    assert est.chip_hours == 8 * 30 * 24
    assert not estimate_serving(LLAMA2_70B, get_chip("H100-SXM"), chips=2, days=1).fits


@given(st.floats(100, 1e6), st.sampled_from(["H100-SXM", "H20", "A100-SXM-80GB", "MI300X"]))
def test_serving_chips_grow_with_the_target(tps: float, chip_id: str) -> None:
    chip = get_chip(chip_id)
    a = estimate_serving(LLAMA2_70B, chip, None, 1, tokens_per_s=tps)
    b = estimate_serving(LLAMA2_70B, chip, None, 1, tokens_per_s=tps * 2)
    assert a.chips >= a.min_chips and b.chips >= a.chips
    assert a.serving["replicas"] * a.serving["replica_chips"] == a.chips


def test_h20_decodes_well_but_prefills_slowly() -> None:
    """The H20 has 4.0 TB/s of HBM for 148 TFLOP/s, the A100 2.0 TB/s for 312: the H20 decodes
    faster where the KV cache bounds the batch (memory-bound steps), but needs more chips where
    long prompts make prefill (compute) dominate."""

    def plan(model: ModelSpec, chip_id: str, prompt: int):  # type: ignore[no-untyped-def]
        return estimate_serving(
            model,
            get_chip(chip_id),
            None,
            1,
            tokens_per_s=10_000,
            prompt_tokens=prompt,
            output_tokens=512,
        )

    h20, a100 = plan(LLAMA2_70B, "H20", 1024), plan(LLAMA2_70B, "A100-SXM-80GB", 1024)
    assert h20.serving["bound"] == a100.serving["bound"] == "memory"
    assert h20.serving["decode_step_ms"] < a100.serving["decode_step_ms"]
    assert h20.chips < a100.chips
    gqa = LLAMA2_70B.model_copy(update={"kv_heads": 8})
    assert plan(gqa, "H20", 8192).chips > plan(gqa, "A100-SXM-80GB", 8192).chips


# --- energy -------------------------------------------------------------------------------------
def test_energy_follows_tdp_share_and_pue() -> None:
    chip = get_chip("H100-SXM")
    est = estimate_training(LLAMA2_70B, 2e12, chip, 1024)
    e = est.energy(chip, country="SG")
    assert e is not None
    assert e.kwh == pytest.approx(est.chip_hours * 700 * POWER_SHARE["train"] * DEFAULT_PUE / 1e3)
    assert e.tco2e == pytest.approx(e.kwh * 470 / 1e6)
    site = est.energy(chip, pue=1.1, gco2_per_kwh=0)
    assert site is not None and site.tco2e == 0 and site.kwh < e.kwh
