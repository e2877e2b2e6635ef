"""The LP bound's second try (``lp_bound._solve``): when GLOP's first answer is ABNORMAL the
model is solved again, without presolve, on a fresh solver, and its answer is the bound.

GLOP rarely answers ABNORMAL (a hypothesis case once did, in the CI), so the first answer is
forced here: the real solve runs and is reported ABNORMAL. Re-solved in place, OR-Tools 9.15
answered INFEASIBLE for this feasible LP and the bound was lost (found by a review)."""

from __future__ import annotations

from typing import Any

import pytest
from ortools.linear_solver import pywraplp

import straits.plan.lp_bound as lpm
from optimizer_cases import DAY0, _setup, scenario, tokens_for
from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan.alone import alone_bound
from straits.plan.objectives import objective


def _one_workload() -> Scenario:
    """Bought chips only, a soft deadline on day 0, a budget, two stages: the scenario whose
    LP came back ABNORMAL in the CI."""
    pool = {
        "chip": "H100-SXM",
        "count": 0,
        "usd_per_chip_hour": 2.0,
        "procurable": {"max": 64, "usd_per_chip": 30000, "lead_days": 3},
    }
    doc = scenario(pool=pool).model_dump(mode="json", exclude_none=True)
    one = doc["workloads"][0]
    doc["workloads"] = [
        {
            **one,
            "id": "w0",
            "stages": [
                {**one["stages"][0], "tokens": tokens_for(1)},
                {"id": "serve", "kind": "serve", "after": ["pretrain"], "chips": 8, "days": 1.0},
            ],
            "deadline": str(DAY0),
            "deadline_policy": "soft",
            "late_penalty_usd_per_day": 12.0,
            "budget_usd": 30000.0,
        }
    ]
    return parse_scenario(doc)


class _FirstAbnormal:
    """``lp``, its first answer reported ABNORMAL (the solve itself runs)."""

    def __init__(self, lp: Any) -> None:
        self.lp, self.solves = lp, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lp, name)

    def Solve(self) -> int:  # OR-Tools. name
        self.solves += 1
        status = int(self.lp.Solve())
        return int(pywraplp.Solver.ABNORMAL) if self.solves == 1 else status


@pytest.mark.parametrize("count_first", [True, False])
def test_an_abnormal_first_answer_is_solved_again_to_the_same_bound(
    monkeypatch: pytest.MonkeyPatch, count_first: bool
) -> None:
    sc = _one_workload()
    _, _, _, pf = _setup(sc, "cost")
    alone = alone_bound(pf, objective("cost"))
    assert alone is not None
    unplaced = None if count_first else alone.bound.unplaced  # two solves, or the value's only
    plain = lpm.lp_bound(pf, alone, plan_unplaced=unplaced)
    assert plain is not None
    real = lpm._solve
    statuses: list[int] = []
    wrapped: list[_FirstAbnormal] = []

    def forced(lp: Any, stop_at: float, clock: Any) -> int:
        wrapped.append(_FirstAbnormal(lp))
        statuses.append(real(wrapped[-1], stop_at, clock))
        return statuses[-1]

    monkeypatch.setattr(lpm, "_solve", forced)
    again = lpm.lp_bound(pf, alone, plan_unplaced=unplaced)
    assert all(w.solves == 1 for w in wrapped)  # the second try is not the same solver
    assert statuses and all(s == pywraplp.Solver.OPTIMAL for s in statuses)
    assert again is not None
    assert again.unplaced == plain.unplaced
    assert again.value == pytest.approx(plain.value, rel=1e-6)


def test_an_answer_that_is_not_optimal_the_second_time_bounds_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sc = _one_workload()
    _, _, _, pf = _setup(sc, "cost")
    alone = alone_bound(pf, objective("cost"))
    assert alone is not None
    monkeypatch.setattr(lpm, "_fresh", lambda lp, params, seconds: pywraplp.Solver.ABNORMAL)
    real = lpm._solve
    monkeypatch.setattr(lpm, "_solve", lambda lp, s, c: real(_FirstAbnormal(lp), s, c))
    assert lpm.lp_bound(pf, alone, plan_unplaced=None) is None
