"""The solvers: optimality on small portfolios, determinism, neighbourhood search, objectives,
capacity over time, bought chips, deadlines, bounds, why-not, the Pareto frontier, progress
callbacks that fail, empty portfolios."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ortools.sat.python import cp_model

from optimizer_cases import (
    DAY0,
    SOLVERS,
    _setup,
    assert_sound,
    first_come,
    hours,
    scenario,
    tokens_for,
)
from straits.errors import InputError
from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.candidates import Candidates
from straits.plan.cpsat_model import add_hints, build
from straits.plan.lns import NeighbourhoodSearch
from straits.plan.objectives import OBJECTIVES, objective
from straits.plan.pareto import frontier
from straits.plan.registry import SOLVER_NAMES, solver_named
from straits.plan.retime import retime
from straits.plan.search import SearchState
from straits.plan.solution import evaluate, extract, from_solver
from straits.plan.tiebreak import tie_break
from straits.rules import RuleSet
from straits.simulate.generate import generate


# --- the registry --------------------------------------------------------------------------------
def test_every_registered_solver_loads_and_auto_picks_by_size() -> None:
    assert set(SOLVER_NAMES) == {"auto", "greedy", "cpsat", "lns"}
    for name in SOLVER_NAMES:
        assert solver_named(name).name in {"greedy", "cpsat", "lns"}
    assert solver_named("auto", stages=10).name == "cpsat"
    assert solver_named("auto", stages=10_000).name == "lns"
    with pytest.raises(InputError):
        solver_named("magic")


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("speed", "unknown objective"),
        ("cost+cost", "twice"),
        ("0*cost", "steps of 0.001"),
        ("cost+1e9*carbon", "steps of 0.001"),
        ("cost+", "unknown objective"),
    ],
)
def test_bad_objectives_are_input_errors(spec: str, error: str) -> None:
    with pytest.raises(InputError, match=error):
        objective(spec)


def test_a_scenario_with_an_unknown_objective_is_an_input_error() -> None:
    sc = scenario().model_copy(update={"objective": "speed"})
    with pytest.raises(InputError) as exc:
        make_plan(sc)
    assert exc.value.path == "objective"


# --- optimality and determinism ------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_portfolios_are_proved_optimal(seed: int) -> None:
    sc = generate(workloads=8, sites=20, seed=seed)
    plan = make_plan(sc, time_limit=30, seed=0)
    assert plan.solver == "cpsat" and plan.search is not None
    assert plan.search["whole_model"]["status"] == "optimal"
    assert plan.gap == 0.0, plan.notes
    assert plan.baseline_value is not None and plan.objective_value is not None
    if len(plan.unplaced) == plan.baseline_unplaced:
        assert plan.objective_value <= plan.baseline_value + 1.0  # never worse than greedy
    if plan.bound_value is not None:
        assert plan.bound_value <= plan.objective_value + 1e-6


def _stable(doc: dict[str, Any]) -> dict[str, Any]:
    # notes, timings and search statistics carry wall-clock seconds
    return {k: v for k, v in doc.items() if k not in ("notes", "timings", "search")}


def test_same_seed_gives_the_same_plan() -> None:
    """The promise (docs/architecture.md) holds when the search ends by proving optimality,
    so the portfolio is one whose search proves it in about half a second alone, through
    four solutions, with 40x that as the limit: the 12 x 15 portfolio used before needed
    15 s of its 20 s limit alone and differed when a loaded CI machine ran the clock out, and
    seed 7, used next, came to need 18 s of its 20 once the estimator's fifth pass changed
    its stages (two plans, both called optimal, differed in the clean-clone CI). Seed 4, used
    next, came to be solved by its hint alone after the estimator's MoE fixes (one solution):
    seed 7 of 8 x 8 proves optimal in about a second through 17. Since issue 16's fourteenth pass
    (est39) seed 7's tie-break runs past its cap, so two proved runs may differ: TIE_SEED."""
    sc = generate(workloads=8, sites=8, seed=TIE_SEED)
    a = make_plan(sc, time_limit=20, seed=3, solver="cpsat").to_json(details=True)
    b = make_plan(sc, time_limit=20, seed=3, solver="cpsat").to_json(details=True)
    for doc in (a, b):
        assert doc["search"]["whole_model"]["status"] == "optimal"
        assert doc["search"]["whole_model"]["solutions"] > 1  # the search moved off the hint
    assert _stable(a) == _stable(b)


def _schedule(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    keys = ("workload", "stage", "site", "chip", "chips", "bought", "start", "end")
    return [tuple(a[k] for k in keys) for a in doc["assignments"]]


#: a generated portfolio whose optimum the whole model proves in seconds and whose tie-break
#: ends well inside the planner's cap (TIE_CAP_S): generate 8 x 8, seed 7 until issue 16's
#: twelfth pass (est37), whose refitted estimates made that portfolio's tie-break take 13.6 s
#: (0.7 s before; load average 4.8), past the cap, so the proved plan stood (`stopped`); seed 36
#: (optimal, its tie-break 0.1 s) since, chosen among seeds 1-40 by those two properties; seed 7
#: again since the greedy planner prices the lateness a stage makes certain for the stages after
#: it (issue 18, sixteenth pass): its plan is then optimal on seed 36 (no tie-break: ``hint``),
#: and on seed 7 the tie-break takes 0.67 s; of seeds 1-47 only 7, 22 (1.6 s) and 35 (4.1 s)
#: still need one; seed 3 since issue 16's fourteenth pass (est39), whose refit made the
#: tie-breaks of 7, 22 and 35 run past the cap (`stopped`): of seeds 1-60 the ones whose plan is
#: optimal and not the hint are 3 (its tie-break 0.5 s), 7, 22 and 35; seed 1 since issue 16's
#: fifteenth pass (est40), whose refit made seed 3's tie-break run past the cap: of seeds 1-60
#: the ones whose plan is optimal and not the hint are now 1 (its tie-break 0.15 s), 3 and 35,
#: and only seed 1's tie-break ends inside the cap
TIE_SEED = 1


def test_equal_cost_plans_are_broken_the_same_way_after_a_proof() -> None:
    """generate 8 x 8, seed 7 had many optimal plans (start times cost nothing under the cost
    objective) and the whole model's path differed from run to run (8 to 15 solutions measured
    for one seed); before the tie-break two runs both proved optimal returned makespans of
    7,964 h and 10,727 h. The tie-break after the proof (straits.plan.tiebreak) returns the
    earliest optimal plan, found the same way in every run (now on TIE_SEED)."""
    sc = generate(workloads=8, sites=8, seed=TIE_SEED)
    a = make_plan(sc, time_limit=20, seed=3, solver="cpsat").to_json(details=True)
    b = make_plan(sc, time_limit=20, seed=3, solver="cpsat").to_json(details=True)
    for doc in (a, b):
        assert doc["status"] == "optimal"
        assert doc["search"]["ended"] == "proved"
        assert doc["search"]["tie_break"] in ("optimal", "limit")  # both deterministic
        assert "tie_break" in doc["timings"]["phases"]
    assert _schedule(a) == _schedule(b)
    assert _stable(a) == _stable(b)


@pytest.mark.timeout(150)
@pytest.mark.parametrize("solver", ["cpsat", "lns"])
def test_a_proof_ends_the_search_long_before_the_limit(solver: str) -> None:
    """The whole model proves generate 8 x 8, TIE_SEED, in a few seconds;
    OR-Tools 9.15 then went on to its time limit (one subsolver still running) and the
    neighbourhood search with it. With a 600 s limit the test's own timeout (150 s) fails it if
    the search does not end at the proof; what it asserts is the answer's reason."""
    sc = generate(workloads=8, sites=8, seed=TIE_SEED)
    doc = make_plan(sc, time_limit=600, seed=3, solver=solver).to_json(details=True)
    assert doc["search"]["whole_model"]["status"] == "optimal"
    assert doc["search"]["ended"] == "proved"
    assert doc["search"]["tie_break"] in ("optimal", "limit")
    assert list(doc["timings"]["phases"]).index("tie_break") == (
        list(doc["timings"]["phases"]).index("search") + 1
    )


def _solved_6x5(goal: str, seconds: float) -> tuple[Any, Any, Any, cp_model.CpSolver, Any]:
    """generate 6 x 5 seed 11 as the whole model under ``goal``, hinted with the re-timed
    greedy plan, solved by one worker in at most ``seconds``: (portfolio, objective, model,
    solver, its status)."""
    sc = generate(workloads=6, sites=5, seed=11)
    _, greedy, _, pf = _setup(sc, goal)
    obj = objective(goal)
    pm = build(pf, obj)
    add_hints(pm, retime(pf, greedy.state, pm.horizon).solution)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = 1
    return pf, obj, pm, solver, solver.solve(pm.model)


@pytest.mark.parametrize("goal", ["cost", "time"])
def test_the_tie_break_keeps_the_optimum_and_starts_no_later_in_sum(goal: str) -> None:
    pf, obj, pm, solver, status = _solved_6x5(goal, 20)
    assert status == cp_model.OPTIMAL
    proved = from_solver(pm, solver)
    tb = tie_break(pm, solver.objective_value, seed=0, stop_at=math.inf, clock=time.monotonic)
    assert tb.status == "optimal" and tb.solution is not None
    assert evaluate(pf, obj, tb.solution, pm.tie_unit) == evaluate(pf, obj, proved, pm.tie_unit)

    def starts(sol: dict[Any, Any]) -> int:
        return sum(s for i, s in sol.values() if i is not None)

    assert starts(tb.solution) <= starts(proved)
    again = tie_break(pm, solver.objective_value, seed=0, stop_at=math.inf, clock=time.monotonic)
    assert again.solution == tb.solution


def test_cpsat_places_at_least_as_many_stages_as_greedy() -> None:
    for seed in (3, 4):
        sc = generate(workloads=25, sites=30, seed=seed)
        greedy = make_plan(sc, solver="greedy")
        best = make_plan(sc, time_limit=6)
        assert len(best.unplaced) <= len(greedy.unplaced)
        assert best.baseline_unplaced == len(greedy.unplaced)
        if len(best.unplaced) == len(greedy.unplaced):
            assert best.objective_usd <= greedy.objective_usd + 1.0


@pytest.mark.parametrize("solver", ["cpsat", "lns"])
def test_search_places_what_greedy_first_come_order_leaves_out(solver: str) -> None:
    """CP-SAT sends a to Malaysia and places both, and proves it optimal."""
    sc = first_come()
    greedy = make_plan(sc, solver="greedy")
    assert [(u.workload, u.stage) for u in greedy.unplaced] == [("b", "pretrain")]
    assert greedy.unplaced[0].lost_codes == {"capacity": 1, "location": 1}
    best = make_plan(sc, time_limit=10, solver=solver)
    assert not best.unplaced and best.status == "optimal"
    assert {a.workload: a.site for a in best.assignments} == {"a": "my", "b": "sg"}
    assert best.baseline_unplaced == 1
    assert_sound(sc, best)


# --- neighbourhood search ------------------------------------------------------------------------
def test_neighbourhood_search_alone_places_the_stage_greedy_left_out() -> None:
    """Without the whole model: the 'unplaced' neighbourhood frees b with its rival a, and
    CP-SAT on that piece places both; the extracted plan keeps every invariant."""
    sc = first_come()
    _, greedy, baseline, pf = _setup(sc)
    goal = objective("cost")
    horizon = build(pf, goal).horizon
    start, held = retime(pf, greedy.state, horizon)
    assert not held.workloads
    lns = NeighbourhoodSearch(pf, goal, horizon, start, seed=1)
    assert lns.value.unplaced == 1
    for _ in range(20):
        lns.step(1.0, float("inf"), lambda: 0.0)
        if lns.value.unplaced == 0:
            break
    assert lns.value.unplaced == 0 and lns.stats.improved >= 1
    plan = extract(pf, lns.sol, baseline, goal, "feasible", "lns")
    assert plan is not None and not plan.unplaced
    assert_sound(sc, plan)
    moved = next(d for d in plan.diagnosis if d.workload == "a")
    assert moved.chosen == "my/H100-SXM"
    assert any(r.label == "sg/H100-SXM" for r in moved.rejections)


@given(seed=st.integers(0, 10_000), goal=st.sampled_from(["cost", "time", "carbon"]))
@settings(max_examples=4, deadline=None)
def test_neighbourhood_search_never_worsens_and_stays_sound(seed: int, goal: str) -> None:
    """On contended portfolios (few sites), every accepted piece improves the whole plan's
    value, and the solution it ends with extracts to a plan that keeps every invariant."""
    sc = generate(workloads=12, sites=4, seed=seed)
    _, greedy, baseline, pf = _setup(sc, goal)
    obj = objective(goal)
    horizon = build(pf, obj).horizon
    start, held = retime(pf, greedy.state, horizon)
    lns = NeighbourhoodSearch(pf, obj, horizon, start, seed=seed, held=held)
    values = [lns.value]
    for _ in range(4):
        lns.step(0.5, float("inf"), lambda: 0.0)
        values.append(lns.value)
    assert all(b <= a for a, b in itertools.pairwise(values))
    assert evaluate(pf, obj, lns.sol, held=held) == lns.value
    plan = extract(pf, lns.sol, baseline, obj, "feasible", "lns", held)
    assert plan is not None
    assert_sound(sc, plan)


@pytest.mark.parametrize("goal", ["cost", "time", "completion", "carbon", "cost+1000*time"])
def test_the_evaluator_scores_a_solution_exactly_as_the_model(goal: str) -> None:
    """The neighbourhood search compares solutions with evaluate(); it must be the model's
    own objective, term for term."""
    pf, obj, pm, solver, status = _solved_6x5(goal, 10)
    assert status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    v = evaluate(pf, obj, from_solver(pm, solver), pm.tie_unit)
    factor = pm.score_unit // obj.model_scale  # the tie-break's multiplier (1 without one)
    assert v.unplaced * pm.unplaced_weight + v.primary * factor + v.tie == round(
        solver.objective_value
    )


def test_an_objective_too_large_for_64_bits_leaves_the_greedy_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import straits.plan.cpsat_model as model

    monkeypatch.setattr(model, "OBJECTIVE_LIMIT", 1000)
    plan = make_plan(generate(workloads=3, sites=4, seed=1), solver="cpsat", time_limit=5)
    assert plan.search is not None and plan.search["answer"] == "greedy"
    assert any("64-bit" in n for n in plan.notes)


def test_the_cost_tie_break_coarsens_to_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tight limit on the objective's size makes the tie-break count in larger units; the
    evaluator follows the model's unit."""
    import straits.plan.cpsat_model as model

    sc = generate(workloads=6, sites=5, seed=11)
    _, greedy, _, pf = _setup(sc, "time")
    wide = build(pf, objective("time"))
    monkeypatch.setattr(model, "OBJECTIVE_LIMIT", wide.unplaced_weight * 2)
    pm = build(pf, objective("time"))
    assert pm.tie_unit > wide.tie_unit > 0
    add_hints(pm, retime(pf, greedy.state, pm.horizon).solution)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = 10
    assert solver.solve(pm.model) in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    v = evaluate(pf, objective("time"), from_solver(pm, solver), pm.tie_unit)
    factor = pm.score_unit // objective("time").model_scale
    assert v.unplaced * pm.unplaced_weight + v.primary * factor + v.tie == round(
        solver.objective_value
    )


# --- objectives ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("goal", "measure"),
    [
        ("carbon", lambda p: p.tco2e),
        ("energy", lambda p: p.energy_mwh),
        ("time", lambda p: p.makespan_hours),
    ],
)
@pytest.mark.parametrize("seed", [0, 5])
def test_each_objective_does_at_least_as_well_on_its_own_measure(
    goal: str, measure: Any, seed: int
) -> None:
    """Proved optimal for its objective, a plan is no worse on that measure than the plan
    proved optimal for cost (when both place as many stages)."""
    sc = generate(workloads=5, sites=8, seed=seed)
    mine = make_plan(sc, objective=goal, solver="cpsat", time_limit=20)
    cheap = make_plan(sc, objective="cost", solver="cpsat", time_limit=20)
    assert mine.objective == goal and mine.objective_unit == OBJECTIVES[goal].unit
    if mine.status == cheap.status == "optimal":
        assert measure(mine) <= measure(cheap) * (1 + 1e-3) + 1.0  # whole hours, rounding
    assert_sound(sc, mine)


def test_a_carbon_price_trades_dollars_for_tonnes() -> None:
    sc = generate(workloads=5, sites=8, seed=3)
    plain = make_plan(sc, solver="cpsat", time_limit=20)
    priced = make_plan(sc, objective="cost+1000000*carbon", solver="cpsat", time_limit=20)
    assert priced.objective == "cost+1000000*carbon" and priced.objective_unit == "USD"
    if plain.status == priced.status == "optimal" and not plain.unplaced:
        assert priced.tco2e <= plain.tco2e + 1e-6
        assert priced.total_cost_usd >= plain.total_cost_usd - 1.0


# --- progress ------------------------------------------------------------------------------------
class Boom(RuntimeError):
    pass


@pytest.mark.parametrize("solver", ["cpsat", "lns"])
def test_a_progress_callback_that_raises_stops_the_search_and_surfaces(solver: str) -> None:
    """An exception inside a CP-SAT callback would end the process; the search keeps it,
    stops, and raises it once the searches have returned."""
    seen: list[SearchState] = []

    def boom(state: SearchState) -> None:
        seen.append(state)
        raise Boom("progress sink failed")

    with pytest.raises(Boom):
        make_plan(
            generate(workloads=6, sites=6, seed=2), solver=solver, time_limit=10, on_progress=boom
        )
    assert len(seen) == 1  # reported once, then never again


def test_progress_reports_the_best_plan_and_the_bound() -> None:
    seen: list[SearchState] = []
    plan = make_plan(
        generate(workloads=6, sites=6, seed=2), solver="lns", time_limit=10, on_progress=seen.append
    )
    assert seen and all(s.bound is not None for s in seen)
    last = [s for s in seen if s.best is not None][-1]
    assert last.best is not None and last.best.unplaced == len(plan.unplaced)
    assert "gap" in last.describe() or "bound allows" in last.describe()


# --- frontier, empty and impossible portfolios ---------------------------------------------------
def test_pareto_frontier_trades_cost_for_time(rules: RuleSet) -> None:
    sc = generate(workloads=4, sites=8, seed=2)
    points = frontier(Candidates(sc, rules, regime=sc.regime, date=sc.date), points=4, time_limit=8)
    assert points
    ordered = sorted(points, key=lambda p: p.makespan_hours)
    for a, b in itertools.pairwise(ordered):
        assert a.makespan_hours < b.makespan_hours
        assert a.cost_usd > b.cost_usd  # a faster point that is not dearer would dominate


@pytest.mark.parametrize("solver", SOLVERS)
def test_empty_portfolio_is_a_clear_answer(solver: str) -> None:
    sc = scenario(workloads=0)
    plan = make_plan(sc, solver=solver)
    assert plan.status == "optimal"
    assert plan.assignments == () and plan.unplaced == ()
    assert any("no workloads" in n for n in plan.notes)


def test_a_portfolio_with_no_lawful_option_is_infeasible_not_an_error() -> None:
    sc = scenario(hq="CN", pool={"chip": "H100-SXM", "count": 0, "usd_per_chip_hour": 2.0})
    plan = make_plan(sc)
    assert plan.status == "infeasible"
    assert [u.stage for u in plan.unplaced] == ["pretrain"]
    assert plan.unplaced[0].lost_codes == {"capacity": 1}
    assert plan.why_not


# --- holding what the model's ticks cannot re-time -----------------------------------------------
def _tight_chain(slack_hours: float) -> Scenario:
    """A pre-training run, then a serving stage after it, due with ``slack_hours`` to spare
    after the greedy plan's exact end."""
    # half a minute past a whole minute, so both stages' durations round up in the model's
    # ticks (a pre-training run of a whole number of minutes leaves the chain 18 s to spare)
    base = scenario(tokens=tokens_for(0.6 + 0.5 / 1440))
    first = make_plan(base, solver="greedy")
    (a,) = first.assignments
    doc = base.model_dump(mode="json", exclude_none=True)
    due = DAY0 + dt.timedelta(days=int(a.end_h // 24) + 30)
    days = (hours(due) + 24 - slack_hours - a.end_h) / 24
    doc["workloads"][0]["deadline"] = str(due)
    doc["workloads"][0]["stages"].append(
        {"id": "serve", "kind": "serve", "after": ["pretrain"], "chips": 8, "days": days}
    )
    return parse_scenario(doc)


@pytest.mark.parametrize("solver", ["cpsat", "lns"])
def test_a_chain_packed_to_its_deadline_is_held_where_the_greedy_plan_put_it(solver: str) -> None:
    """Eighteen seconds to spare: rounded to whole minutes the serving stage misses its hard
    deadline, so the model cannot re-time the workload; it is held where the greedy plan put
    it, and the search's answer still places both stages."""
    sc = _tight_chain(0.005)
    greedy = make_plan(sc, solver="greedy")
    assert not greedy.unplaced
    plan = make_plan(sc, solver=solver, time_limit=10)
    assert not plan.unplaced
    assert plan.search is not None and plan.search.get("held") == ["w0"]
    assert_sound(sc, plan)
    _, g, _, pf = _setup(sc)
    start, held = retime(pf, g.state, build(pf, objective("cost")).horizon)
    assert held.workloads == {"w0"} and start == {}
    roomy = _tight_chain(1.0)  # an hour to spare: re-timed, nothing held
    _, g, _, pf = _setup(roomy)
    assert not retime(pf, g.state, build(pf, objective("cost")).horizon).held.workloads
