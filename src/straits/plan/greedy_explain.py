"""Why each option of a stage lost, for the greedy planner (a mixin of
:class:`~straits.plan.greedy.GreedyPlanner`): the rule that stopped it, the deadline or budget
it would break, the pool that was busy, or the better option it lost to; with the reason codes
and notes every rejection carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from straits.model.scenario import Scenario, Stage, Workload
from straits.plan.candidates import Candidates, Verdict
from straits.plan.objectives import Objective, StageMetrics
from straits.plan.options import Option
from straits.plan.reasons import Loss, ReasonCode, budget_usd
from straits.plan.result import Rejection
from straits.plan.schedule import EPS, Booked, Candidate, new_timeline
from straits.plan.table import PROBLEMS, StageTable
from straits.plan.timeline import Timeline
from straits.rules.decision import Reason

RANKED_OUT = {
    False: "ranked below the best lawful options even on an empty pool",
    True: "ranked below the best lawful options even on an empty pool (its "
    "legality was not examined)",
}
NOT_REACHED = "not examined: the time limit ran out before this stage was planned"


def _too_late(hours: float) -> Loss:
    return Loss(ReasonCode.DEADLINE, f"even on an empty pool it would end {hours:,.0f} h too late")


def past_calendar(hours: float) -> Loss:
    """An option that would end after the last date Straits plans."""
    from straits.limits import MAX_DATE

    return Loss(
        ReasonCode.DEADLINE,
        f"it would end {hours:,.0f} h after {MAX_DATE.isoformat()}, the last date Straits plans",
        f"past {MAX_DATE.isoformat()}",
    )


def _over_budget(w: Workload) -> Loss:
    return Loss(
        ReasonCode.BUDGET,
        f"would take the workload over its budget of {budget_usd(w.budget_usd or 0.0)}",
    )


@dataclass
class _StageJob:
    """One stage being placed: its options, their verdicts, and what scheduling found."""

    w: Workload
    stage: Stage
    t: StageTable
    verdict: Callable[[int], Verdict]
    preds: list[Booked]
    latest: float
    per_row: dict[int, list[Candidate]] = field(default_factory=dict)
    """row -> its candidates (empty when none qualified)"""
    why: dict[int, Loss] = field(default_factory=dict)
    """row -> what it lost on before any candidate was compared"""
    scores: dict[int, tuple[float, float]] = field(default_factory=dict)
    """id of a candidate (of ``per_row``) -> its score, computed once per stage"""


class LossExplainer:
    """What :class:`~straits.plan.greedy.GreedyPlanner` explains its rejections with."""

    sc: Scenario
    cand: Candidates
    objective: Objective
    _empty: dict[str, Timeline]

    def _explain(
        self,
        job: _StageJob,
        gid: np.ndarray,
        verdicts: dict[int, Verdict],
        best: Candidate | None,
        best_row: int | None,
    ) -> tuple[list[Rejection], dict[str, Reason], dict[bool, int]]:
        """Why every row other than the chosen one lost."""
        t = job.t
        rejections: list[Rejection] = []
        citations: dict[str, Reason] = {}
        # the rows that lost on the ranking alone (most rows of a large portfolio's stages)
        # are only counted, on the arrays; the loop visits the others, in row order
        asked = np.isin(gid, list(verdicts))
        blocked = [g for g, v in verdicts.items() if v.blocking is not None]
        visit = (t.problem != 0) | np.isin(gid, blocked)
        visit[[i for i, cands in job.per_row.items() if cands]] = True
        visit[list(job.why)] = True
        if best_row is not None:
            visit[best_row] = True
        rest = ~visit
        unexamined = int(np.count_nonzero(rest & ~asked))
        ranked_out = {False: int(np.count_nonzero(rest)) - unexamined, True: unexamined}
        problems = t.problem.tolist()
        groups = gid.tolist()
        for i in np.flatnonzero(visit).tolist():
            if i == best_row:
                continue
            if problems[i]:
                problem = PROBLEMS[problems[i]]
                assert problem is not None
                fit = t.fit(i)
                rejections.append(
                    _row_reject(t, i, problem, fit.detail if fit else t.location_note)
                )
                continue
            known = verdicts.get(groups[i])
            if known is not None and known.blocking is not None:
                assert known.code is not None
                citations.setdefault(known.blocking.rule, known.blocking)
                rejections.append(
                    _row_reject(t, i, known.code, rules=known.rules, cite=known.blocking)
                )
            elif i in job.why:
                loss = job.why[i]
                rejections.append(_row_reject(t, i, loss.code, loss.note, group=loss.group))
            elif job.per_row.get(i) and best is not None:
                rejections.append(self._lost(job, t.option(i), job.per_row[i], best))
            else:
                ranked_out[known is None] += 1
        return rejections, citations, ranked_out

    def _why_busy(self, o: Option, ready: float, latest: float, late: bool) -> Loss:
        """Why no chip count of ``o`` could be booked in time: the deadline even on an empty
        pool, the pool's availability windows, or other stages' bookings."""
        fastest = min(e.hours for e in o.sizes)
        if late and ready + fastest > latest + EPS:
            return _too_late(ready + fastest - latest)
        empty = self._empty.get(o.key)
        if empty is None:
            empty = self._empty[o.key] = new_timeline(self.sc, o)
        alone = [
            s
            for e in o.sizes
            if (s := empty.earliest(e.chips, e.hours, ready)) is not None
            and (not late or s + e.hours <= latest + EPS)
        ]
        if not alone:
            return Loss(
                ReasonCode.WINDOW,
                "the pool's availability windows leave no room "
                + ("before the deadline" if late else "for it"),
            )
        if late:
            return Loss(ReasonCode.CAPACITY, "pool is busy with other stages until too late")
        return Loss(ReasonCode.CAPACITY, "pool never has the chips free")

    def metrics(self, w: Workload, c: Candidate) -> StageMetrics:
        mwh, t = (
            self.cand.index.energy_of(c.option, c.est)
            if self.objective.needs_energy
            else (0.0, 0.0)
        )
        return StageMetrics(c.cost, c.penalty + c.foreseen, c.end, mwh, t)

    def score(self, w: Workload, c: Candidate) -> tuple[float, float]:
        return self.objective.stage_key(self.metrics(w, c), w)

    def job_score(self, job: _StageJob, c: Candidate) -> tuple[float, float]:
        """:meth:`score`, kept in ``job`` (the best is chosen, then every row that lost to it
        compared with it, from the same candidates)."""
        hit = job.scores.get(id(c))
        if hit is None:
            hit = job.scores[id(c)] = self.score(job.w, c)
        return hit

    def _lost(
        self, job: _StageJob, o: Option, cands: list[Candidate], best: Candidate
    ) -> Rejection:
        w = job.w
        mine = min(cands, key=lambda c: self.job_score(job, c))
        loss = self.objective.lost(
            self.metrics(w, mine), self.metrics(w, best), w, best.option.label
        )
        return reject(o, loss.code, loss.note)


def reject(o: Option, code: ReasonCode, note: str = "", **kw: object) -> Rejection:
    return Rejection(o.site.id, o.chip.id, code, note, bought=o.procured, **kw)  # type: ignore[arg-type]


def _row_reject(t: StageTable, i: int, code: ReasonCode, note: str = "", **kw: object) -> Rejection:
    r, buyer = t.rows[i]
    return Rejection(r.site.id, r.chip.id, code, note, bought=buyer is not None, **kw)  # type: ignore[arg-type]
