"""The report's table of what moves between sites gives the weights' gigabytes the plan moves
(and charges egress for) between stages (pass atk91): it said "-" for every weights row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from straits.loading import load_scenario
from straits.plan import make_plan
from straits.plan.transfer import weights_gb
from straits.report.geo import map_view
from straits.rules import ruleset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    ("kind", "what", "gb"),
    [
        ("data", "web-crawl", 60_000.0),
        ("data", "cn-dialogs", 200.0),
        ("weights", "chat-72b/sft", 144.0),
    ],
)
def test_every_movement_has_its_gigabytes(kind: str, what: str, gb: float) -> None:
    """The offshore example's moves. Its pretrain stage moved no weights after est33's
    estimator refit (pretrain and SFT on the same site's H800s; before, pretraining on H100s in
    Johor sent 144 GB to the SFT site): the test below holds every move of any plan."""
    sc = load_scenario(EXAMPLES / "offshore-2025.yaml")
    plan = make_plan(sc, rules=ruleset(()), solver="greedy").to_json()
    assert dt.date.fromisoformat(plan["date"]) == sc.date
    moved = [m for m in map_view(plan, sc).movements if (m.kind, m.what) == (kind, what)]
    assert [m.gb for m in moved] == [gb]


@pytest.mark.parametrize("example", ["offshore-2025.yaml", "h20-2025.yaml"])
def test_every_weights_movement_is_the_models_weights(example: str) -> None:
    """Whatever the plan moves: a weights row is its workload's weights in gigabytes, a data
    row its dataset's size."""
    sc = load_scenario(EXAMPLES / example)
    plan = make_plan(sc, rules=ruleset(()), solver="greedy").to_json()
    sizes = {d.id: float(d.size_gb) for d in sc.datasets}
    for m in map_view(plan, sc).movements:
        if m.kind == "weights":
            w = sc.workload(m.what.split("/")[0])
            assert m.gb == pytest.approx(weights_gb(w.model))
        else:
            assert m.gb == pytest.approx(sizes[m.what])
