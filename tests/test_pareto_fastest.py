"""The frontier's fastest end is the fastest plan (pass atk91). The makespan solve ran on the
cost portfolio: its choices carried dollars and the late penalties a cost model adds were left
out, so it found the cheapest plan without penalties. On the offshore example the "fastest"
point took 6,486 h at $12.21M, slower and cheaper than the cheapest plan (3,821 h, $13.04M,
which meets the soft deadline): `straits plan --objective time` finishes in 2,155 h."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import H20_BEFORE
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.plan.candidates import Candidates
from straits.plan.pareto import frontier
from straits.rules import ruleset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

#: one model tick (minutes) and the model's rounding of a stage's hours up to ticks
SLACK_HOURS = 0.2


@pytest.mark.parametrize(
    ("example", "packs"), [("offshore-2025.yaml", ()), ("h20-2025.yaml", (H20_BEFORE,))]
)
def test_the_frontier_runs_from_the_fastest_plan_to_the_cheapest(
    example: str, packs: tuple[Path, ...]
) -> None:
    sc = load_scenario(EXAMPLES / example)
    rs = ruleset(packs)
    cheap = make_plan(sc, rules=rs, objective="cost", time_limit=20)
    fast = make_plan(sc, rules=rs, objective="time", time_limit=20)
    points = frontier(Candidates(sc, rs, regime=sc.regime, date=sc.date), points=3, time_limit=20)
    assert points and all(p.unplaced == 0 for p in points)
    fastest = min(points, key=lambda p: p.makespan_hours)
    assert fastest.makespan_hours <= fast.makespan_hours + SLACK_HOURS
    # no point is cheaper than the cheapest plan once its late penalty is counted: these
    # plans meet their deadlines, so no point is cheaper at all
    assert cheap.penalty_usd == 0
    cheapest = min(points, key=lambda p: p.cost_usd)
    assert cheapest.cost_usd == pytest.approx(cheap.total_cost_usd, rel=1e-3)
    assert max(p.makespan_hours for p in points) <= cheap.makespan_hours + SLACK_HOURS


def test_each_point_is_the_earliest_plan_of_its_cost_in_every_run() -> None:
    """Many plans share a point's cost (start times cost nothing); the cost solve's interleaved
    workers returned any of them, so the same frontier of the offshore example had its middle
    point at 2,816.6 h, 2,311.7 h or 2,308.4 h at one cost from one run to the next, the later
    ones beaten on time by a plan of the same cost. Each point is now the earliest-ending plan
    of its proved cost (``pareto._earliest``): the same points in every run."""
    sc = load_scenario(EXAMPLES / "offshore-2025.yaml")
    rs = ruleset(())
    runs = [
        [
            p.to_json()
            for p in frontier(Candidates(sc, rs, regime=sc.regime, date=sc.date), points=3)
        ]
        for _ in range(3)
    ]
    assert len(runs[0]) == 3 and all(p["status"] == "optimal" for p in runs[0])
    assert runs[1] == runs[0] and runs[2] == runs[0]
    cheap = make_plan(sc, rules=rs, objective="cost", time_limit=20)
    # the cheapest point ends no later than `straits plan`'s cheapest plan (one of its cost)
    assert runs[0][-1]["makespan_hours"] <= cheap.makespan_hours + SLACK_HOURS
