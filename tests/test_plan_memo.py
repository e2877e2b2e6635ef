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
from straits.plan.candidates import Candidates, Verdict
from straits.plan.checks import ExportLedger, Predecessor, Question
from straits.plan.collector import THRESHOLDS, fewer_collections
from straits.plan.deadline import Deadline
from straits.plan.greedy_explain import LossExplainer, _row_reject, _StageJob
from straits.plan.options import Fit, FitSpec, fit_stage
from straits.plan.registry import objective
from straits.plan.result import Rejection
from straits.plan.schedule import Candidate
from straits.plan.solvers import GreedySolver, SolveContext
from straits.plan.table import PROBLEMS, FitMemo, table_fits
from straits.rules import RuleSet, ruleset
from straits.rules.decision import Reason
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


# --- the loss explanation's shortcuts -----------------------------------------------------------
def _explain_row_by_row(
    self: LossExplainer,
    job: _StageJob,
    gid: np.ndarray,
    verdicts: dict[int, Verdict],
    best: Candidate | None,
    best_row: int | None,
) -> tuple[list[Rejection], dict[str, Reason], dict[bool, int]]:
    """``_explain`` as it was before the ranked-out rows were counted on arrays: every row
    visited, in order."""
    t = job.t
    rejections: list[Rejection] = []
    citations: dict[str, Reason] = {}
    ranked_out = {False: 0, True: 0}
    for i in range(len(t)):
        if i == best_row:
            continue
        problem = PROBLEMS[int(t.problem[i])]
        if problem is not None:
            fit = t.fit(i)
            rejections.append(_row_reject(t, i, problem, fit.detail if fit else t.location_note))
            continue
        known = verdicts.get(int(gid[i]))
        if known is not None and known.blocking is not None:
            assert known.code is not None
            citations.setdefault(known.blocking.rule, known.blocking)
            rejections.append(_row_reject(t, i, known.code, rules=known.rules, cite=known.blocking))
        elif i in job.why:
            loss = job.why[i]
            rejections.append(_row_reject(t, i, loss.code, loss.note, group=loss.group))
        elif job.per_row.get(i) and best is not None:
            rejections.append(self._lost(job, t.option(i), job.per_row[i], best))
        else:
            ranked_out[known is None] += 1
    return rejections, citations, ranked_out


@pytest.mark.parametrize(("n", "m", "seed", "regime"), CASES)
@pytest.mark.parametrize("goal", ["cost", "time"])
def test_explanations_counted_on_arrays_are_those_row_by_row(
    n: int, m: int, seed: int, regime: str, goal: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sc = generate(workloads=n, sites=m, seed=seed, regime=regime)
    fast = _greedy_plan(Candidates, sc, goal)
    monkeypatch.setattr(LossExplainer, "_explain", _explain_row_by_row)
    monkeypatch.setattr(LossExplainer, "job_score", lambda self, job, c: self.score(job.w, c))
    plain = _greedy_plan(Candidates, sc, goal)
    assert fast == plain
    if m < 12:  # six sites: every option is scheduled or rejected on its own
        return
    # rows that lost on the ranking alone, examined or not, are in the comparison
    cand = Candidates(sc, RuleSet(ruleset().packs), regime=sc.regime, date=sc.date)
    plan = GreedySolver().solve(cand, objective(goal), SolveContext(Deadline(None)))
    assert any(r.options for d in plan.diagnosis for r in d.also_lost)
