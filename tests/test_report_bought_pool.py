"""A pool's chart title counts the chips bought for its stages (pass atk91). On the H20
example (planned under the rules of 2025-04-08, conftest.H20_BEFORE) the serving stage runs on
2,048 H20s bought for hz-idc; the title said "1 stage, peak 0 of 256 chips, 0% used"."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from conftest import H20_BEFORE
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.report.figures import pool_figure
from straits.report.usage import pool_views
from straits.rules import ruleset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("pool", "rented", "bought", "title"),
    [
        ("hz-idc/H20", 0, 2048, "peak 0 of 256 chips and 2,048 bought"),
        ("cn-guiyang/Ascend-910B", 256, 0, "peak 256 of 512 chips,"),
    ],
)
def test_a_pool_s_title_counts_its_bought_chips(
    pool: str, rented: int, bought: int, title: str
) -> None:
    sc = load_scenario(EXAMPLES / "h20-2025.yaml")
    plan = make_plan(sc, rules=ruleset((H20_BEFORE,)), solver="greedy").to_json()
    start = dt.datetime.combine(sc.date, dt.time(), tzinfo=dt.UTC)
    view = next(v for v in pool_views(plan, sc, start) if v.key == pool)
    assert (view.peak, view.bought_peak) == (rented, bought)
    text = pool_figure(view, {})["layout"]["title"]["text"]
    assert title in text
    assert ("bought" in text) == (bought > 0)
