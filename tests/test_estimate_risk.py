"""Planning against the high end of the estimate (`risk: p90`, `straits plan --risk p90`)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from optimizer_cases import DAY0, MODEL
from straits.catalog import get_chip
from straits.estimate import estimate_training
from straits.loading import parse_scenario
from straits.model.scenario import ModelSpec, Scenario
from straits.plan import make_plan

CHIPS = 64
PRICE = 2.0


def central(tokens: float) -> Any:
    return estimate_training(ModelSpec(**MODEL), tokens, get_chip("H100-SXM"), CHIPS)


def tokens_for(days: float) -> float:
    """Tokens of a run whose central estimate takes ``days`` on 64 H100s (hours are
    proportional to tokens at a fixed batch)."""
    hours: float = central(1e11).hours
    return 1e11 * days * 24.0 / hours


def scenario(tokens: float, risk: str = "p50", **workload: Any) -> Scenario:
    return parse_scenario(
        {
            "straits": 1,
            "name": "risk",
            "date": DAY0,
            "risk": risk,
            "tenants": [{"id": "t", "hq": "SG"}],
            "sites": [
                {
                    "id": "sg",
                    "country": "SG",
                    "operator_hq": "SG",
                    "pools": [{"chip": "H100-SXM", "count": CHIPS, "usd_per_chip_hour": PRICE}],
                }
            ],
            "workloads": [
                {
                    "id": "w",
                    "tenant": "t",
                    "model": MODEL,
                    **workload,
                    "stages": [
                        {"id": "pretrain", "kind": "pretrain", "tokens": tokens, "chips": CHIPS}
                    ],
                }
            ],
        }
    )


@pytest.mark.parametrize("solver", ["greedy", "cpsat"])
def test_p90_schedules_and_prices_the_high_end(solver: str) -> None:
    tokens = tokens_for(2.0)
    est = central(tokens)
    p50 = make_plan(scenario(tokens), solver=solver, time_limit=5)
    p90 = make_plan(scenario(tokens, "p90"), solver=solver, time_limit=5)
    (a50,), (a90,) = p50.assignments, p90.assignments
    assert a50.chip_hours == pytest.approx(est.chip_hours)
    assert a90.chip_hours == pytest.approx(est.chip_hours_high)
    assert a90.compute_usd == pytest.approx(PRICE * est.chip_hours_high)
    assert a90.end_h - a90.start_h == pytest.approx(est.hours_high, rel=1e-3)
    for a in (a50, a90):  # both report the same interval
        assert a.chip_hours_range == pytest.approx((est.chip_hours_low, est.chip_hours_high))


def test_a_hard_deadline_the_central_estimate_meets_and_the_high_end_misses() -> None:
    """A run of 2.5 days (central) due by the end of day 3: placed at p50; at p90 it would
    take 2.5 x the interval's high factor (about 3.8 days), so it is not placed, for its
    deadline."""
    tokens = tokens_for(2.5)
    deadline = DAY0 + dt.timedelta(days=2)  # the end of the third day: 72 hours
    assert central(tokens).hours < 72 < central(tokens).hours_high
    p50 = make_plan(scenario(tokens, deadline=deadline), solver="greedy")
    p90 = make_plan(scenario(tokens, "p90", deadline=deadline), solver="greedy")
    assert not p50.unplaced
    (u,) = p90.unplaced
    assert "deadline" in u.summary()


def test_a_budget_the_central_estimate_fits_and_the_high_end_breaks() -> None:
    tokens = tokens_for(2.0)
    est = central(tokens)
    budget = PRICE * (est.chip_hours + est.chip_hours_high) / 2
    assert not make_plan(scenario(tokens, budget_usd=budget), solver="greedy").unplaced
    (u,) = make_plan(scenario(tokens, "p90", budget_usd=budget), solver="greedy").unplaced
    assert "budget" in u.summary()


def straits(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args], capture_output=True, text=True, timeout=300
    )


def test_plan_risk_flag_end_to_end(example_path: Path) -> None:
    runs = {}
    for risk in ("p50", "p90"):
        p = straits("plan", str(example_path), "--json", "--solver", "greedy", "--risk", risk)
        assert p.returncode == 0, p.stderr
        runs[risk] = json.loads(p.stdout)
    for a in runs["p90"]["assignments"]:
        if a["chip_hours_high"] is None:  # serving: no interval, no change
            assert a["chip_hours_low"] is None
            continue
        assert a["chip_hours_low"] < a["chip_hours"] == pytest.approx(a["chip_hours_high"], abs=0.1)
    assert runs["p90"]["total_cost_usd"] > runs["p50"]["total_cost_usd"]
    bad = straits("plan", str(example_path), "--risk", "p99")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--risk" in bad.stderr and "p50 or p90" in bad.stderr


def test_scenario_risk_is_validated() -> None:
    from straits.errors import ScenarioError

    with pytest.raises(ScenarioError) as err:
        scenario(1e11, "p75")
    assert "risk" in str(err.value)


@pytest.mark.parametrize(
    ("tokens", "objective", "deadline"),
    [
        (1e12, "cost", None),
        (1e12, "time", None),
        (1e13, "cost", "2025-07-01"),
        (1e13, "time", None),
    ],
)
def test_p90_never_budgets_a_stage_fewer_chip_hours_than_p50(
    tokens: float, objective: str, deadline: str | None
) -> None:
    """The planner picks the chip and the count: at p90 it may pick more chips (for a deadline
    the high end would miss on fewer), never a placement of fewer chip-hours than at p50."""
    pools = [
        {"chip": "H100-SXM", "count": 4096, "usd_per_chip_hour": 2.0},
        {"chip": "A100-SXM-80GB", "count": 8192, "usd_per_chip_hour": 1.0},
    ]
    stage = {"id": "pretrain", "kind": "pretrain", "tokens": tokens}
    workload = {"id": "w", "tenant": "t", "model": MODEL, "stages": [stage]}
    if deadline:
        workload["deadline"] = deadline
    placed = {}
    for risk in ("p50", "p90"):
        sc = parse_scenario(
            {
                **{"straits": 1, "name": "risk", "date": DAY0, "risk": risk},
                "tenants": [{"id": "t", "hq": "SG"}],
                "sites": [{"id": "sg", "country": "SG", "operator_hq": "SG", "pools": pools}],
                "workloads": [workload],
            }
        )
        (placed[risk],) = make_plan(sc, objective=objective, solver="greedy").assignments
    assert placed["p90"].chip_hours >= placed["p50"].chip_hours


@pytest.mark.parametrize("risk", ["p50", "p90"])
def test_a_plan_says_where_it_budgeted_and_what_the_high_end_costs(risk: str) -> None:
    """The plan records its `risk`, and `total_cost_usd_high` (the report's "up to ... at the
    estimator's high end", which no plan wrote before): the p50 plan's equals the p90 total."""
    from straits.cli.plan_view import assignments_table, totals_line
    from straits.report.view import build_view
    from straits.rules.engine import ruleset

    tokens = tokens_for(2.0)
    plans = {r: make_plan(scenario(tokens, r), solver="greedy") for r in ("p50", "p90")}
    doc = plans[risk].to_json()
    assert doc["risk"] == risk
    assert doc["total_cost_usd_high"] == pytest.approx(plans["p90"].total_cost_usd, rel=1e-6)
    assert doc["total_cost_usd_high"] >= doc["total_cost_usd"]
    view = build_view(doc, scenario(tokens, risk), ruleset(), source="test")
    assert view.interval["total_cost_usd_high"] == doc["total_cost_usd_high"]
    title = str(assignments_table(doc).title)
    assert ("p90" in title) == (risk == "p90")
    assert ("high end" in totals_line(doc).plain) == (risk == "p50")
