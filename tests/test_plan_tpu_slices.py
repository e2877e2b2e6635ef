"""The planner plans a TPU stage at slice sizes only (pass atk93: a pretraining stage was
placed on 7 v6e chips, no Cloud TPU slice, and the SkyPilot export then refused its task)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from straits.catalog.tpu_slices import GENERATIONS, TPU_SLICES
from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.plan.options import size_menu, slice_menu
from straits.rules import ruleset
from test_export_skypilot_tpu import SCENARIO


def _scenario(chip: str, count: int) -> dict[str, Any]:
    """test_export_skypilot_tpu's scenario: one TPU pool of ``count`` chips, the stage's chips
    left to the planner."""
    doc = copy.deepcopy(SCENARIO)
    doc["sites"][0]["pools"][0].update(chip=chip, count=count)
    del doc["workloads"][0]["stages"][0]["chips"]
    return doc


@pytest.mark.parametrize(
    ("chip", "count"),
    [("TPU-v6e", 7), ("TPU-v6e", 300), ("TPU-v5e", 3), ("TPU-v4", 100), ("TPU-v5p", 70)],
)
def test_a_tpu_stage_is_placed_on_a_slice(chip: str, count: int) -> None:
    sc = parse_scenario(_scenario(chip, count), source="tpu")
    plan = make_plan(sc, rules=ruleset(()), solver="greedy").to_json()
    placed = [(a["chip"], a["chips"]) for a in plan["assignments"]]
    assert [c for c, _ in placed] == [chip] or plan["unplaced"]
    for _chip, n in placed:
        assert TPU_SLICES[chip].chips_ok(n), (chip, n)


def test_a_pool_that_holds_no_slice_large_enough_leaves_the_stage_unplaced() -> None:
    sc = parse_scenario(_scenario("TPU-v4", 3), source="tpu")  # v4's smallest slice is 4
    plan = make_plan(sc, rules=ruleset(()), solver="greedy").to_json()
    assert plan["assignments"] == []
    assert [u["stage"] for u in plan["unplaced"]] == ["pre"]


@settings(max_examples=200, deadline=None)
@given(
    chip=st.sampled_from(sorted(GENERATIONS)),
    need=st.integers(1, 7000),
    count=st.integers(1, 7000),
)
def test_a_slice_menu_holds_slices_only_within_the_pool(chip: str, need: int, count: int) -> None:
    s = GENERATIONS[chip]
    menu = slice_menu(s, need, count, size_menu(need, count))
    assert menu == sorted(set(menu))
    for n in menu:
        assert s.chips_ok(n) and need <= n <= count
    smallest = s.at_least(need)
    assert (smallest in menu) == (smallest is not None and smallest <= count)


@pytest.mark.parametrize(
    ("chip", "chips", "placed"),
    [
        ("TPU-v6e", 7, False),  # no v6e slice of 7 chips
        ("TPU-v4", 12, False),  # v4: 4, 8, 16, 32, then cubes of 64
        ("TPU-v4", 100, False),
        ("TPU-v5p", 2, False),
        ("TPU-v6e", 8, True),
        ("TPU-v4", 128, True),
    ],
)
def test_a_stage_fixing_chips_no_slice_holds_is_not_placed_on_them(
    chip: str, chips: int, placed: bool
) -> None:
    """A stage's own `chips` on a TPU pool is a slice or no option there (atk29: the fixed
    count bypassed the slice menu, and 7 v6e chips were planned and priced)."""
    doc = copy.deepcopy(SCENARIO)
    doc["sites"][0]["pools"][0].update(chip=chip, count=256)
    doc["workloads"][0]["stages"][0]["chips"] = chips
    sc = parse_scenario(doc, source="tpu")
    for solver in ("greedy", "cpsat"):
        plan = make_plan(sc, rules=ruleset(()), solver=solver, time_limit=5).to_json()
        assert [(a["chip"], a["chips"]) for a in plan["assignments"]] == (
            [(chip, chips)] if placed else []
        )
        if not placed:
            assert plan["unplaced"][0]["lost_codes"] == {"capacity": 1}
