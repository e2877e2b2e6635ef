"""A pool's chart title names the chips it has over the plan's span, availability windows
included (web50). A pool of 512 chips that a window grows to 4,096 from the plan's first day
ran a stage on 4,096: the title said "peak 4,096 of 512 chips", a pool over its capacity."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.model.scenario import Scenario
from straits.report.figures import pool_figure
from straits.report.usage import pool_views

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _scenario(windows: list[dict[str, Any]]) -> Scenario:
    doc = yaml.safe_load((EXAMPLES / "offshore-2025.yaml").read_text())
    for site in doc["sites"]:
        for pool in site["pools"]:
            if site["id"] == "my-johor":
                pool["count"], pool["availability"] = 512, windows
    return Scenario.model_validate(doc)


def _plan(chips: int) -> dict[str, Any]:
    row = {"workload": "chat-72b", "site": "my-johor", "chip": "H100-SXM", "chips": chips}
    return {
        "assignments": [
            {**row, "stage": "pretrain", "start": "2025-06-02T00:00:00Z",
             "end": "2025-07-01T00:00:00Z", "cost_usd": 1.0},
        ]
    }  # fmt: skip


@pytest.mark.parametrize(
    ("windows", "chips", "said"),
    [
        ([{"start": "2025-06-01", "count": 4096}], 4096, "peak 4,096 of 4,096 chips"),
        ([{"start": "2025-06-20", "count": 4096}], 512, "peak 512 of up to 4,096 chips"),
        ([], 512, "peak 512 of 512 chips"),
    ],
)
def test_the_title_counts_the_chips_the_windows_give(
    windows: list[dict[str, Any]], chips: int, said: str
) -> None:
    sc = _scenario(windows)
    start = dt.datetime.combine(sc.date, dt.time(), tzinfo=dt.UTC)
    view = next(v for v in pool_views(_plan(chips), sc, start) if v.key == "my-johor/H100-SXM")
    assert view.peak == chips
    title = pool_figure(view, {})["layout"]["title"]["text"]
    assert said in title
