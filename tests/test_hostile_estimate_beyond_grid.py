"""Estimates at the edges the size grid does not reach (est49): a training state larger than
the largest cluster the grid of sizes tries is refused as not fitting, not a traceback."""

from __future__ import annotations

import pytest

from straits.catalog import get_chip
from straits.estimate import estimate_training
from straits.estimate.efficiency import cluster_sizes
from straits.estimate.memory import USABLE_FRACTION
from straits.loading import parse_scenario
from straits.model.scenario import ModelSpec
from straits.plan import make_plan

#: 16 PB of training state: on 16-GB chips more than the grid's largest size
HUGE = ModelSpec(params=1e15, layers=200, d_model=100_000, heads=100, seq_len=4096)


@pytest.mark.parametrize("chips", [16, None])
def test_a_state_beyond_the_size_grid_does_not_fit(chips: int | None) -> None:
    chip = get_chip("TPU-v5e")
    lower = HUGE.params * 16 / 1e9 / (chip.memory_gb * USABLE_FRACTION)
    assert lower > cluster_sizes(1)[-1]  # the case: no size of the grid is tried
    est = estimate_training(HUGE, 1e13, chip, chips)
    assert not est.fits
    assert est.min_chips >= int(lower)
    assert any("does not fit on any cluster" in n for n in est.notes)


def test_a_stage_of_a_state_beyond_the_size_grid_is_left_unplaced() -> None:
    """The planner asked the same fewest chips and crashed with it (IndexError)."""
    model = HUGE.model_dump()
    stage = {"id": "pretrain", "kind": "pretrain", "tokens": 1e13}
    pool = {"chip": "TPU-v5e", "count": 4096, "usd_per_chip_hour": 1.2}
    site = {"id": "sg", "country": "SG", "operator_hq": "SG", "pools": [pool]}
    workload = {"id": "w", "tenant": "t", "model": model, "stages": [stage]}
    sc = parse_scenario(
        {
            **{"straits": 1, "name": "x", "date": "2025-06-01"},
            **{"tenants": [{"id": "t", "hq": "SG"}], "sites": [site], "workloads": [workload]},
        }
    )
    plan = make_plan(sc, solver="greedy")
    assert plan.assignments == ()
    assert plan.unplaced[0].lost_codes == {"memory": 1}
