"""A training stage no Cloud TPU slice holds is unplaced for memory, not capacity (est49): a
405B model needs 696 TPU v5e chips at least, v5e slices stop at 256, and a pool of 4,096 was
said to lack capacity, as if a larger pool would place it. A serving replica beyond the
largest slice was already `memory`."""

from __future__ import annotations

import pytest

from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.rules import ruleset

MODEL = {"params": 4.05e11, "layers": 126, "d_model": 16384, "heads": 128, "seq_len": 8192}


def _scenario(chip: str, count: int) -> Scenario:
    pool = {"chip": chip, "count": count, "usd_per_chip_hour": 1.2}
    site = {"id": "sg", "country": "SG", "operator_hq": "SG", "pools": [pool]}
    stage = {"id": "pretrain", "kind": "pretrain", "tokens": 1.5e13}
    workload = {"id": "w", "tenant": "t", "model": MODEL, "stages": [stage]}
    return parse_scenario(
        {
            **{"straits": 1, "name": "x", "date": "2025-06-01"},
            **{"tenants": [{"id": "t", "hq": "SG"}], "sites": [site], "workloads": [workload]},
        }
    )


@pytest.mark.parametrize("count", [256, 4096, 100_000])
def test_a_stage_beyond_the_largest_slice_is_unplaced_for_memory(count: int) -> None:
    plan = make_plan(_scenario("TPU-v5e", count), rules=ruleset(()), solver="greedy")
    assert not plan.assignments
    assert plan.unplaced[0].lost_codes == {"memory": 1}


def test_a_tpu_v4_pool_with_a_slice_that_holds_it_places_it() -> None:
    plan = make_plan(_scenario("TPU-v4", 2048), rules=ruleset(()), solver="greedy")
    assert [a.chip for a in plan.assignments] == ["TPU-v4"]
