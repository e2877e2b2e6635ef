"""Who gets the second core: above ``WHOLE_MAX_STAGES`` the neighbourhood search runs without
the whole-portfolio model and its pieces get ``PIECE_WORKERS`` CP-SAT workers; below it the
whole model runs beside one-worker pieces, as before."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import straits.plan.cpsat_model as cpsat_model
import straits.plan.lns as lns
import straits.plan.solvers as solvers
from optimizer_cases import _setup, assert_sound
from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.plan.cpsat_model import PortfolioModel
from straits.plan.horizon import model_ticks
from straits.plan.lns import NeighbourhoodSearch
from straits.plan.objectives import objective
from straits.plan.retime import model_horizon
from straits.plan.search import PIECE_WORKERS
from straits.simulate.generate import generate, generate_dict


def test_a_large_search_gives_the_whole_models_core_to_its_pieces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sc = generate(workloads=8, sites=8, seed=3)
    monkeypatch.setattr(solvers, "WHOLE_MAX_STAGES", 5)  # this portfolio counts as large
    plan = make_plan(sc, solver="lns", time_limit=6)
    search = plan.search
    assert search is not None
    assert search["whole_model"] == {"status": "not run", "solutions": 0}
    assert search["neighbourhoods"]["workers"] == PIECE_WORKERS > 1
    assert search["neighbourhoods"]["rounds"] >= 1
    assert search["ended"] == "time"
    assert_sound(sc, plan)
    assert plan.baseline_value is not None and plan.objective_value is not None
    assert plan.objective_value <= plan.baseline_value + 1.0  # never worse than greedy


def test_a_small_search_keeps_the_whole_model_beside_one_worker_pieces() -> None:
    sc = generate(workloads=8, sites=8, seed=3)
    plan = make_plan(sc, solver="lns", time_limit=6)
    assert plan.search is not None
    assert plan.search["whole_model"]["status"] in {"optimal", "feasible"}
    assert plan.search["neighbourhoods"]["workers"] == 1
    assert_sound(sc, plan)


def _counting_build(monkeypatch: pytest.MonkeyPatch) -> list[PortfolioModel]:
    """Every whole model ``solvers`` builds, in order."""
    built: list[PortfolioModel] = []

    def counted(*args: Any, **kwargs: Any) -> PortfolioModel:
        built.append(cpsat_model.build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(solvers, "build", counted)
    return built


@pytest.mark.parametrize(("goal", "builds"), [("cost", 0), ("time", 1), ("cost+completion", 0)])
def test_a_large_search_builds_the_whole_model_only_for_a_tie_unit(
    monkeypatch: pytest.MonkeyPatch, goal: str, builds: int
) -> None:
    """Above ``WHOLE_MAX_STAGES`` the whole model is never searched: it was built all the same
    (1.4 s of 55 at 1,000 x 200) for its horizon and tie unit. It is now built only where the
    objective has a tie unit (a named objective other than cost), and the pieces get the
    horizon a built model would have had."""
    sc = generate(workloads=8, sites=8, seed=3)
    monkeypatch.setattr(solvers, "WHOLE_MAX_STAGES", 5)
    built = _counting_build(monkeypatch)
    given: list[tuple[int, int]] = []
    real = NeighbourhoodSearch

    def seen(pf: Any, objective: Any, horizon: int, *args: Any, **kwargs: Any) -> Any:
        given.append((horizon, kwargs["tie_unit"]))
        return real(pf, objective, horizon, *args, **kwargs)

    monkeypatch.setattr(solvers, "NeighbourhoodSearch", seen)
    plan = make_plan(sc, objective=goal, solver="lns", time_limit=6)
    assert len(built) == builds
    assert plan.search is not None and plan.search["whole_model"]["status"] == "not run"
    assert len(given) == 1
    _, _, _, pf = _setup(sc, goal)
    whole = cpsat_model.build(pf, objective(goal), horizon=model_horizon(pf))
    assert given[0] == (whole.horizon, whole.tie_unit)
    assert (whole.tie_unit > 0) == (builds == 1)
    assert_sound(sc, plan)


def test_a_small_search_still_builds_the_whole_model(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _counting_build(monkeypatch)
    make_plan(generate(workloads=8, sites=8, seed=3), solver="lns", time_limit=10)
    assert len(built) == 1


@given(seed=st.integers(0, 10_000), data=st.data())
@settings(max_examples=15, deadline=None)
def test_model_ticks_is_the_horizon_build_gives(seed: int, data: st.DataObject) -> None:
    """The horizon the pieces are given without a whole model is the one ``build`` gives a
    model of the same workloads, with or without a horizon asked for."""
    sc = generate(workloads=4, sites=4, seed=seed)
    _, _, _, pf = _setup(sc)
    ids = sorted(w.id for w in sc.workloads)
    only = data.draw(st.none() | st.sets(st.sampled_from(ids), min_size=1))
    asked = data.draw(st.sampled_from([None, model_horizon(pf), 24 * 4]))
    pm = cpsat_model.build(pf, objective("cost"), horizon=asked, only=only)
    assert model_ticks(pf, asked, only) == pm.horizon


def test_a_piece_too_large_for_64_bit_integers_stops_the_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the whole model its ``ModelTooLarge`` (the greedy plan stands at once) is not
    raised first: the first piece's is. The search stops there (it searched on to its limit,
    building and dropping pieces), the greedy plan stands, and the answer says why."""
    sc = generate(workloads=8, sites=8, seed=3)
    monkeypatch.setattr(solvers, "WHOLE_MAX_STAGES", 5)

    def too_large(*args: Any, **kwargs: Any) -> Any:
        raise cpsat_model.ModelTooLarge("the objective's values reach more than 64 bits")

    monkeypatch.setattr(lns, "build", too_large)
    plan = make_plan(sc, solver="lns", time_limit=10)
    assert plan.search is not None
    assert plan.search["answer"] == "greedy"
    assert plan.search["model_too_large"]
    assert plan.search["ended"] == "model_too_large"  # not "time": it stopped after one round
    assert plan.search["neighbourhoods"]["rounds"] == 1
    assert_sound(sc, plan)


def test_penalties_past_64_bits_leave_the_greedy_plan_as_the_whole_model_did(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Soft deadlines at $1e12 a day under cost+completion (1/60,000 dollar units): every
    model's objective is past 64-bit integers. Large (no whole model) or small (the whole
    model refuses first), the answer is the greedy plan, and the search says so."""
    # 10 s, not 3: the search stops after its first piece, but on a loaded machine the bound
    # took 1.2 s of 3 and no piece was tried (a clean-clone CI failed here)
    doc = generate_dict(workloads=8, sites=8, seed=3)
    for w in doc["workloads"]:
        w.update(deadline="2025-07-01", deadline_policy="soft", late_penalty_usd_per_day=1e12)
    sc = parse_scenario(doc)
    small = make_plan(sc, objective="cost+completion", solver="lns", time_limit=10)
    monkeypatch.setattr(solvers, "WHOLE_MAX_STAGES", 5)
    large = make_plan(sc, objective="cost+completion", solver="lns", time_limit=10)
    assert large.search is not None and small.search is not None
    assert large.search["answer"] == small.search["answer"] == "greedy"
    assert "model_too_large" in large.search
    assert large.search["neighbourhoods"]["rounds"] == 1
    assert [(a.workload, a.stage, a.site, a.chips) for a in large.assignments] == [
        (a.workload, a.stage, a.site, a.chips) for a in small.assignments
    ]
    assert_sound(sc, large)


@pytest.mark.parametrize("seed", [2**31 - 1, 2**31 - 2])
def test_the_highest_seeds_a_plan_takes_search_without_overflow(seed: int) -> None:
    """CP-SAT's seed is an int32: `plan --solver lns --seed 2147483647` (the top of the range
    --seed takes) added its round to it, a TypeError traceback (a fresh-eye attack)."""
    sc = generate(workloads=60, sites=10, seed=7)  # no proof within the limit: rounds run
    # 10 s, not 5: on a loaded machine the start and the greedy plan took 3.9 s of 5 and no
    # round ran (a clean-clone CI failed here at the highest seed; 5 rounds in 10 s then)
    plan = make_plan(sc, solver="lns", time_limit=10, seed=seed)
    assert plan.search is not None and plan.search["neighbourhoods"]["rounds"] >= 2
