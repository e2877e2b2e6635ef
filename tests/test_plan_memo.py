"""What makes the planner faster changes its speed, never its answer: the same plan
(placements, verdicts, reasons, why-not) with the rule memos of :mod:`straits.plan.candidates`
and :mod:`straits.plan.checks` on as with them off, and with a stage's fits numbered as before,
on generated portfolios; and the garbage collector's thresholds come back after a plan."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Hashable
from typing import Any

import numpy as np
import pytest

from straits.estimate import Estimate
from straits.model.request import CheckRequest
from straits.model.scenario import Scenario, Site, Stage, Workload
from straits.plan import make_plan
from straits.plan.candidates import Candidates
from straits.plan.checks import ExportLedger, Predecessor, Question
from straits.plan.collector import THRESHOLDS, fewer_collections
from straits.plan.deadline import Deadline
from straits.plan.options import Fit, FitSpec, fit_stage
from straits.plan.registry import objective
from straits.plan.solvers import GreedySolver, SolveContext
from straits.plan.table import FitMemo, table_fits
from straits.rules import RuleSet, ruleset
from straits.rules.pack_loader import Rule
from straits.simulate.generate import generate

#: (workloads, sites, seed, regime): spread and contended portfolios, both regimes
CASES = [
    (6, 12, 1, "enacted"),
    (12, 30, 2, "ai-diffusion"),
    (20, 6, 3, "enacted"),
    (30, 6, 4, "enacted"),
    (25, 40, 5, "ai-diffusion"),
]


class _Plain(Candidates):
    """Candidates with the memos this module tests turned off: every miss of a placement's
    questions goes to the rule set whole, and no request or fact is shared."""

    def __init__(self, sc: Scenario, rules: RuleSet, *, regime: str, date: dt.date) -> None:
        super().__init__(sc, rules, regime=regime, date=date)

    def _applicable(self, requests: list[CheckRequest], keys: list[Hashable]) -> list[list[Rule]]:
        return self.rules.applicable(requests)

    def questions(
        self,
        w: Workload,
        stage: Stage,
        site: Site,
        chip: str,
        preds: list[Predecessor],
        exports: list[ExportLedger],
    ) -> list[Question]:
        # fresh objects (facts included): no request is shared, every memo key made anew
        return [
            Question(q.label, q.request.model_copy(deep=True))
            for q in super().questions(w, stage, site, chip, preds, exports)
        ]


def _greedy_plan(cls: type[Candidates], sc: Scenario, goal: str) -> dict[str, Any]:
    cand = cls(sc, RuleSet(ruleset().packs), regime=sc.regime, date=sc.date)
    plan = GreedySolver().solve(cand, objective(goal), SolveContext(Deadline(None)))
    out = plan.to_json(details=True)
    out.pop("timings")
    return out


@pytest.mark.parametrize(("n", "m", "seed", "regime"), CASES)
@pytest.mark.parametrize("goal", ["cost", "time"])
def test_memos_leave_the_plan_as_it_is(n: int, m: int, seed: int, regime: str, goal: str) -> None:
    sc = generate(workloads=n, sites=m, seed=seed, regime=regime)
    memo, plain = _greedy_plan(Candidates, sc, goal), _greedy_plan(_Plain, sc, goal)
    assert memo == plain
    assert memo["diagnosis"]  # a plan with something in it


def _fits_one_by_one(
    sc: Scenario, cand: Candidates, stage_of: tuple[Any, Any]
) -> tuple[list[Fit], np.ndarray]:
    """The fits as they were built before they were vectorised: row by row, a new fit for each
    (chip, count) not seen before."""
    w, stage = stage_of
    ix = cand.index
    rows, idx, counts = ix.rows_for(w.tenant)
    site = ix.res_site[idx]
    allowed = np.ones(len(rows), dtype=bool)
    if stage.locations:
        allowed = np.isin(ix.site_country[site], list(stage.locations))
    fits: list[Fit] = []
    seen: dict[tuple[int, int], int] = {}
    estimates: dict[tuple[str, int | None], Estimate] = {}
    fit_of = np.full(len(rows), -1, dtype=np.int64)
    chip = ix.res_chip[idx]
    for i in np.flatnonzero(allowed):
        key = (int(chip[i]), int(counts[i]))
        if key not in seen:
            seen[key] = len(fits)
            fits.append(
                fit_stage(sc, w, stage, rows[i].resource.chip, int(counts[i]), estimates, cand.menu)
            )
        fit_of[i] = seen[key]
    return fits, fit_of


@pytest.mark.parametrize(("n", "m", "seed", "regime"), CASES[:3])
def test_fits_are_numbered_as_the_rows_first_use_them(
    n: int, m: int, seed: int, regime: str, rules: RuleSet
) -> None:
    sc = generate(workloads=n, sites=m, seed=seed, regime=regime)
    cand = Candidates(sc, rules, regime=regime, date=sc.date)
    for w in sc.workloads:
        for stage in w.stages:
            fits, fit_of = table_fits(sc, cand.index, w, stage, cand.menu)
            want, want_of = _fits_one_by_one(sc, cand, (w, stage))
            assert fits == want
            assert fit_of.tolist() == want_of.tolist()


# --- fewer garbage collections while planning ----------------------------------------------------
def test_collections_are_fewer_inside_and_as_before_after() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold() == THRESHOLDS
        with fewer_collections():  # a second plan in flight
            assert gc.get_threshold() == THRESHOLDS
        assert gc.get_threshold() == THRESHOLDS  # the first is still planning
    assert gc.get_threshold() == before


def test_thresholds_come_back_when_a_plan_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError), fewer_collections():
        raise ValueError("a plan that fails")
    assert gc.get_threshold() == before


def test_make_plan_leaves_the_thresholds_as_it_found_them(rules: RuleSet) -> None:
    before = gc.get_threshold()
    plan = make_plan(
        generate(workloads=3, sites=4, seed=7), rules=rules, solver="greedy", time_limit=None
    )
    assert plan.diagnosis
    assert gc.get_threshold() == before


# --- fits shared between stages of equal FitSpec ------------------------------------------------
@pytest.mark.parametrize(("n", "m", "seed", "regime"), CASES)
def test_shared_fits_are_each_stages_own(
    n: int, m: int, seed: int, regime: str, rules: RuleSet
) -> None:
    sc = generate(workloads=n, sites=m, seed=seed, regime=regime)
    cand = Candidates(sc, rules, regime=regime, date=sc.date)
    memo: FitMemo = {}
    for w in sc.workloads:
        for stage in w.stages:
            shared = table_fits(sc, cand.index, w, stage, cand.menu, memo)
            alone = table_fits(sc, cand.index, w, stage, cand.menu)
            assert shared[0] == alone[0]
            assert shared[1].tolist() == alone[1].tolist()


def _twins() -> Scenario:
    """Two workloads of one model whose pre-training stages read the same tokens, and a third
    whose stage reads twice as many."""
    sc = generate(workloads=3, sites=6, seed=11)
    w0 = sc.workloads[0]
    pre = next(s for s in w0.stages if s.kind != "serve").model_copy(
        update={"tokens": 1e11, "datasets": (), "after": (), "chips": None, "mfu": None}
    )
    twins = [
        w0.model_copy(update={"id": f"twin{i}", "stages": (pre.model_copy(update=u),)})
        for i, u in enumerate([{}, {}, {"tokens": 2e11}])
    ]
    return sc.model_copy(update={"workloads": tuple(twins)})


def test_stages_of_equal_spec_share_their_fits_and_others_do_not(rules: RuleSet) -> None:
    sc = _twins()
    cand = Candidates(sc, rules, regime=sc.regime, date=sc.date)
    (a,), (b,), (c,) = ([cand.table(w, s) for s in w.stages] for w in sc.workloads)
    assert FitSpec.of(sc, sc.workloads[0], a.stage) == FitSpec.of(sc, sc.workloads[1], b.stage)
    assert a.fits and all(x is y for x, y in zip(a.fits, b.fits, strict=True))
    assert not any(x is y for x in a.fits for y in c.fits if x.sizes)
    # twice the tokens: twice the training compute at every count
    sized = [(x, y) for x, y in zip(a.fits, c.fits, strict=True) if x.sizes and y.sizes]
    assert sized and all(y.most_flops == pytest.approx(2 * x.most_flops) for x, y in sized)
