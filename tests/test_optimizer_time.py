"""The solvers over time: windows without chips, maintenance, bought chips and their lead time,
hard and soft deadlines, and the search-free bound."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invariants import capacity_violations, precedence_violations
from optimizer_cases import (
    DAY0,
    SOLVERS,
    _setup,
    hours,
    scenario,
    tokens_for,
)
from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.plan.bounds import standalone_bound
from straits.plan.objectives import objective
from straits.plan.reasons import ReasonCode
from straits.rules import RuleSet
from straits.simulate.generate import generate


# --- capacity over time --------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
def test_a_stage_waits_for_a_window_without_chips(solver: str) -> None:
    pool = {
        "chip": "H100-SXM",
        "count": 64,
        "usd_per_chip_hour": 2.0,
        "availability": [{"start": DAY0, "end": DAY0 + dt.timedelta(days=10), "count": 0}],
    }
    sc = scenario(pool=pool)
    plan = make_plan(sc, solver=solver)
    (a,) = plan.assignments
    assert a.start_h >= hours(DAY0 + dt.timedelta(days=10)) - 1e-6
    assert capacity_violations(sc, plan) == []


def test_a_window_that_ends_after_the_deadline_is_the_reason() -> None:
    """The cheap pool is down until after the hard deadline: it loses on its window, not on
    the deadline (it would make the deadline on an empty pool) nor on capacity."""
    pool = {
        "chip": "H100-SXM",
        "count": 64,
        "usd_per_chip_hour": 1.0,
        "availability": [{"start": DAY0, "end": DAY0 + dt.timedelta(days=30), "count": 0}],
    }
    sc = scenario(pool=pool, deadline=DAY0 + dt.timedelta(days=10))
    doc = sc.model_dump(mode="json", exclude_none=True)
    doc["sites"].append(
        {
            "id": "my",
            "country": "MY",
            "operator_hq": "MY",
            "pools": [{"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 3.0}],
        }
    )
    sc = parse_scenario(doc)
    plan = make_plan(sc, solver="greedy")
    (d,) = plan.diagnosis
    assert d.chosen == "my/H100-SXM"
    assert [r.code for r in d.rejections] == [ReasonCode.WINDOW]


@pytest.mark.parametrize("solver", SOLVERS)
def test_stages_do_not_run_through_maintenance(solver: str) -> None:
    """The pool drops to 8 chips from day 1 to day 6; a 64-chip run of about two days cannot
    straddle the window, so the second of two runs waits for the window's end."""
    down, up = DAY0 + dt.timedelta(days=1), DAY0 + dt.timedelta(days=6)
    pool = {
        "chip": "H100-SXM",
        "count": 64,
        "usd_per_chip_hour": 2.0,
        "availability": [{"start": down, "end": up, "count": 8}],
    }
    sc = scenario(pool=pool, workloads=2, tokens=tokens_for(0.6))
    plan = make_plan(sc, solver=solver)
    assert capacity_violations(sc, plan) == []
    assert len(plan.assignments) == 2
    for a in plan.assignments:
        assert a.end_h <= hours(down) + 1e-6 or a.start_h >= hours(up) - 1e-6


# --- bought chips --------------------------------------------------------------------------------
def _buyable(count: int = 0) -> dict[str, Any]:
    return {
        "chip": "H100-SXM",
        "count": count,
        "usd_per_chip_hour": 2.0,
        "procurable": {"max": 64, "usd_per_chip": 25_000, "lead_days": 30},
    }


@pytest.mark.parametrize("solver", SOLVERS)
def test_bought_chips_arrive_after_their_lead_time_and_carry_capex(solver: str) -> None:
    sc = scenario(hq="US", pool=_buyable())
    plan = make_plan(sc, solver=solver)
    (a,) = plan.assignments
    assert a.bought
    assert a.start_h >= 30 * 24 - 1e-6
    assert a.capex_usd > 0
    assert capacity_violations(sc, plan) == []


def test_buying_is_refused_where_procure_is_unlawful(rules: RuleSet) -> None:
    """A tenant headquartered in China may not buy H100s in Singapore (the 2023 headquarters
    rule): the plan leaves the stage out, with a procurement code, and cites the rule."""
    sc = scenario(hq="CN", pool=_buyable())
    plan = make_plan(sc, rules=rules)
    assert not plan.assignments
    (u,) = plan.unplaced
    assert u.lost_codes.get("procurement") == 1
    assert plan.why_not and "headquarters" in plan.why_not[0].text


# --- deadlines -----------------------------------------------------------------------------------
def test_hard_deadline_conflict_is_explained() -> None:
    sc = scenario(workloads=2, tokens=tokens_for(12.0), deadline=DAY0 + dt.timedelta(days=19))
    plan = make_plan(sc)
    assert len(plan.assignments) == 1 and len(plan.unplaced) == 1
    assert plan.status == "infeasible"
    (why,) = plan.why_not
    assert set(why.constraints) == {"deadline 2025-06-20", "capacity of sg/H100-SXM"}


def test_greedy_looks_past_its_shortlist_when_the_best_options_are_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a shortlist of one option per stage, the second run finds the cheap pool busy
    until after its hard deadline: the greedy planner goes down the ranking to the dearer
    pool instead of leaving the run unplaced, and says why the cheap pool lost."""
    import straits.plan.greedy as greedy

    monkeypatch.setattr(greedy, "TOP_BY_OBJECTIVE", 1)
    monkeypatch.setattr(greedy, "TOP_BY_FINISH", 0)
    monkeypatch.setattr(greedy, "EXAMINE_ALL_UP_TO", 0)
    base = scenario(workloads=2, tokens=tokens_for(12.0), deadline=DAY0 + dt.timedelta(days=19))
    dear = {
        "id": "my",
        "country": "MY",
        "operator_hq": "MY",
        "pools": [{"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 3.0}],
    }
    doc = base.model_dump(mode="json", exclude_none=True)
    doc["sites"].append(dear)
    sc = parse_scenario(doc)
    plan = make_plan(sc, solver="greedy")
    assert not plan.unplaced
    assert sorted(a.site for a in plan.assignments) == ["my", "sg"]
    assert capacity_violations(sc, plan) == []
    second = next(d for d in plan.diagnosis if d.chosen and d.chosen.startswith("my/"))
    assert [r.code for r in second.rejections] == [ReasonCode.CAPACITY]


def test_soft_deadline_places_late_and_charges_the_penalty() -> None:
    sc = scenario(
        workloads=2,
        tokens=tokens_for(12.0),
        deadline=DAY0 + dt.timedelta(days=19),
        deadline_policy="soft",
        late_penalty_usd_per_day=10_000,
    )
    plan = make_plan(sc)
    assert not plan.unplaced
    late = [a for a in plan.assignments if a.late_hours > 0]
    assert len(late) == 1
    assert late[0].penalty_usd == pytest.approx(late[0].late_hours / 24 * 10_000, rel=1e-6)
    assert plan.objective_usd == pytest.approx(plan.total_cost_usd + late[0].penalty_usd)
    assert precedence_violations(sc, plan) == []


# --- bounds --------------------------------------------------------------------------------------
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 8),
    m=st.integers(2, 8),
    goal=st.sampled_from(["cost", "time", "completion", "carbon", "cost+500*time"]),
)
@settings(max_examples=15, deadline=None)
def test_the_standalone_bound_holds_for_the_greedy_plan(
    seed: int, n: int, m: int, goal: str
) -> None:
    """No plan over the optimizer's choices beats the search-free bound, the greedy plan
    included: it leaves at least as many stages unplaced, and placing as many costs (or
    takes) at least the bound's figure."""
    sc = generate(workloads=n, sites=m, seed=seed)
    cand, _, plan, pf = _setup(sc, goal)
    impossible, value = standalone_bound(pf, objective(goal))
    assert impossible <= len(plan.unplaced)
    if impossible == len(plan.unplaced):
        assert value <= objective(goal).plan_value(plan, sc, cand.energy_of) + 1e-6


def test_a_stage_that_cannot_make_its_deadline_anywhere_is_counted_without_search() -> None:
    """A run that would end after its hard deadline even alone on the pool: the bound says so
    before CP-SAT searches, so the answer carries a gap in dollars."""
    sc = scenario(workloads=2, tokens=tokens_for(12.0))
    doc = sc.model_dump(mode="json", exclude_none=True)
    doc["workloads"][1]["deadline"] = str(DAY0 + dt.timedelta(days=2))
    sc = parse_scenario(doc)
    _, _, _, pf = _setup(sc)
    impossible, cost = standalone_bound(pf, objective("cost"))
    assert impossible == 1 and cost > 0
    plan = make_plan(sc, time_limit=5)
    assert len(plan.unplaced) == 1 and plan.bound_unplaced == 1
    assert plan.gap is not None and plan.bound_usd is not None
    assert plan.bound_usd <= plan.objective_usd + 1e-6
    assert plan.unplaced[0].lost_codes == {"deadline": 1}
