"""Who gets the second core: above ``WHOLE_MAX_STAGES`` the neighbourhood search runs without
the whole-portfolio model and its pieces get ``PIECE_WORKERS`` CP-SAT workers; below it the
whole model runs beside one-worker pieces, as before."""

from __future__ import annotations

import pytest

import straits.plan.solvers as solvers
from optimizer_cases import assert_sound
from straits.plan import make_plan
from straits.plan.search import PIECE_WORKERS
from straits.simulate.generate import generate


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
