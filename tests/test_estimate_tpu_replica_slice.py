"""A serving replica larger than a Cloud TPU's largest slice fits nowhere (est49): the estimate
said `fits: true` for a 512-chip TPU v5e replica (v5e slices stop at 256) while the planner
left the same stage unplaced for memory."""

from __future__ import annotations

import pytest

from straits.catalog import get_chip
from straits.estimate import estimate_serving
from straits.estimate.guidance import estimate_guidance
from straits.loading import parse_scenario
from straits.model.request import EstimateRequest
from straits.model.scenario import ModelSpec
from straits.plan import make_plan
from straits.rules import ruleset

#: 4 TB of BF16 weights: 421 TPU v5e chips at least, more than its 256-chip slices
BIG = ModelSpec(params=2e12, active_params=1e11, layers=100, d_model=16384, heads=128)
V5E = get_chip("TPU-v5e")


@pytest.mark.parametrize("chips", [None, 256, 512, 1024])
def test_a_replica_beyond_the_largest_slice_does_not_fit(chips: int | None) -> None:
    est = estimate_serving(BIG, V5E, chips, 30, tokens_per_s=10_000)
    assert est.fits is False
    assert est.min_chips > 256


def test_the_hint_says_no_slice_holds_it_not_more_chips() -> None:
    est = estimate_serving(BIG, V5E, 1024, 30)
    req = EstimateRequest.model_validate(
        {"kind": "serve", "model": BIG.model_dump(), "chip": "TPU-v5e", "chips": 1024, "days": 30}
    )
    hints = estimate_guidance(req, est, lambda n: estimate_serving(BIG, V5E, n, 30))
    assert [(h["code"], h["largest_tried"]) for h in hints] == [("fits-nowhere", 256)]


def test_the_estimate_and_the_planner_agree() -> None:
    site = {
        "id": "sg",
        "country": "SG",
        "operator_hq": "SG",
        "pools": [{"chip": "TPU-v5e", "count": 4096, "usd_per_chip_hour": 1.2}],
    }
    stage = {"id": "serve", "kind": "serve", "days": 30, "tokens_per_s": 10_000}
    workload = {"id": "w", "tenant": "t", "model": BIG.model_dump(), "stages": [stage]}
    sc = parse_scenario(
        {
            **{"straits": 1, "name": "x", "date": "2025-06-01"},
            **{"tenants": [{"id": "t", "hq": "SG"}], "sites": [site], "workloads": [workload]},
        }
    )
    plan = make_plan(sc, rules=ruleset(()), solver="greedy")
    assert not plan.assignments
    assert plan.unplaced[0].lost_codes == {"memory": 1}
    assert estimate_serving(BIG, V5E, None, 30, tokens_per_s=10_000).fits is False
