"""The greedy planner prices the lateness a stage's choice makes certain for the stages after it.

A stage that ends in time for itself can still leave its successors, at their fastest, too
little time to meet a soft deadline. Before issue 18's sixteenth pass the planner charged a soft
deadline's penalty only on the stage that ended late, so it booked the cheap pool for the first
stage and the workload paid the penalty on the last: on the 1,000 x 200 benchmark five 60-day
serving stages paid about $5.3M each that way (seed 20002)."""

from __future__ import annotations

import datetime as dt

from lns_helpers import with_pool
from optimizer_cases import DAY0, _setup, assert_sound, scenario, tokens_for
from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan

PER_DAY = 1_000_000.0


def blocked_then_due() -> Scenario:
    """``w0``, a five-day run due on day 6 (hard), takes the cheap Singapore pool first (it is
    first by deadline). ``w1`` runs two five-day stages, ``a`` then ``b``, due on day 12 (soft,
    $1M a day late); a dearer pool in a second Singapore site is free from day 0. ``a`` on the
    cheap pool ends on day 10, in time for itself, and leaves ``b`` two days late wherever it
    runs; ``a`` on the dear pool ends on day 5 and ``b`` makes the deadline."""
    base = scenario(workloads=2, tokens=tokens_for(5.0))
    doc = base.model_dump(mode="json", exclude_none=True)
    w0, w1 = doc["workloads"]
    w0.update(deadline=str(DAY0 + dt.timedelta(days=6)), deadline_policy="hard")
    stage = w1["stages"][0]
    w1.update(
        deadline=str(DAY0 + dt.timedelta(days=12)),
        deadline_policy="soft",
        late_penalty_usd_per_day=PER_DAY,
        stages=[{**stage, "id": "a"}, {**stage, "id": "b", "after": ["a"]}],
    )
    return with_pool(parse_scenario(doc), "sg2", "SG", 6.0)


def _sites(plan_assignments: list[dict[str, object]], workload: str) -> dict[object, object]:
    return {a["stage"]: a["site"] for a in plan_assignments if a["workload"] == workload}


def test_the_first_stage_takes_the_dear_pool_when_the_cheap_one_would_make_the_last_late() -> None:
    sc = blocked_then_due()
    plan = _setup(sc)[2]
    doc = plan.to_json()
    assert _sites(doc["assignments"], "w0") == {"pretrain": "sg"}
    assert _sites(doc["assignments"], "w1")["a"] == "sg2"  # the dear pool, free at once
    late = [a for a in plan.assignments if a.workload == "w1" and a.late_hours > 0]
    assert late == []
    assert plan.penalty_usd == 0
    assert_sound(sc, plan)


def test_the_lateness_foreseen_is_never_charged_to_the_plan() -> None:
    """Ranking only: a plan's penalty is what its last stages' ends cost, as before. With the
    dear pool gone, ``w1`` must be late; it pays once, for the days its last stage is late."""
    doc = blocked_then_due().model_dump(mode="json", exclude_none=True)
    doc["sites"] = [s for s in doc["sites"] if s["id"] != "sg2"]
    sc = parse_scenario(doc)
    plan = make_plan(sc, solver="greedy")
    ends = {a.stage: a for a in plan.assignments if a.workload == "w1"}
    assert ends["a"].late_hours == 0 and ends["a"].penalty_usd == 0
    days_late = ends["b"].late_hours / 24.0
    assert days_late > 1.5
    assert plan.penalty_usd is not None
    assert abs(plan.penalty_usd - days_late * PER_DAY) < 1.0
