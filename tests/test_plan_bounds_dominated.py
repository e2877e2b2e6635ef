"""The LP bound leaves dominated choices out without moving its optimum.

A choice that another on a free pool, or another of the same stage on its own pool, beats on
value, budget share, lateness and chip-hours adds nothing to the relaxation: it is dropped or
marked, and the LP with and without those columns has the same optimum, below the greedy plan
and the optimum CP-SAT proves. Moved from tests/test_plan_bounds.py (its helpers are
imported from there).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer_cases import _setup
from straits.plan import lp_bound as lp_module
from straits.plan import lp_rows
from straits.plan.alone import alone_bound
from straits.plan.cpsat_model import Score
from straits.plan.lp_bound import _Choice, _undominated, lp_bound
from straits.plan.lp_rows import Use, dominated
from straits.plan.objectives import objective
from straits.simulate.generate import generate
from test_plan_bounds import GOALS, _proved_optimum


def _choice(
    res: str, value: float, spend: float = 0.0, penalty: float = 0.0, at: int = 0
) -> _Choice:
    return _Choice(res, Use(None, 0, 8, 0.0, 10.0, 100.0), value, spend, penalty, at)


def test_a_choice_a_free_one_dominates_is_left_out_of_the_lp() -> None:
    """Choices on pools without capacity rows ("free") that another free one dominates on
    value, budget share and lateness are dropped, and so are those on competing pools that a
    free one dominates; a competing choice cheaper on any of the three is kept, unless
    another on its pool dominates it (``competing``: per pool, which of its choices)."""
    free_best = _choice("f1", 10.0, 0.2, 0.0)
    free_spare = _choice("f2", 9.0, 0.5, 0.0)  # cheaper, but more of the budget: kept
    free_worse = _choice("f3", 11.0, 0.2, 1.0)  # dominated by f1
    hot_worse = _choice("hot", 12.0, 0.3, 0.0, at=0)  # dominated by f1
    hot_cheap = _choice("hot", 8.0, 0.9, 0.0, at=1)  # cheaper than every free one: kept
    hot_late = _choice("hot", 10.0, 0.2, 0.0, at=2)  # ties f1: dropped (f1 serves as well)
    none = {"hot": np.zeros(3, dtype=bool)}
    kept = _undominated([free_worse, hot_worse, free_best, hot_cheap, free_spare, hot_late], none)
    assert sorted(kept) == sorted([free_best, free_spare, hot_cheap])
    assert _undominated([hot_worse, hot_cheap], none) == [hot_worse, hot_cheap]
    beaten = {"hot": np.array([False, True, False])}  # another on "hot" dominates hot_cheap
    assert _undominated([hot_worse, hot_cheap], beaten) == [hot_worse]


def test_a_choice_another_on_its_pool_dominates_is_marked() -> None:
    """On one pool, a stage's choice is dominated by another of the same stage no larger in
    value, budget share, lateness and every window's chip-hours; of equal ones the first is
    kept; one smaller anywhere, or of another stage, is not dominated."""
    costs = [
        (10.0, 0.1, 0.0),  # 0: stage 0
        (10.0, 0.1, 0.0),  # 1: stage 0, equal to 0: dominated (0 comes first)
        (12.0, 0.1, 0.0),  # 2: stage 0, dearer, no less need: dominated by 0
        (12.0, 0.1, 0.0),  # 3: stage 0, dearer but less in the second window: kept
        (9.0, 0.1, 0.0),  # 4: stage 1, cheaper than 0 but another stage: kept
        (9.5, 0.1, 5.0),  # 5: stage 1, dearer and more late than 4, needs less: kept
        (9.5, 0.2, 5.0),  # 6: stage 1, as 5 with more of the budget: dominated by 5
    ]
    stage = np.array([0, 0, 0, 0, 1, 1, 1])
    need = np.array(
        [[80.0, 80.0], [80.0, 80.0], [80.0, 90.0], [80.0, 40.0], [99.0, 99.0], [0, 0], [0, 0]]
    )
    out = dominated(costs, stage, need)
    assert out.tolist() == [False, True, True, False, False, False, True]
    # many pairs, compared a few at a time: the same answer
    lp_rows.PAIRS_AT_ONCE, saved = 2, lp_rows.PAIRS_AT_ONCE
    try:
        assert dominated(costs, stage, need).tolist() == out.tolist()
    finally:
        lp_rows.PAIRS_AT_ONCE = saved


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(4, 10),
    m=st.integers(1, 2),
    goal=st.sampled_from(GOALS),
)
@settings(max_examples=10, deadline=None)
def test_choices_on_a_shared_pool_left_out_keep_the_lp_and_its_bound(
    seed: int, n: int, m: int, goal: str
) -> None:
    """Portfolios on one or two sites, where a stage has several choices on a pool its rivals
    compete for: the LP without the choices another on the same pool dominates has the
    optimum of the one with every column, and it stays below the greedy plan."""
    sc = generate(workloads=n, sites=m, seed=seed)
    cand, _, plan, pf = _setup(sc, goal)
    alone = alone_bound(pf, objective(goal))
    assert alone is not None
    out = []
    with pytest.MonkeyPatch.context() as mp:
        for prune, same in ((True, True), (True, False), (False, False)):
            mp.setattr(lp_module, "PRUNE", prune)
            mp.setattr(lp_module, "PRUNE_SAME_POOL", same)
            out.append(lp_bound(pf, alone, plan_unplaced=len(plan.unplaced)))
    assert all(b is not None for b in out)
    pruned, *others = (b for b in out if b is not None)
    for other in others:
        assert pruned.unplaced == other.unplaced
        assert pruned.value == pytest.approx(other.value, rel=1e-5, abs=1e-3)
    greedy = Score(len(plan.unplaced), objective(goal).plan_value(plan, sc, cand.energy_of))
    assert pruned.unplaced <= greedy.unplaced
    if pruned.unplaced == greedy.unplaced:
        assert pruned.value <= greedy.value + 1e-6


@pytest.mark.parametrize(("workloads", "sites", "seed"), [(6, 2, 7), (10, 1, 23), (10, 2, 11)])
def test_the_same_pool_rule_leaves_columns_out_at_the_same_optimum(
    workloads: int, sites: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Portfolios where the rule does leave choices out (so the comparison above is not
    empty): the same optimum with and without it, below the optimum CP-SAT proves."""
    sc = generate(workloads=workloads, sites=sites, seed=seed)
    _, _, plan, pf = _setup(sc, "cost")
    alone = alone_bound(pf, objective("cost"))
    assert alone is not None
    marked: list[int] = []

    def spy(costs: Any, stage: Any, need: Any) -> Any:
        out = dominated(costs, stage, need)
        marked.append(int(out.sum()))
        return out

    monkeypatch.setattr(lp_module, "dominated", spy)
    pruned = lp_bound(pf, alone, plan_unplaced=len(plan.unplaced))
    assert sum(marked) > 0
    monkeypatch.setattr(lp_module, "PRUNE_SAME_POOL", False)
    whole = lp_bound(pf, alone, plan_unplaced=len(plan.unplaced))
    assert pruned is not None and whole is not None
    assert pruned.unplaced == whole.unplaced
    assert pruned.value == pytest.approx(whole.value, rel=1e-5, abs=1e-3)
    best = _proved_optimum(pf, "cost")
    if best is not None:
        assert pruned.unplaced <= best.unplaced
        if pruned.unplaced == best.unplaced:
            assert pruned.value <= best.value + 1e-6


@pytest.mark.parametrize("seed", [7, 11, 19])
@pytest.mark.parametrize("goal", ["cost", "cost+500*time"])
def test_leaving_dominated_choices_out_does_not_move_the_lp(
    seed: int, goal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The LP with the dominated columns left out has the optimum of the one with every
    column (within GLOP's tolerances): the pruning keeps the bound as strong, and as valid."""
    sc = generate(workloads=8, sites=3, seed=seed)
    _, _, plan, pf = _setup(sc, goal)
    alone = alone_bound(pf, objective(goal))
    assert alone is not None
    out = []
    for prune in (True, False):
        monkeypatch.setattr(lp_module, "PRUNE", prune)
        out.append(lp_bound(pf, alone, plan_unplaced=len(plan.unplaced)))
    pruned, whole = out
    assert pruned is not None and whole is not None
    assert pruned.unplaced == whole.unplaced
    assert pruned.value == pytest.approx(whole.value, rel=1e-5, abs=1e-3)
