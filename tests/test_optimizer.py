"""The portfolio optimizer: optimality on small portfolios, determinism, capacity over time,
bought chips, soft deadlines, why-not explanations, the Pareto frontier, empty portfolios."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invariants import capacity_violations, deadline_violations, precedence_violations
from straits.catalog import get_chip
from straits.estimate import estimate_training
from straits.loading import parse_scenario
from straits.model.scenario import ModelSpec, Scenario
from straits.plan import make_plan
from straits.plan.bounds import standalone_bound
from straits.plan.candidates import Candidates
from straits.plan.greedy import GreedyPlanner
from straits.plan.pareto import frontier
from straits.plan.portfolio import Portfolio
from straits.rules import RuleSet, ruleset
from straits.simulate.generate import generate

MODEL = {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096,
         "global_batch_tokens": 4e6}
DAY0 = dt.date(2025, 6, 1)


def tokens_for(days: float) -> float:
    """Tokens of a run that takes ``days`` on the 64 H100s of :func:`scenario` (with a fixed
    batch, hours are proportional to tokens): the tests state durations, not token counts, so
    they hold whatever the estimator's calibration."""
    hours = estimate_training(ModelSpec(**MODEL), 1e11, get_chip("H100-SXM"), 64).hours
    return 1e11 * days * 24.0 / hours


def scenario(hq: str = "SG", pool: dict[str, Any] | None = None, workloads: int = 1,
             tokens: float = 1e11, chips: int | None = 64, **workload: Any) -> Scenario:
    """One tenant, one Singapore site with one H100 pool, ``workloads`` pre-training runs."""
    pool = pool or {"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 2.0}
    return parse_scenario({
        "straits": 1, "name": "unit", "date": DAY0,
        "tenants": [{"id": "t", "hq": hq}],
        "sites": [{"id": "sg", "country": "SG", "operator_hq": "SG", "pools": [pool]}],
        "workloads": [{"id": f"w{i}", "tenant": "t", "model": MODEL, **workload,
                       "stages": [{"id": "pretrain", "kind": "pretrain", "tokens": tokens,
                                   **({"chips": chips} if chips else {})}]}
                      for i in range(workloads)]})


def hours(day: dt.date) -> float:
    return (day - DAY0).days * 24.0


# --- optimality and determinism ------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_portfolios_are_proved_optimal(seed: int) -> None:
    sc = generate(workloads=8, sites=20, seed=seed)
    plan = make_plan(sc, time_limit=30, seed=0)
    assert plan.solver == "cpsat"
    assert plan.gap == 0.0, plan.notes
    assert any("CP-SAT optimal" in n or "(optimal" in n for n in plan.notes), plan.notes
    assert plan.baseline_usd is not None
    if len(plan.unplaced) == plan.baseline_unplaced:
        assert plan.objective_usd <= plan.baseline_usd + 1.0  # never worse than the greedy plan
    if plan.bound_usd is not None:
        assert plan.bound_usd <= plan.objective_usd + 1e-6


def _stable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "notes"}  # notes carry wall-clock seconds


def test_same_seed_gives_the_same_plan() -> None:
    sc = generate(workloads=12, sites=15, seed=7)
    a = make_plan(sc, time_limit=20, seed=3).to_json(details=True)
    b = make_plan(sc, time_limit=20, seed=3).to_json(details=True)
    assert _stable(a) == _stable(b)


def test_cpsat_places_at_least_as_many_stages_as_greedy() -> None:
    for seed in (3, 4):
        sc = generate(workloads=25, sites=30, seed=seed)
        greedy = make_plan(sc, solver="greedy")
        best = make_plan(sc, time_limit=10)
        assert len(best.unplaced) <= len(greedy.unplaced)
        assert best.baseline_unplaced == len(greedy.unplaced)
        if len(best.unplaced) == len(greedy.unplaced):
            assert best.objective_usd <= greedy.objective_usd + 1.0


def test_cpsat_places_what_greedy_first_come_order_leaves_out() -> None:
    """Two two-day runs due in three days; the cheap Singapore pool fits one at a time, a
    dearer Malaysian pool the other, and run b may only run in Singapore. The greedy planner
    gives Singapore to a (first by deadline and id), so b misses its deadline; CP-SAT sends a
    to Malaysia and places both, and proves it optimal."""
    base = scenario(workloads=2, tokens=tokens_for(2.0), deadline=DAY0 + dt.timedelta(days=2))
    doc = base.model_dump(mode="json", exclude_none=True)
    doc["sites"].append({"id": "my", "country": "MY", "operator_hq": "MY", "pools": [
        {"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 3.0}]})
    doc["workloads"][0]["id"], doc["workloads"][1]["id"] = "a", "b"
    doc["workloads"][1]["stages"][0]["locations"] = ["SG"]
    sc = parse_scenario(doc)
    greedy = make_plan(sc, solver="greedy")
    assert [(u.workload, u.stage) for u in greedy.unplaced] == [("b", "pretrain")]
    best = make_plan(sc, time_limit=10)
    assert not best.unplaced and best.status == "optimal"
    assert {a.workload: a.site for a in best.assignments} == {"a": "my", "b": "sg"}
    assert best.baseline_unplaced == 1
    assert capacity_violations(sc, best) == [] and deadline_violations(sc, best) == []


# --- capacity over time --------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["cpsat", "greedy"])
def test_a_stage_waits_for_a_window_without_chips(solver: str) -> None:
    pool = {"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 2.0,
            "availability": [{"start": DAY0, "end": DAY0 + dt.timedelta(days=10), "count": 0}]}
    sc = scenario(pool=pool)
    plan = make_plan(sc, solver=solver)  # type: ignore[arg-type]
    (a,) = plan.assignments
    assert a.start_h >= hours(DAY0 + dt.timedelta(days=10)) - 1e-6
    assert capacity_violations(sc, plan) == []


@pytest.mark.parametrize("solver", ["cpsat", "greedy"])
def test_stages_do_not_run_through_maintenance(solver: str) -> None:
    """The pool drops to 8 chips from day 1 to day 6; a 64-chip run of about two days cannot
    straddle the window, so the second of two runs waits for the window's end."""
    down, up = DAY0 + dt.timedelta(days=1), DAY0 + dt.timedelta(days=6)
    pool = {"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 2.0,
            "availability": [{"start": down, "end": up, "count": 8}]}
    sc = scenario(pool=pool, workloads=2, tokens=3e10)
    plan = make_plan(sc, solver=solver)  # type: ignore[arg-type]
    assert capacity_violations(sc, plan) == []
    assert len(plan.assignments) == 2
    for a in plan.assignments:
        assert a.end_h <= hours(down) + 1e-6 or a.start_h >= hours(up) - 1e-6


# --- bought chips --------------------------------------------------------------------------------
def _buyable(count: int = 0) -> dict[str, Any]:
    return {"chip": "H100-SXM", "count": count, "usd_per_chip_hour": 2.0,
            "procurable": {"max": 64, "usd_per_chip": 25_000, "lead_days": 30}}


@pytest.mark.parametrize("solver", ["cpsat", "greedy"])
def test_bought_chips_arrive_after_their_lead_time_and_carry_capex(solver: str) -> None:
    sc = scenario(hq="US", pool=_buyable())
    plan = make_plan(sc, solver=solver)  # type: ignore[arg-type]
    (a,) = plan.assignments
    assert a.bought
    assert a.start_h >= 30 * 24 - 1e-6
    assert a.capex_usd > 0
    assert capacity_violations(sc, plan) == []


def test_buying_is_refused_where_procure_is_unlawful(rules: RuleSet) -> None:
    """A tenant headquartered in China may not buy H100s in Singapore (the 2023 headquarters
    rule): the plan leaves the stage out and cites the rule."""
    sc = scenario(hq="CN", pool=_buyable())
    plan = make_plan(sc, rules=rules)
    assert not plan.assignments
    (u,) = plan.unplaced
    assert "headquarters" in u.summary()
    assert plan.why_not and "headquarters" in plan.why_not[0].text


# --- deadlines -----------------------------------------------------------------------------------
def test_hard_deadline_conflict_is_explained() -> None:
    sc = scenario(workloads=2, tokens=tokens_for(12.0), deadline=DAY0 + dt.timedelta(days=19))
    plan = make_plan(sc)
    assert len(plan.assignments) == 1 and len(plan.unplaced) == 1
    assert plan.status == "infeasible"
    (why,) = plan.why_not
    assert "deadline 2025-06-20" in why.text and "capacity of sg/H100-SXM" in why.text


def test_greedy_looks_past_its_shortlist_when_the_best_options_are_busy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With a shortlist of one option per stage, the second run finds the cheap pool busy
    until after its hard deadline: the greedy planner goes down the ranking to the dearer
    pool instead of leaving the run unplaced, and says why the cheap pool lost."""
    import straits.plan.greedy as greedy

    monkeypatch.setattr(greedy, "TOP_BY_OBJECTIVE", 1)
    monkeypatch.setattr(greedy, "TOP_BY_FINISH", 0)
    monkeypatch.setattr(greedy, "EXAMINE_ALL_UP_TO", 0)
    base = scenario(workloads=2, tokens=tokens_for(12.0), deadline=DAY0 + dt.timedelta(days=19))
    dear = {"id": "my", "country": "MY", "operator_hq": "MY",
            "pools": [{"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 3.0}]}
    doc = base.model_dump(mode="json", exclude_none=True)
    doc["sites"].append(dear)
    sc = parse_scenario(doc)
    plan = make_plan(sc, solver="greedy")
    assert not plan.unplaced
    assert sorted(a.site for a in plan.assignments) == ["my", "sg"]
    assert capacity_violations(sc, plan) == []
    second = next(d for d in plan.diagnosis if d.chosen and d.chosen.startswith("my/"))
    assert [r.reason for r in second.rejections] == ["capacity"]


def test_soft_deadline_places_late_and_charges_the_penalty() -> None:
    sc = scenario(workloads=2, tokens=tokens_for(12.0), deadline=DAY0 + dt.timedelta(days=19),
                  deadline_policy="soft", late_penalty_usd_per_day=10_000)
    plan = make_plan(sc)
    assert not plan.unplaced
    late = [a for a in plan.assignments if a.late_hours > 0]
    assert len(late) == 1
    assert late[0].penalty_usd == pytest.approx(late[0].late_hours / 24 * 10_000, rel=1e-6)
    assert plan.objective_usd == pytest.approx(plan.total_cost_usd + late[0].penalty_usd)
    assert precedence_violations(sc, plan) == []


@given(seed=st.integers(0, 10_000), n=st.integers(1, 8), m=st.integers(2, 8),
       objective=st.sampled_from(["cost", "time"]))
@settings(max_examples=15, deadline=None)
def test_the_standalone_bound_holds_for_the_greedy_plan(seed: int, n: int, m: int,
                                                        objective: str, rules: RuleSet) -> None:
    """No plan over the optimizer's choices beats the search-free bound, the greedy plan
    included: it leaves at least as many stages unplaced, and placing as many costs (or
    takes) at least the bound's figure."""
    sc = generate(workloads=n, sites=m, seed=seed)
    cand = Candidates(sc, rules, regime=sc.regime, date=sc.date)
    greedy = GreedyPlanner(cand, objective=objective)
    plan = greedy.run()
    impossible, score = standalone_bound(Portfolio(cand, greedy), objective)
    assert impossible <= len(plan.unplaced)
    if impossible == len(plan.unplaced):
        got = plan.objective_usd if objective == "cost" else plan.makespan_hours
        assert score <= got + 1e-6


def test_a_stage_that_cannot_make_its_deadline_anywhere_is_counted_without_search() -> None:
    """A run that would end after its hard deadline even alone on the pool: the bound says so
    before CP-SAT searches, so the answer carries a gap in dollars."""
    sc = scenario(workloads=2, tokens=tokens_for(12.0))
    doc = sc.model_dump(mode="json", exclude_none=True)
    doc["workloads"][1]["deadline"] = str(DAY0 + dt.timedelta(days=2))
    sc = parse_scenario(doc)
    cand = Candidates(sc, ruleset(), regime=sc.regime, date=sc.date)
    greedy = GreedyPlanner(cand, objective="cost")
    greedy.run()
    impossible, cost = standalone_bound(Portfolio(cand, greedy), "cost")
    assert impossible == 1 and cost > 0
    plan = make_plan(sc, time_limit=5)
    assert len(plan.unplaced) == 1 and plan.bound_unplaced == 1
    assert plan.gap is not None and plan.bound_usd is not None
    assert plan.bound_usd <= plan.objective_usd + 1e-6


# --- frontier, empty and impossible portfolios ---------------------------------------------------
def test_pareto_frontier_trades_cost_for_time(rules: RuleSet) -> None:
    sc = generate(workloads=4, sites=8, seed=2)
    points = frontier(Candidates(sc, rules, regime=sc.regime, date=sc.date), points=4,
                      time_limit=5)
    assert points
    ordered = sorted(points, key=lambda p: p.makespan_hours)
    for a, b in itertools.pairwise(ordered):
        assert a.makespan_hours < b.makespan_hours
        assert a.cost_usd > b.cost_usd  # a faster point that is not dearer would dominate


@pytest.mark.parametrize("solver", ["cpsat", "greedy"])
def test_empty_portfolio_is_a_clear_answer(solver: str) -> None:
    sc = scenario(workloads=0)
    plan = make_plan(sc, solver=solver)  # type: ignore[arg-type]
    assert plan.status == "optimal"
    assert plan.assignments == () and plan.unplaced == ()
    if solver == "cpsat":
        assert any("no workloads" in n for n in plan.notes)


def test_a_portfolio_with_no_lawful_option_is_infeasible_not_an_error() -> None:
    sc = scenario(hq="CN", pool={"chip": "H100-SXM", "count": 0, "usd_per_chip_hour": 2.0})
    plan = make_plan(sc)
    assert plan.status == "infeasible"
    assert [u.stage for u in plan.unplaced] == ["pretrain"]
    assert plan.why_not
