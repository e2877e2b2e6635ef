"""`plan --pareto N` within its time limit: the models' builds count against the solves'
shares, and no portfolio or model is made that the time left cannot cover.

Before, each solve was given an even share of the time left and then built its model before
solving for that whole share, and the fastest plan's portfolio was made whatever was left:
`straits plan --pareto 3 --time-limit 5` on 1,000 workloads took 8.3 s (its cost portfolio
3.1 s, the time portfolio 2.0 s, with no time left to solve either). Clocks are fakes."""

from __future__ import annotations

from typing import Any

import pytest

from straits.plan import pareto
from straits.plan.candidates import Candidates
from straits.plan.deadline import Deadline
from straits.rules import ruleset
from straits.simulate.generate import generate


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def cand() -> Candidates:
    sc = generate(workloads=4, sites=6, seed=2)
    return Candidates(sc, ruleset(), regime=sc.regime, date=sc.date)


def _counted(monkeypatch: pytest.MonkeyPatch, name: str, then: Any = None) -> list[int]:
    calls: list[int] = []
    real = getattr(pareto, name)

    def wrapped(*a: Any, **k: Any) -> Any:
        calls.append(1)
        out = real(*a, **k)
        if then is not None:
            then()
        return out

    monkeypatch.setattr(pareto, name, wrapped)
    return calls


def test_too_little_time_for_a_model_makes_no_portfolio(
    cand: Candidates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0.6 s left after the greedy plan: less than a model's build and the least search
    (`straits plan` searches nothing then either), so the frontier is the greedy plan and
    neither portfolio is made."""
    made = _counted(monkeypatch, "Portfolio")
    built = _counted(monkeypatch, "build")
    points = pareto.frontier(cand, points=4, deadline=Deadline(0.6, clock=Clock()))
    assert [p.status for p in points] == ["greedy"]
    assert made == [] and built == []


def test_a_build_counts_against_its_share_and_none_starts_that_cannot_end(
    cand: Candidates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each model takes 6 s to build (on the fake clock) of an 8 s limit: the first solve's
    share (2 s) is spent by its build, so it does not solve, and no second model is started
    with less time left than the first took; the frontier ends within the limit."""
    clock = Clock()

    def six() -> None:
        clock.t += 6.0

    built = _counted(monkeypatch, "build", then=six)
    d = Deadline(8.0, clock=clock)
    points = pareto.frontier(cand, points=4, deadline=d)
    assert [p.status for p in points] == ["greedy"]
    assert len(built) == 1
    assert d.elapsed() <= 8.0
