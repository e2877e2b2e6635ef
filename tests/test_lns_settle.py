"""A neighbourhood that places a stage is settled at the new count: the search re-solves the
piece's other workloads with the placed stage held, so a time-limited first answer that placed
it at any price (on seed 20003: rivals sent decades past their soft deadlines, +$2.03B) does
not stand when the same count costs less."""

from __future__ import annotations

from typing import Any

import pytest
from ortools.sat.python import cp_model

from optimizer_cases import _setup, assert_sound, first_come
from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan.cpsat_model import Slot, build
from straits.plan.lns import NeighbourhoodSearch
from straits.plan.objectives import objective
from straits.plan.portfolio import Portfolio
from straits.plan.retime import retime
from straits.plan.schedule import StageKey
from straits.plan.solution import evaluate, extract, from_solver
from straits.plan.stoppable import solve_stoppable

A, B = ("a", "pretrain"), ("b", "pretrain")


def _three_pools() -> Scenario:
    """:func:`first_come` (b only in Singapore, which fits one run at a time; a first there)
    with a third, dearest pool where a could also run: $2, $3 and $9 a chip-hour."""
    doc = first_come().model_dump(mode="json", exclude_none=True)
    doc["sites"].append(
        {
            "id": "my9",
            "country": "MY",
            "operator_hq": "MY",
            "pools": [{"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 9.0}],
        }
    )
    return parse_scenario(doc)


def _slot(pf: Portfolio, key: StageKey, site: str) -> Slot:
    idx = next(
        i for i, c in enumerate(pf.stages[key].choices) if c.option.key.startswith(f"{site}/")
    )
    return Slot(idx, pf.stages[key].choices[idx].release)


def test_a_piece_that_places_a_stage_is_settled_at_the_new_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CP-SAT, stopped by its time limit at its first answer that places b, sends a to the
    dearest pool; the search takes it (a stage placed comes first) and then re-solves a with
    b held, which moves it to the $3 pool: the same count at the least value there is."""
    sc = _three_pools()
    _, greedy, baseline, pf = _setup(sc)
    goal = objective("cost")
    horizon = build(pf, goal).horizon
    start, held = retime(pf, greedy.state, horizon)
    lns = NeighbourhoodSearch(pf, goal, horizon, start, seed=1)
    assert start[B].choice is None and lns.value.unplaced == 1
    dear = {A: _slot(pf, A, "my9"), B: _slot(pf, B, "sg")}
    best = {A: _slot(pf, A, "my"), B: _slot(pf, B, "sg")}
    assert evaluate(pf, goal, dear) > evaluate(pf, goal, best)

    solves: list[int] = []

    def first_stopped(solver: cp_model.CpSolver, model: cp_model.CpModel, stop: Any) -> Any:
        solves.append(solve_stoppable(solver, model, stop))
        return cp_model.FEASIBLE if len(solves) == 1 else solves[-1]

    def first_dear(pm: Any, solver: cp_model.CpSolver) -> Any:
        return dict(dear) if len(solves) == 1 else from_solver(pm, solver)

    monkeypatch.setattr("straits.plan.lns.solve_stoppable", first_stopped)
    monkeypatch.setattr("straits.plan.lns.from_solver", first_dear)
    assert lns._solve({"a", "b"}, 1.0, 60.0)
    assert lns.value.unplaced == 0
    assert lns.value == evaluate(pf, goal, best)
    assert pf.stages[A].choices[lns.sol[A].choice or 0].option.key.startswith("my/")
    assert lns.stats.settled >= 1 and lns.stats.to_json()["settled"] == lns.stats.settled
    assert evaluate(pf, goal, lns.sol) == lns.value
    plan = extract(pf, lns.sol, baseline, goal, "feasible", "lns", held)
    assert plan is not None and not plan.unplaced
    assert_sound(sc, plan)


def test_a_piece_proved_optimal_is_not_settled() -> None:
    """When CP-SAT proves the piece that places b optimal, nothing is left to settle: the
    search places b and sends a to the $3 pool in one solve."""
    sc = _three_pools()
    _, greedy, _, pf = _setup(sc)
    goal = objective("cost")
    horizon = build(pf, goal).horizon
    start, _ = retime(pf, greedy.state, horizon)
    lns = NeighbourhoodSearch(pf, goal, horizon, start, seed=1)
    assert lns._solve({"a", "b"}, 5.0, 60.0)
    best = {A: _slot(pf, A, "my"), B: _slot(pf, B, "sg")}
    assert lns.value == evaluate(pf, goal, best) and lns.stats.settled == 0
