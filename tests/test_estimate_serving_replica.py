"""A serving estimate's `min_chips` and `fits` are for the replica its throughput is for (est30).

`fits` took the memory minimum (3 H100s hold a 70B model's weights beside the KV reserve)
while the throughput, `serving.replica_chips` and `straits export` were a 4-chip replica's
(a power-of-two tensor-parallel group): 3 chips "fit" and served no whole replica, and on a
TPU the estimate priced a 1- or 2-chip replica where export ran a 4-chip slice.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from straits.catalog import get_chip
from straits.estimate import estimate_serving, min_chips_serving
from straits.estimate.serving import replica_size
from straits.export.base import replica_chips
from straits.loading import parse_scenario
from straits.model.scenario import ModelSpec, Scenario
from straits.plan import make_plan
from straits.rules import ruleset

LLAMA2_70B = ModelSpec(params=7e10, layers=80, d_model=8192, heads=64, kv_heads=8, seq_len=4096)
SMALL = ModelSpec(params=7e9, layers=32, d_model=4096, heads=32, seq_len=4096)
H100 = get_chip("H100-SXM")


def _serving(chip: str, model: dict[str, Any], **stage: Any) -> Scenario:
    """One US site with 64 ``chip``s serving ``model`` for 10 days."""
    return parse_scenario(
        {
            "straits": 1,
            "name": "serve",
            "date": "2025-01-06",
            "tenants": [{"id": "t", "hq": "US"}],
            "sites": [
                {
                    "id": "us",
                    "country": "US",
                    "operator_hq": "US",
                    "pools": [{"chip": chip, "count": 64, "usd_per_chip_hour": 2.0}],
                }
            ],
            "workloads": [
                {
                    "id": "w",
                    "tenant": "t",
                    "model": model,
                    "stages": [{"id": "serve", "kind": "serve", "days": 10, **stage}],
                }
            ],
        }
    )


def test_a_70b_model_on_three_h100s_does_not_fit_its_four_chip_replica() -> None:
    assert min_chips_serving(LLAMA2_70B, H100, 1024 + 256) == 3  # the memory minimum
    three = estimate_serving(LLAMA2_70B, H100, 3, 1, tokens_per_s=1000)
    assert three.serving["replica_chips"] == 4
    assert (three.fits, three.min_chips) == (False, 4)
    four = estimate_serving(LLAMA2_70B, H100, 4, 1, tokens_per_s=1000)
    assert (four.fits, four.min_chips) == (True, 4)
    # the same without a target (no `serving` object): the replica is the one a target gets
    assert (estimate_serving(LLAMA2_70B, H100, 3, 1).fits, three.min_chips) == (False, 4)


def test_the_hint_asks_for_the_replica_not_the_memory_minimum() -> None:
    from straits.estimate.guidance import estimate_guidance
    from straits.model.request import EstimateRequest

    est = estimate_serving(LLAMA2_70B, H100, 3, 1)
    req = EstimateRequest.model_validate(
        {
            "kind": "serve",
            "model": LLAMA2_70B.model_dump(),
            "chip": "H100-SXM",
            "chips": 3,
            "days": 1,
        }
    )
    hints = estimate_guidance(req, est, lambda n: estimate_serving(LLAMA2_70B, H100, n, 1))
    [hint] = [h for h in hints if h["code"] == "needs-more-chips"]
    assert hint["min_chips"] == 4


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["H100-SXM", "H20", "A100-SXM-40GB", "MI300X", "TPU-v4", "TPU-v5e"]),
    st.sampled_from([SMALL, LLAMA2_70B]),
    st.integers(1, 64),
    st.sampled_from([256, 4096, 200_000]),
)
def test_min_chips_fits_and_the_priced_replica_agree(
    chip_id: str, model: ModelSpec, chips: int, prompt: int
) -> None:
    chip = get_chip(chip_id)
    est = estimate_serving(model, chip, chips, 1, tokens_per_s=500, prompt_tokens=prompt)
    replica = est.serving["replica_chips"]
    assert est.min_chips == replica == replica_size(model, chip, prompt + 256)
    assert est.fits == (chips >= replica)
    assert replica >= min_chips_serving(model, chip, prompt + 256)


def test_export_runs_the_replica_the_estimate_prices_on_a_tpu() -> None:
    """A 7B model needs 1 TPU v4 chip; its slice (and export's replica) is 4 chips: the estimate
    priced a 1-chip replica's throughput."""
    model = {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096}
    sc = _serving("TPU-v4", model, tokens_per_s=2000)
    chip = get_chip("TPU-v4")
    est = estimate_serving(sc.workload("w").model, chip, None, 10, tokens_per_s=2000)
    assert est.serving["replica_chips"] == replica_chips(sc, "w", "TPU-v4", context=1280) == 4
    assert est.min_chips == 4 and est.chips % 4 == 0


def test_a_stage_fixing_three_h100s_for_a_70b_model_is_not_placed() -> None:
    """The planner placed it (the estimate said it fit) and export ran a 3-chip replica the
    throughput was never estimated for."""
    model = LLAMA2_70B.model_dump(exclude_none=True)
    for chips, placed in ((3, False), (4, True)):
        sc = _serving("H100-SXM", model, chips=chips)
        plan = make_plan(sc, rules=ruleset(()), solver="greedy")
        assert bool(plan.assignments) == placed
