"""The completion objective in its documented unit: weighted hours (a workload's weight times
the hours from the plan's start until its last stage ends), and in a weighted sum a price in
dollars per weighted hour."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from optimizer_cases import DAY0, SOLVERS, _setup, scenario, tokens_for
from straits.cli import app
from straits.errors import InputError
from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.alone import alone_bound
from straits.plan.bounds import standalone_bound
from straits.plan.cpsat_model import ModelTooLarge, Score
from straits.plan.lp_bound import lp_bound
from straits.plan.objectives import COMPLETION, objective
from straits.plan.result import Plan
from straits.plan.ticks import TICKS_PER_HOUR
from test_plan_bounds import _exact_optimum, _hostile


def weighted_hours(sc: Scenario, plan: Plan) -> float:
    """The weighted sum of completion times, from the plan's own assignments."""
    done: dict[str, float] = {}
    for a in plan.assignments:
        done[a.workload] = max(done.get(a.workload, 0.0), a.end_h)
    return sum(w.weight * done[w.id] for w in sc.workloads if w.id in done)


def weighted(weights: list[float], **kw: Any) -> Scenario:
    sc = scenario(workloads=len(weights), tokens=tokens_for(1.0), **kw)
    doc = sc.model_dump(mode="json", exclude_none=True)
    for w, k in zip(doc["workloads"], weights, strict=True):
        w["weight"] = k
    return parse_scenario(doc)


@pytest.mark.parametrize("solver", SOLVERS)
def test_the_completion_objective_is_in_weighted_hours(solver: str) -> None:
    sc = weighted([0.5, 2.0, 0.001])
    plan = make_plan(sc, objective="completion", solver=solver, time_limit=10)
    assert not plan.unplaced
    assert plan.objective_unit == "weighted h"
    expected = weighted_hours(sc, plan)
    assert expected > 0
    assert plan.objective_value == pytest.approx(expected, rel=1e-6)
    if solver != "greedy":  # the greedy plan it started from and the bound, in the same unit
        assert plan.baseline_value is not None and plan.baseline_value >= expected - 1e-6
        assert plan.bound_value is not None
        assert plan.baseline_value < 10 * expected
    if plan.bound_value is not None:
        assert plan.bound_value <= expected + 1e-6


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_weighted_sum_prices_completion_in_dollars_per_weighted_hour(solver: str) -> None:
    sc = weighted([0.25, 3.0])
    plan = make_plan(sc, objective="cost+1000*completion", solver=solver, time_limit=10)
    assert plan.objective_unit == "USD"
    expected = plan.objective_usd + 1000 * weighted_hours(sc, plan)
    assert plan.objective_value == pytest.approx(expected, rel=1e-6)
    if plan.bound_value is not None:
        assert plan.bound_value <= expected + 1e-6


def two_sites(weight: float = 1.0) -> Scenario:
    """A two-day run (64 H100s, about $6,100 at $2 a chip-hour in Singapore) and a Malaysian
    pool at $1 that has no chips for the first day: waiting a day saves about $3,070, so the
    wait pays at a completion price under about $128 per weighted hour."""
    sc = scenario(tokens=tokens_for(2.0))
    doc = sc.model_dump(mode="json", exclude_none=True)
    doc["workloads"][0]["weight"] = weight
    doc["sites"].append(
        {
            "id": "my",
            "country": "MY",
            "operator_hq": "MY",
            "pools": [
                {
                    "chip": "H100-SXM",
                    "count": 64,
                    "usd_per_chip_hour": 1.0,
                    "availability": [
                        {"start": DAY0, "end": DAY0 + dt.timedelta(days=1), "count": 0}
                    ],
                }
            ],
        }
    )
    return parse_scenario(doc)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    ("goal", "weight", "site"),
    [
        ("cost+100*completion", 1.0, "my"),  # $2,400 for the day's wait: it pays
        ("cost+200*completion", 1.0, "sg"),  # $4,800: it does not
        ("cost+1000*completion", 0.1, "my"),  # $100 per hour
        ("cost+1000*completion", 0.2, "sg"),  # $200 per hour
        ("cost+completion", 100.0, "my"),
        ("cost+completion", 200.0, "sg"),
    ],
)
def test_the_price_of_a_weighted_hour_decides_whether_to_wait(
    solver: str, goal: str, weight: float, site: str
) -> None:
    sc = two_sites(weight)
    plan = make_plan(sc, objective=goal, solver=solver, time_limit=10)
    (a,) = plan.assignments
    assert a.site == site
    wait = a.start_h
    assert (wait >= 24 - 1e-6) == (site == "my")


def test_weights_finer_than_thousandths_are_refused() -> None:
    with pytest.raises(InputError) as err:
        weighted([1.0, 0.0015])
    assert err.value.path == "workloads[1].weight"
    assert "steps of 0.001" in err.value.detail


def test_the_smallest_weight_counts() -> None:
    """A weight of 0.001 (the least the scenario accepts) still counts in the model: alone,
    it is the whole objective."""
    sc = weighted([0.001])
    plan = make_plan(sc, objective="completion", solver="cpsat", time_limit=10)
    (a,) = plan.assignments
    assert plan.objective_value == pytest.approx(0.001 * a.end_h, rel=1e-6)
    assert plan.objective_value is not None and plan.objective_value > 0


def test_the_cli_reports_weighted_hours(tmp_path: Path) -> None:
    """`plan --objective completion -o json`: the value is the weights times the hours from the
    plan's start to each workload's last end, as its own assignments give them."""
    sc = weighted([0.5, 2.0])
    path = tmp_path / "weighted.json"
    path.write_text(json.dumps(sc.model_dump(mode="json", exclude_none=True)))
    args = ["plan", str(path), "--objective", "completion", "--solver", "greedy", "-o", "json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    t0 = dt.datetime.combine(DAY0, dt.time(), tzinfo=dt.UTC)
    done: dict[str, float] = {}
    for a in doc["assignments"]:
        end = dt.datetime.fromisoformat(a["end"])
        end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
        done[a["workload"]] = max(done.get(a["workload"], 0.0), (end - t0).total_seconds() / 3600)
    expected = 0.5 * done["w0"] + 2.0 * done["w1"]
    assert doc["objective_unit"] == "weighted h"
    assert doc["objective_value"] == pytest.approx(expected, abs=0.01)


def test_the_cli_refuses_a_weight_finer_than_thousandths(tmp_path: Path) -> None:
    doc = weighted([1.0, 1.0]).model_dump(mode="json", exclude_none=True)
    doc["workloads"][1]["weight"] = 0.0015
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(doc))
    r = CliRunner().invoke(app, ["plan", str(path), "--objective", "completion", "-q"])
    assert r.exit_code == 2
    assert "workloads[1].weight" in r.output and "steps of 0.001" in r.output


ODD = [0.001, 0.003, 0.25, 1.0, 7.5, 1_000_000.0]


@pytest.mark.parametrize(
    ("goal", "weights", "scale"),
    [
        ("completion", ODD, 60_000),  # ticks times thousandths of a weight
        ("completion", [1.0], 60_000),
        ("cost+1000*completion", ODD, 60),  # sixtieths of a dollar, as cost+1000*time
        ("cost+100*completion", ODD, 600),
        ("cost+80*completion", ODD, 6_000),
        ("cost+completion", ODD, 60_000),
        ("cost+completion", [1.0, 2.0, 30.0], 60),  # whole weights: whole dollars an hour
        ("cost+0.5*completion", ODD, 600_000),  # $0.0005 a tick-hour for the weight 0.001
        ("cost+1000*time", ODD, 60),
        ("cost", ODD, 1),
    ],
)
def test_the_model_counts_a_weighted_hour_at_its_price(
    goal: str, weights: list[float], scale: int
) -> None:
    """Model units per tick of a workload's completion, back in the objective's unit per hour,
    are exactly the term's price times the weight; the model's units are the coarsest that the
    scenario's weights allow."""
    sc = weighted(weights)
    obj = objective(goal).fitted(sc)
    assert obj.model_scale == scale
    assert obj.fitted(sc) is obj
    k = obj.weight(COMPLETION)
    for w in sc.workloads:
        per_hour = obj.done_weight(w) * TICKS_PER_HOUR / obj.model_scale
        if not k:
            assert obj.done_weight(w) == 0
        else:
            assert per_hour == pytest.approx(k * w.weight, rel=1e-12)


@pytest.mark.parametrize("goal", ["completion", "cost+1000*completion", "cost+completion"])
def test_the_bounds_are_in_the_objectives_unit(goal: str) -> None:
    """The search-free bound and the workloads-alone bound read the weights as the plan's
    value does: they hold for the greedy plan and are of its size."""
    sc = weighted([0.5, 2.0, 0.001])
    cand, _, plan, pf = _setup(sc, goal)
    obj = objective(goal)
    value = obj.plan_value(plan, sc, cand.energy_of)
    alone = alone_bound(pf, obj)
    assert alone is not None
    for bound in (standalone_bound(pf, obj), alone.bound):
        assert bound.unplaced == 0
        assert value / 3 <= bound.value <= value + 1e-6


WEIGHTED_GOALS = [
    "completion",
    "cost+1000*completion",
    "cost+completion",
    "cost+80*completion",
    "cost+0.5*completion",
]


@st.composite
def _weighted_hostile(draw: Any) -> Scenario:
    """test_plan_bounds' hostile scenarios (windows, bought chips, soft and hard deadlines,
    budgets, chains) with a weight per workload from the least accepted to a thousand."""
    doc = draw(_hostile()).model_dump(mode="json", exclude_none=True)
    for w in doc["workloads"]:
        w["weight"] = draw(st.sampled_from([0.001, 0.003, 0.25, 1.0, 7.5, 1000.0]))
    return parse_scenario(doc)


@given(sc=_weighted_hostile(), goal=st.sampled_from(WEIGHTED_GOALS))
@settings(max_examples=20, deadline=None)
def test_weighted_bounds_hold_and_plans_report_weighted_hours(sc: Scenario, goal: str) -> None:
    """With uneven weights: neither bound is above the greedy plan or the plan CP-SAT proves
    optimal, each valued exactly, and the plan the solver returns reports the weights times its
    own hours, with its bound below it and never worse than its greedy baseline."""
    cand, _, plan, pf = _setup(sc, goal)
    obj = objective(goal)
    alone = alone_bound(pf, obj)
    assert alone is not None
    plans = [Score(len(plan.unplaced), obj.plan_value(plan, sc, cand.energy_of))]
    try:
        best = _exact_optimum(pf, goal, plan)
    except ModelTooLarge:  # penalties of $1e12 a day in 1/60,000 dollars: the greedy plan stands
        best = None
    plans += [best] if best is not None else []
    for bound in (standalone_bound(pf, obj), alone.bound, lp_bound(pf, alone)):
        assert bound is not None
        for ref in plans:
            assert bound.unplaced <= ref.unplaced
            if bound.unplaced == ref.unplaced:
                assert bound.value <= ref.value + 1e-6 + 1e-9 * abs(ref.value)
    answer = make_plan(sc, objective=goal, solver="cpsat", time_limit=3)
    k = obj.weight(COMPLETION)
    expected = k * weighted_hours(sc, answer) + (
        answer.objective_usd if goal != "completion" else 0
    )
    assert answer.objective_value is not None
    assert answer.objective_value == pytest.approx(expected, rel=1e-9, abs=1e-9)
    if answer.bound_value is not None:
        assert answer.bound_value <= answer.objective_value + 1e-9
    if answer.baseline_value is not None and answer.baseline_unplaced == len(answer.unplaced):
        tol = 0.5 if obj.unit == "USD" else 1e-6
        assert answer.objective_value <= answer.baseline_value + tol
