"""A neighbourhood that places a stage is settled at the new count: the search re-solves the
piece's other workloads with the placed stage held, so a time-limited first answer that placed
it at any price (on seed 20003: rivals sent decades past their soft deadlines, +$2.03B) does
not stand when the same count costs less."""

from __future__ import annotations

from typing import Any

import pytest
from ortools.sat.python import cp_model

from lns_helpers import search, slot, with_pool
from optimizer_cases import assert_sound, first_come
from straits.model.scenario import Scenario
from straits.plan.solution import evaluate, extract, from_solver
from straits.plan.stoppable import solve_stoppable

A, B = ("a", "pretrain"), ("b", "pretrain")


def _three_pools() -> Scenario:
    """:func:`first_come` (b only in Singapore, which fits one run at a time; a first there)
    with a third, dearest pool where a could also run: $2, $3 and $9 a chip-hour."""
    return with_pool(first_come(), "my9", "MY", 9.0)


def test_a_piece_that_places_a_stage_is_settled_at_the_new_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CP-SAT, stopped by its time limit at its first answer that places b, sends a to the
    dearest pool; the search takes it (a stage placed comes first) and then re-solves a with
    b held, which moves it to the $3 pool: the same count at the least value there is."""
    sc = _three_pools()
    lns, baseline, held, pf, goal, start = search(sc, seed=1)
    assert start[B].choice is None and lns.value.unplaced == 1
    dear = {A: slot(pf, A, "my9"), B: slot(pf, B, "sg")}
    best = {A: slot(pf, A, "my"), B: slot(pf, B, "sg")}
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
    lns, _, _, pf, goal, _ = search(_three_pools(), seed=1)
    assert lns._solve({"a", "b"}, 5.0, 60.0)
    best = {A: slot(pf, A, "my"), B: slot(pf, B, "sg")}
    assert lns.value == evaluate(pf, goal, best) and lns.stats.settled == 0
