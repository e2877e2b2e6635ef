"""The planner's bounds hold, and say why stages stay unplaced.

Every bound is a relaxation (constraints removed, never added), so no plan over the
optimizer's choices beats it: not the greedy plan, and not the optimum CP-SAT proves on the
same model. Small generated portfolios (seeds the benchmarks do not use) check that; unit
scenarios check the causes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from optimizer_cases import DAY0, _setup, scenario, tokens_for
from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.alone import BUDGET, CHAIN, CONTENTION, DEADLINE, alone_bound
from straits.plan.bounds import standalone_bound
from straits.plan.cpsat_model import Score, build
from straits.plan.lns import NeighbourhoodSearch
from straits.plan.lp_bound import lp_bound
from straits.plan.objectives import objective
from straits.plan.retime import retime
from straits.plan.solution import extract, from_solver
from straits.simulate.generate import generate

GOALS = ["cost", "time", "completion", "carbon", "cost+500*time"]


def _proved_optimum(pf: Any, goal: str) -> Score | None:
    """The model's optimum, when CP-SAT proves it within a few seconds."""
    pm = build(pf, objective(goal))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 5.0
    solver.parameters.random_seed = 0
    if solver.solve(pm.model) != cp_model.OPTIMAL:
        return None
    return pm.decode(solver.objective_value)


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 6),
    m=st.integers(2, 6),
    goal=st.sampled_from(GOALS),
)
@settings(max_examples=12, deadline=None)
def test_the_bounds_hold_for_greedy_and_for_the_proved_optimum(
    seed: int, n: int, m: int, goal: str
) -> None:
    """Each workload's own optimum, summed, and the capacity-aware LP are below every plan
    lexicographically: the greedy plan's (its exact value) and the optimum CP-SAT proves on
    the whole model. The first never rules out fewer stages than the search-free bound, the
    second is never below the first."""
    sc = generate(workloads=n, sites=m, seed=seed)
    cand, _, plan, pf = _setup(sc, goal)
    alone = alone_bound(pf, objective(goal))
    assert alone is not None
    lp = lp_bound(pf, alone)
    assert lp is not None
    # with the plan's count, stages' successors' tails (see lp_bound) when it is the alone one
    lp_count = lp_bound(pf, alone, plan_unplaced=len(plan.unplaced))
    assert lp_count is not None
    greedy = Score(len(plan.unplaced), objective(goal).plan_value(plan, sc, cand.energy_of))
    best = _proved_optimum(pf, goal)
    for bound in (alone.bound, lp, lp_count):
        assert bound.unplaced <= greedy.unplaced
        if bound.unplaced == greedy.unplaced:
            assert bound.value <= greedy.value + 1e-6
        if best is not None:
            assert bound.unplaced <= best.unplaced
            if bound.unplaced == best.unplaced:
                assert bound.value <= best.value + 1e-6
    assert alone.bound.unplaced >= standalone_bound(pf, objective(goal)).unplaced
    # the LP keeps every workload's own optimum: never below the alone bound
    assert lp >= alone.bound or lp.value >= alone.bound.value * (1 - 1e-5)


def _chain(
    budget: float | None = None, deadline: dt.date | None = None, days: float = 1.0
) -> Scenario:
    """``days`` of pre-training, then two days of serving on 8 chips."""
    base = scenario(tokens=tokens_for(days))
    doc = base.model_dump(mode="json", exclude_none=True)
    w = doc["workloads"][0]
    w["stages"].append(
        {"id": "serve", "kind": "serve", "after": ["pretrain"], "chips": 8, "days": 2.0}
    )
    if budget is not None:
        w["budget_usd"] = budget
    if deadline is not None:
        w["deadline"] = str(deadline)
    return parse_scenario(doc)


def _least_spend(sc: Scenario) -> dict[str, float]:
    _, _, _, pf = _setup(sc)
    return {
        sid: min(c.option.cost(c.est) + c.egress for c in stc.choices)
        for (_, sid), stc in pf.stages.items()
    }


def test_a_budget_that_fits_each_stage_but_not_the_chain_is_counted_and_classed() -> None:
    """Each stage alone keeps within the budget, both together do not: the search-free bound
    cannot see it, the workload's own optimum can (the serving stage is unplaced, cause
    ``chain``), so the plan's gap is stated."""
    spend = _least_spend(_chain())
    sc = _chain(budget=max(spend.values()) + 0.5 * min(spend.values()))
    _, _, _, pf = _setup(sc)
    assert standalone_bound(pf, objective("cost")).unplaced == 0
    alone = alone_bound(pf, objective("cost"))
    assert alone is not None
    assert alone.bound.unplaced == 1
    assert alone.workloads["w0"].causes == {"serve": CHAIN}
    answer = make_plan(sc, time_limit=10)
    assert len(answer.unplaced) == 1 and answer.bound_unplaced == 1
    assert answer.gap is not None
    assert answer.search is not None
    assert answer.search["bound"]["unplaced_causes"] == {CHAIN: 1}


def test_the_search_does_not_try_to_place_what_the_workload_alone_cannot() -> None:
    """The same chain: its serving stage is placeable by the search-free bound, which the
    neighbourhood search's ``unplaced`` kind reads, but the workload alone places one stage at
    most. Told so (``most_placed``, from the alone bound), the search has no workload to
    place more of; without it, it keeps drawing the serving stage's workload."""
    spend = _least_spend(_chain())
    sc = _chain(budget=max(spend.values()) + 0.5 * min(spend.values()))
    _, greedy, _, pf = _setup(sc)
    goal = objective("cost")
    alone = alone_bound(pf, goal)
    assert alone is not None
    horizon = build(pf, goal).horizon
    start, held = retime(pf, greedy.state, horizon)
    blind = NeighbourhoodSearch(pf, goal, horizon, start, held=held)
    assert blind.value.unplaced == 1 and blind._unplaced() == "w0"
    most = {w.id: len(w.stages) - alone.workloads[w.id].unplaced for w in sc.workloads}
    assert most == {"w0": 1}
    told = NeighbourhoodSearch(pf, goal, horizon, start, held=held, most_placed=most)
    assert told._unplaced() is None


@pytest.mark.parametrize(("case", "cause"), [("deadline", DEADLINE), ("budget", BUDGET)])
def test_a_stage_that_cannot_fit_even_alone_is_classed_by_what_blocks_it(
    case: str, cause: str
) -> None:
    if case == "deadline":
        # the pre-training alone takes three days, the deadline is two days away
        sc = _chain(deadline=DAY0 + dt.timedelta(days=1), days=3.0)
    else:
        sc = _chain(budget=0.5 * min(_least_spend(_chain()).values()))
    _, _, _, pf = _setup(sc)
    alone = alone_bound(pf, objective("cost"))
    assert alone is not None
    assert alone.workloads["w0"].causes == {"pretrain": cause, "serve": "predecessor"}
    plan = make_plan(sc, time_limit=10)
    assert plan.search is not None
    assert plan.search["bound"]["unplaced_causes"] == {cause: 1, "predecessor": 1}


def test_stages_lost_to_other_workloads_are_contention() -> None:
    """Two two-day runs due in two days, one pool that holds one at a time: each could run
    alone, one cannot run with the other. The bound cannot rule out placing both (no gap is
    stated), and the unplaced stage is classed ``contention``."""
    sc = scenario(workloads=2, tokens=tokens_for(2.0), deadline=DAY0 + dt.timedelta(days=2))
    plan = make_plan(sc, time_limit=10)
    assert len(plan.unplaced) == 1
    assert plan.search is not None
    assert plan.search["bound"]["unplaced_causes"] == {CONTENTION: 1}
    assert plan.search["bound"]["source"] in {"alone", "cpsat", "standalone"}


def test_the_lp_at_the_workloads_own_count_bounds_whatever_the_plan_leaves() -> None:
    """``own_count`` bounds the value at the workloads' own count. Two two-day runs due in
    two days on a pool that holds one at a time: the greedy plan leaves one unplaced, the
    bound says none (lexicographically below it: no gap is stated on value). Due in four days
    both fit one after the other: the bound is no lower than alone's and no higher than the
    optimum CP-SAT proves."""
    tight = scenario(workloads=2, tokens=tokens_for(2.0), deadline=DAY0 + dt.timedelta(days=2))
    _, _, plan, pf = _setup(tight)
    alone = alone_bound(pf, objective("cost"))
    assert alone is not None and alone.bound.unplaced == 0 < len(plan.unplaced)
    own = lp_bound(pf, alone, own_count=True)
    assert own is None or own.unplaced == 0
    roomy = scenario(workloads=2, tokens=tokens_for(2.0), deadline=DAY0 + dt.timedelta(days=4))
    _, _, plan, pf = _setup(roomy)
    alone = alone_bound(pf, objective("cost"))
    assert alone is not None and alone.bound.unplaced == 0 == len(plan.unplaced)
    own = lp_bound(pf, alone, own_count=True)
    assert own is not None and own.unplaced == 0
    assert own.value >= alone.bound.value * (1 - 2e-6)  # GLOP's margin (lp_bound.MARGIN)
    best = _proved_optimum(pf, "cost")
    assert best is not None and best.unplaced == 0 and own.value <= best.value + 1e-6


def test_a_time_limit_that_leaves_no_room_skips_the_alone_bound() -> None:
    """A part of the sum bounds nothing: past its stop, the bound is not returned."""
    sc = generate(workloads=3, sites=4, seed=5)
    _, _, _, pf = _setup(sc)
    assert alone_bound(pf, objective("cost"), stop_at=0.0, clock=lambda: 1.0) is None


@pytest.mark.parametrize("plan_unplaced", [None, 0])
def test_a_soft_deadline_capacity_forces_to_miss_is_priced_in_the_lp(
    plan_unplaced: int | None,
) -> None:
    """Two 13-day runs due at the end of day 14 on a pool that holds one at a time: each alone
    is on time (no penalty), together one is at least twelve days late. The LP's lateness
    parts see it: capacity to the end of the first late week holds 1.6 of the 2 runs, so the
    LP puts 0.4 of a run in the part 'a week to a month late', which pays at least a week's
    penalty: over a day's penalty above the workloads alone. It stays below the optimum
    CP-SAT proves and the greedy plan; with the plan's count given, the first solve is
    skipped and the answer is the same."""
    per_day = 1e6
    sc = scenario(
        workloads=2,
        tokens=tokens_for(13.0),
        deadline=DAY0 + dt.timedelta(days=13),
        deadline_policy="soft",
        late_penalty_usd_per_day=per_day,
    )
    cand, _, plan, pf = _setup(sc)
    goal = objective("cost")
    alone = alone_bound(pf, goal)
    assert alone is not None and alone.bound.unplaced == 0
    lp = lp_bound(pf, alone, plan_unplaced=plan_unplaced)
    assert lp is not None and lp.unplaced == 0
    assert lp.value >= alone.bound.value + per_day
    greedy = goal.plan_value(plan, sc, cand.energy_of)
    assert len(plan.unplaced) == 0 and lp.value <= greedy + 1e-6
    best = _proved_optimum(pf, "cost")
    assert best is not None and best.unplaced == 0
    assert lp.value <= best.value + 1e-6


def test_a_stage_is_due_early_enough_for_its_successors_in_the_lp() -> None:
    """Two workloads of 20 days of pre-training on 64 chips, then 20 days of serving on 8,
    due (soft, $1M a day late) on day 40, on one pool of 72 chips: alone each is on time,
    together one pre-training waits for the other and its workload ends 20 days late. By
    chip-hours before day 40 both fit (the LP without the plan's count prices no lateness);
    with the plan's count every stage is placed, so each pre-training must end by day 20 to be
    on time, and the pool holds only one there: much of a run is a week late or more.
    The bound stays below the greedy plan and the optimum CP-SAT proves."""
    per_day = 1e6
    base = scenario(
        pool={"chip": "H100-SXM", "count": 72, "usd_per_chip_hour": 2.0},
        workloads=2,
        tokens=tokens_for(20.0),
        deadline=DAY0 + dt.timedelta(days=40),
        deadline_policy="soft",
        late_penalty_usd_per_day=per_day,
    )
    doc = base.model_dump(mode="json", exclude_none=True)
    for w in doc["workloads"]:
        w["stages"].append(
            {"id": "serve", "kind": "serve", "after": ["pretrain"], "chips": 8, "days": 20.0}
        )
    sc = parse_scenario(doc)
    cand, _, plan, pf = _setup(sc)
    goal = objective("cost")
    alone = alone_bound(pf, goal)
    assert alone is not None and alone.bound.unplaced == 0
    without = lp_bound(pf, alone)
    assert without is not None and without.value < alone.bound.value + per_day
    assert len(plan.unplaced) == 0
    lp = lp_bound(pf, alone, plan_unplaced=0)
    assert lp is not None and lp.unplaced == 0
    assert lp.value >= alone.bound.value + 2 * per_day
    assert lp.value <= goal.plan_value(plan, sc, cand.energy_of) + 1e-6
    best = _proved_optimum(pf, "cost")
    assert best is not None and best.unplaced == 0
    assert lp.value <= best.value + 1e-6


def test_a_workload_left_wholly_unplaced_pays_no_lateness_for_a_deadline_already_past() -> None:
    """A soft deadline two days before the plan's start, on a pool with no chips: the stage is
    unplaced in every plan, which then ends nowhere and pays no penalty (the plan's value is
    0). The workload's own optimum charged the lateness of an end at hour 0, and the LP kept
    it as its floor: both bounds were a million dollars above every plan."""
    sc = scenario(
        pool={"chip": "H100-SXM", "count": 0, "usd_per_chip_hour": 2.0},
        deadline=DAY0 - dt.timedelta(days=2),
        deadline_policy="soft",
        late_penalty_usd_per_day=1e6,
    )
    cand, _, plan, pf = _setup(sc)
    goal = objective("cost")
    greedy = Score(len(plan.unplaced), goal.plan_value(plan, sc, cand.energy_of))
    alone = alone_bound(pf, goal)
    assert alone is not None
    for pu in (None, greedy.unplaced):
        lp = lp_bound(pf, alone, plan_unplaced=pu)
        assert lp is not None
        for bound in (alone.bound, lp):
            assert bound.unplaced == greedy.unplaced == 1
            assert bound.value <= greedy.value + 1e-6


def _exact_optimum(pf: Any, goal: str, baseline: Any) -> Score | None:
    """The exact value of the plan CP-SAT proves optimal (its model rounds prices, so its own
    objective can sit on either side of the plan's value)."""
    pm = build(pf, objective(goal))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 2.0
    solver.parameters.random_seed = 0
    if solver.solve(pm.model) != cp_model.OPTIMAL:
        return None
    plan = extract(pf, from_solver(pm, solver), baseline, objective(goal), "optimal", "cpsat")
    if plan is None:
        return None
    return Score(len(plan.unplaced), objective(goal).plan_value(plan, pf.sc, pf.cand.energy_of))


@st.composite
def _hostile(draw: Any) -> Scenario:
    """One to three runs on one pool (maybe empty, with a window of other counts, or bought)
    with soft deadlines from before the start to three weeks on at penalties from 0 to 1e12
    USD a day, hard deadlines, budgets and chains."""

    def day(n: int) -> str:
        return str(DAY0 + dt.timedelta(days=n))

    pool: dict[str, Any] = {
        "chip": "H100-SXM",
        "count": draw(st.sampled_from([0, 64, 128])),
        "usd_per_chip_hour": 2.0,
    }
    if draw(st.booleans()):
        s = draw(st.integers(-5, 10))
        pool["availability"] = [
            {"start": day(s), "end": day(s + draw(st.integers(1, 15))), "count": 32}
        ]
    if draw(st.booleans()):
        pool["procurable"] = {"max": 64, "usd_per_chip": 30000, "lead_days": 3}
    doc = scenario(pool=pool).model_dump(mode="json", exclude_none=True)
    one = doc["workloads"][0]
    doc["workloads"] = []
    for i in range(draw(st.integers(1, 3))):
        w = {**one, "id": f"w{i}"}
        w["stages"] = [{**one["stages"][0], "tokens": tokens_for(draw(st.sampled_from([1, 5])))}]
        if draw(st.booleans()):
            w["stages"].append(
                {"id": "serve", "kind": "serve", "after": ["pretrain"], "chips": 8, "days": 1.0}
            )
        policy = draw(st.sampled_from(["none", "hard", "soft", "soft"]))
        if policy != "none":
            w["deadline"] = day(draw(st.integers(-3, 20)))
            w["deadline_policy"] = policy
        if policy == "soft":
            w["late_penalty_usd_per_day"] = draw(st.sampled_from([0.0, 12.0, 1e6, 1e12]))
        if draw(st.booleans()):
            w["budget_usd"] = draw(st.sampled_from([2000.0, 30000.0]))
        doc["workloads"].append(w)
    return parse_scenario(doc)


@given(sc=_hostile(), goal=st.sampled_from(GOALS))
@settings(max_examples=25, deadline=None)
def test_the_bounds_hold_on_hand_built_hostile_scenarios(sc: Scenario, goal: str) -> None:
    """Soft deadlines past or on the start day, zero and enormous penalties, pool windows,
    bought chips, budgets and chains: neither bound, with or without the plan's count or at
    the workloads' own count, is above the greedy plan or the plan CP-SAT proves optimal, each
    valued exactly (lexicographically: fewer unplaced, or as many at no more value)."""
    cand, _, plan, pf = _setup(sc, goal)
    alone = alone_bound(pf, objective(goal))
    assert alone is not None
    plans = [Score(len(plan.unplaced), objective(goal).plan_value(plan, sc, cand.energy_of))]
    best = _exact_optimum(pf, goal, plan)
    plans += [best] if best is not None else []
    bounds = [alone.bound]
    for pu in (None, len(plan.unplaced)):
        lp = lp_bound(pf, alone, plan_unplaced=pu)
        assert lp is not None
        bounds.append(lp)
    # at the workloads' own count whatever the plan leaves (None: capacity lets no plan)
    own = lp_bound(pf, alone, own_count=True)
    if own is not None:
        assert own.unplaced == alone.bound.unplaced
        bounds.append(own)
    for bound in bounds:
        for ref in plans:
            assert bound.unplaced <= ref.unplaced
            if bound.unplaced == ref.unplaced:
                assert bound.value <= ref.value + 1e-6 + 1e-9 * abs(ref.value)
