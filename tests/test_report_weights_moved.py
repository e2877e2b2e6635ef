"""The report's table of what moves between sites gives the weights' gigabytes the plan moves
(and charges egress for) between stages (pass atk91): it said "-" for every weights row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from straits.loading import load_scenario
from straits.plan import make_plan
from straits.report.geo import map_view
from straits.rules import ruleset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("kind", "what", "gb"),
    [
        ("data", "web-crawl", 60_000.0),
        ("data", "cn-dialogs", 200.0),
        ("weights", "chat-72b/pretrain", 144.0),
        ("weights", "chat-72b/sft", 144.0),
    ],
)
def test_every_movement_has_its_gigabytes(kind: str, what: str, gb: float) -> None:
    sc = load_scenario(EXAMPLES / "offshore-2025.yaml")
    plan = make_plan(sc, rules=ruleset(()), solver="greedy").to_json()
    assert dt.date.fromisoformat(plan["date"]) == sc.date
    moved = [m for m in map_view(plan, sc).movements if (m.kind, m.what) == (kind, what)]
    assert [m.gb for m in moved] == [gb]
