"""Capacity-aware greedy planner: the baseline, and the warm start of every search.

Workloads are taken by deadline, stages in dependency order. For each stage every option is
checked against the rules (given where its predecessors went and what the tenant has already
exported; verdicts are shared by options that ask the same questions), the lawful ones are
ranked on their own by the objective, and the best few are scheduled at the earliest time their
pool has the chips free after predecessors end and data and weights have moved; when none of
those can run, the next lawful options in the ranking are tried, a batch at a time. Hard deadlines
and budgets exclude candidates; soft deadlines charge their penalty, and a stage's candidates
are ranked with the penalty their end makes certain for the stages after it (ending after the
stage's latest finish leaves them late even at their fastest; ranked, not charged). Every other
option gets a reason code for why it lost.

With a :class:`~straits.plan.deadline.Deadline`, the planner stops placing when its share of
the time is spent: the stages it has not reached are unplaced with the code ``time-limit``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from straits.limits import MAX_DATE
from straits.model.scenario import Stage, Workload
from straits.plan.candidates import Candidates, Verdict
from straits.plan.checks import ExportLedger, Predecessor
from straits.plan.greedy_explain import (
    NOT_REACHED,
    RANKED_OUT,
    LossExplainer,
    _over_budget,
    _row_reject,
    _StageJob,
    _too_late,
    past_calendar,
)
from straits.plan.objectives import Objective
from straits.plan.options import Option
from straits.plan.reasons import Loss, RankedOut, ReasonCode
from straits.plan.result import Plan, StageDiagnosis
from straits.plan.schedule import (
    EPS,
    Booked,
    Candidate,
    Moves,
    PlanState,
    StageKey,
    deadline_hours,
    make_assignment,
    rank_rows,
    record_exports,
)
from straits.plan.table import StageTable
from straits.plan.timeline import Timeline

#: options scheduled in full per stage (the best ranked on their own, by the objective and by
#: finish); the rest lose on their own ranking
TOP_BY_OBJECTIVE = 12
TOP_BY_FINISH = 4
#: stages with at most this many options get every option's legality examined
EXAMINE_ALL_UP_TO = 64


@dataclass
class _Run:
    """One pass over the portfolio."""

    state: PlanState
    diagnosis: list[StageDiagnosis]
    notes: list[str]
    stopped: bool = False
    """the time ran out before every stage was reached"""


class GreedyPlanner(LossExplainer):
    def __init__(
        self,
        cand: Candidates,
        *,
        objective: Objective,
        stop_at: float = math.inf,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.cand = cand
        self.sc = cand.sc
        self.objective = objective
        self.stop_at = stop_at
        """the clock reading at which to stop placing stages"""
        self.clock = clock or (cand.deadline.clock if cand.deadline is not None else None)
        self.seed = ExportLedger()
        self.calendar_end = deadline_hours(self.sc, MAX_DATE)
        """hours to the end of the last date Straits plans (a plan ending later is refused)"""
        self.moves = Moves(self.sc)
        self._empty: dict[str, Timeline] = {}
        """resource key -> its timeline with nothing booked (availability windows only)"""
        self.state = PlanState()
        self.rounds = 0
        self.stopped = False
        """the time ran out before every stage was reached"""

    def _workloads(self) -> list[Workload]:
        return sorted(self.sc.workloads, key=lambda w: (w.deadline or dt.date.max, w.id))

    # --- per-workload preparation --------------------------------------------------------------
    def latest_finish(self, w: Workload) -> dict[str, float]:
        """Hours by which each stage must end so that its successors can still meet the
        deadline at their fastest."""
        if w.deadline is None:
            return {s.id: math.inf for s in w.stages}
        deadline = deadline_hours(self.sc, w.deadline)
        latest: dict[str, float] = {}
        for s in reversed(w.topological_stages()):
            bound = deadline
            for nxt in (x for x in w.stages if s.id in x.after):
                fast = self.cand.table(w, nxt).fastest or 0.0
                bound = min(bound, latest[nxt.id] - fast)
            latest[s.id] = bound
        return latest

    def _out_of_time(self) -> bool:
        return self.clock is not None and self.clock() >= self.stop_at

    # --- the run -------------------------------------------------------------------------------
    def run(self) -> Plan:
        """Plan, then verify every export against the year's final volumes; when a placement
        turns out to need more than it was checked for, plan again knowing those exports
        (seeds only grow, so this ends within one round per export). Out of time, the
        placements that fail the check are dropped instead (with their successors: dropping
        exports only lowers the volumes the others were checked against)."""
        for _ in range(64):
            self.rounds += 1
            run = self.run_once()
            failing = self.failing(run.state)
            if not failing:
                break
            if run.stopped or self._out_of_time():
                self._drop(run, failing)
                break
            self.seed = self.seed.merged(run.state.exports)
        else:  # pragma: no cover
            raise RuntimeError("export volumes did not converge")
        self.state = run.state
        self.stopped = run.stopped
        return self._plan(run)

    def failing(self, state: PlanState) -> list[StageKey]:
        """Placements the rules do not allow with the plan's final export volumes."""
        out = []
        for (wid, sid), b in state.placed.items():
            w = self.sc.workload(wid)
            stage = w.stage(sid)
            if not any(self.sc.dataset(d).is_personal for d in stage.datasets) and not stage.users:
                continue
            t = self.cand.table(w, stage)
            option = t.option(t.row_of(b.assignment.option_label))
            if not self.cand.verdict(
                w, stage, option, self.preds(w, stage, state), [state.exports]
            ).lawful:
                out.append((wid, sid))
        return out

    def _drop(self, run: _Run, keys: list[StageKey]) -> None:
        """Unplace ``keys`` and every stage after them, and rebuild the bookings."""
        gone = set(keys)
        for w in self.sc.workloads:
            for s in w.topological_stages():
                if any((w.id, p) in gone for p in s.after):
                    gone.add((w.id, s.id))
        kept = {k: b for k, b in run.state.placed.items() if k not in gone}
        state = PlanState()
        for (wid, sid), b in sorted(kept.items(), key=lambda kv: kv[1].assignment.start_h):
            a = b.assignment
            w = self.sc.workload(wid)
            t = self.cand.table(w, w.stage(sid))
            o = t.option(t.row_of(a.option_label))
            state.timeline(self.sc, o).book(a.start_h, a.end_h, a.chips)
            state.placed[(wid, sid)] = b
            state.spent[wid] = state.spent.get(wid, 0.0) + a.budgeted_usd
            record_exports(self.sc, w, w.stage(sid), b.site, state.exports, self.cand.date.year)
        run.state = state
        note = "its export volumes could not be re-checked before the time limit"
        run.diagnosis = [
            d
            if (d.workload, d.stage) not in gone or d.chosen is None
            else StageDiagnosis(
                d.workload,
                d.stage,
                d.options,
                None,
                d.rejections,
                d.citations,
                (*d.also_lost, RankedOut(ReasonCode.TIME_LIMIT, 1, note)),
            )
            for d in run.diagnosis
        ]
        run.notes.append(f"{len(gone)} stages left unplaced: {note}")

    def preds(self, w: Workload, stage: Stage, state: PlanState) -> list[Predecessor]:
        out = []
        for p in stage.after:
            b = state.placed[(w.id, p)]
            out.append(Predecessor(w.stage(p), b.site, b.ops))
        return out

    def run_once(self) -> _Run:
        run = _Run(PlanState(), [], [])
        for w in self._workloads():
            if not run.stopped and self._out_of_time():
                run.stopped = True
            if run.stopped:
                run.diagnosis += [self._not_reached(w, s) for s in w.topological_stages()]
                continue
            latest = self.latest_finish(w)
            for stage in w.topological_stages():
                # the clock is read per stage too: one workload may hold a thousand of them
                if not run.stopped and self._out_of_time():
                    run.stopped = True
                if run.stopped:
                    run.diagnosis.append(self._not_reached(w, stage))
                    continue
                diag, best = self.place(w, stage, run.state, latest[stage.id])
                run.diagnosis.append(diag)
                if best is None:
                    continue
                a = self.book(w, stage, best, run.state).assignment
                if a.late_hours > 0:
                    run.notes.append(
                        f"{w.id}/{stage.id} ends {a.late_hours:,.0f} h after the "
                        f"deadline {w.deadline} (soft deadline)"
                    )
        if run.stopped:
            reached = sum(d.chosen is not None for d in run.diagnosis)
            run.notes.append(
                f"the time limit ran out while the greedy planner worked: "
                f"{reached} stages placed before it, the rest not examined"
            )
        return run

    def _not_reached(self, w: Workload, stage: Stage) -> StageDiagnosis:
        n = self.cand.index.rows_of(w.tenant)
        return StageDiagnosis(
            w.id,
            stage.id,
            n,
            None,
            (),
            also_lost=(RankedOut(ReasonCode.TIME_LIMIT, n, NOT_REACHED),),
        )

    def _plan(self, run: _Run) -> Plan:
        diagnosis = tuple(run.diagnosis)
        unplaced = tuple(d for d in diagnosis if d.chosen is None)
        notes = list(run.notes)
        if not self.sc.workloads:
            notes.append("nothing to plan: the scenario has no workloads")
        return Plan(
            scenario=self.sc.name,
            date=self.cand.date,
            regime=self.cand.regime,
            objective=self.objective.name,
            solver="greedy",
            status="infeasible" if unplaced else "feasible" if self.sc.workloads else "optimal",
            start=self.sc.start,
            assignments=tuple(b.assignment for b in run.state.placed.values()),
            unplaced=unplaced,
            diagnosis=diagnosis,
            rules_digest=self.cand.rules.digest,
            notes=tuple(notes),
            objective_unit=self.objective.unit,
        )

    # --- one stage -----------------------------------------------------------------------------
    def place(
        self, w: Workload, stage: Stage, state: PlanState, latest: float
    ) -> tuple[StageDiagnosis, Candidate | None]:
        t = self.cand.table(w, stage)
        if any((w.id, p) not in state.placed for p in stage.after):
            rej = tuple(
                _row_reject(
                    t, i, ReasonCode.PREDECESSOR, "a stage it depends on could not be placed"
                )
                for i in range(len(t))
            )
            return StageDiagnosis(w.id, stage.id, len(t), None, rej), None
        placed_preds = [state.placed[(w.id, p)] for p in stage.after]
        preds = self.preds(w, stage, state)
        pred_sites = [self.cand.index.site_of[b.site.id] for b in placed_preds]
        order, alone_cost, end = self.rank_rows(
            w,
            stage,
            t,
            [(b.assignment.end_h, site) for b, site in zip(placed_preds, pred_sites, strict=True)],
        )
        gid = self.cand.groups(w, stage, t, pred_sites)
        # verdicts, shared by the rows that ask the same questions; in a large portfolio only
        # as far down the ranking as needed to find the best lawful options
        verdicts: dict[int, Verdict] = {}
        ledgers = [state.exports, self.seed]
        examine_all = len(order) <= EXAMINE_ALL_UP_TO

        def verdict(i: int) -> Verdict:
            g = int(gid[i])
            if g not in verdicts:
                verdicts[g] = self.cand.verdict(w, stage, t.option(i), preds, ledgers)
            return verdicts[g]

        chosen: list[int] = []
        by_finish = order[np.argsort(end[order], kind="stable")]
        for rows, quota in ((order, TOP_BY_OBJECTIVE), (by_finish, TOP_BY_FINISH)):
            found = 0
            for i in rows:
                if found >= quota and not examine_all:
                    break
                if verdict(int(i)).lawful:
                    if found < quota and i not in chosen:
                        chosen.append(int(i))
                    found += 1
        job = _StageJob(w, stage, t, verdict, placed_preds, latest)
        pool = self._schedule_rows(job, chosen, state)
        if not pool:  # the best-ranked options are all busy, late or over budget: go deeper
            pool = self._deeper(job, (order, alone_cost, end), set(chosen), state)
        pool = self._within_calendar(job, pool)
        best = min(pool, key=lambda c: self.job_score(job, c)) if pool else None
        best_row = next((i for i, cs in job.per_row.items() if best in cs), None)
        rejections, citations, ranked_out = self._explain(job, gid, verdicts, best, best_row)
        code = self.objective.single.code if self.objective.single else ReasonCode.OBJECTIVE
        also = tuple(
            RankedOut(code, n, RANKED_OUT[unexamined]) for unexamined, n in ranked_out.items() if n
        )
        diag = StageDiagnosis(
            w.id,
            stage.id,
            len(t),
            best.option.label if best else None,
            tuple(rejections),
            tuple(citations.values()),
            also,
        )
        return diag, best

    def _within_calendar(self, job: _StageJob, pool: list[Candidate]) -> list[Candidate]:
        """The candidates that end by the last date Straits plans: the cheapest option could
        end decades later (its data arriving over a thin link, few chips) and the plan was then
        refused for running past 2100 although another option ended within the calendar. With
        none within, the stage is left unplaced (``deadline``: it would end N h after
        2100-12-31), as a stage that cannot meet its hard deadline is: the whole plan used to be
        refused, so one chain of a 1,000-workload portfolio, queued behind decades of work on
        a cheap pool, refused every other workload's plan (the generated portfolios of
        seeds 20001 and 20002)."""
        limit = self.calendar_end + EPS
        if all(c.end <= limit for c in pool):
            return pool
        for i, cands in job.per_row.items():
            kept = [c for c in cands if c.end <= limit]
            if cands and not kept:
                job.why[i] = past_calendar(max(c.end for c in cands) - self.calendar_end)
            job.per_row[i] = kept
        return [c for c in pool if c.end <= limit]

    def _schedule_rows(self, job: _StageJob, rows: list[int], state: PlanState) -> list[Candidate]:
        """Schedule ``rows`` of the stage's table, recording each row's candidates and why
        none qualified; returns the candidates."""
        pool: list[Candidate] = []
        for i in rows:
            cands, failed = self.schedule(
                job.w, job.stage, job.t.option(i), job.verdict(i), job.preds, state, job.latest
            )
            job.per_row[i] = cands
            pool += cands
            if failed is not None:
                job.why[i] = failed
        return pool

    def _deeper(
        self,
        job: _StageJob,
        ranking: tuple[np.ndarray, np.ndarray, np.ndarray],
        done: set[int],
        state: PlanState,
    ) -> list[Candidate]:
        """Schedule the lawful rows below the shortlist ``done``, a batch at a time in the
        order of the ranking, until a batch yields a candidate or none are left. Rows that
        would end after a hard deadline or cost more than the budget left even on an empty
        pool lose on that, without a rule check."""
        order, alone_cost, alone_end = ranking
        hard = job.w.deadline is not None and job.w.deadline_policy == "hard"
        budget_left = state.budget_left(job.w)

        def eligible(i: int) -> bool:
            if hard and alone_end[i] > job.latest + EPS:
                job.why[i] = _too_late(alone_end[i] - job.latest)
            elif alone_cost[i] > budget_left + EPS:
                job.why[i] = _over_budget(job.w)
            else:
                return job.verdict(i).lawful
            return False

        rows = (int(i) for i in order if int(i) not in done and eligible(int(i)))
        while batch := list(itertools.islice(rows, TOP_BY_OBJECTIVE)):
            pool = self._schedule_rows(job, batch, state)
            if pool:
                return pool
        return []

    def rank_rows(
        self, w: Workload, stage: Stage, t: StageTable, preds: list[tuple[float, int]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return rank_rows(self.cand, self.objective, w, stage, t, preds)

    def schedule(
        self,
        w: Workload,
        stage: Stage,
        o: Option,
        v: Verdict,
        preds: list[Booked],
        state: PlanState,
        latest: float,
    ) -> tuple[list[Candidate], Loss | None]:
        """Candidates of one option at each chip count, and why none qualifies (if so)."""
        ready, transfer, egress = self.moves.ready(w, stage, o.site, preds)
        tl = state.timeline(self.sc, o)
        hard = w.deadline is not None and w.deadline_policy == "hard"
        budget_left = state.budget_left(w)
        due = deadline_hours(self.sc, w.deadline) if w.deadline is not None else math.inf
        out: list[Candidate] = []
        late = over = busy = 0
        for est in o.sizes:
            start = tl.earliest(est.chips, est.hours, ready)
            if start is None:
                busy += 1
                continue
            end = start + est.hours
            if hard and end > latest + EPS:
                late += 1
                continue
            # soft deadlines: the workload pays for how late its last stage ends
            late_h = max(0.0, end - due)
            charged = max(late_h, state.late.get(w.id, 0.0))
            rate = w.late_penalty_usd_per_day / 24.0
            penalty = (charged - state.late.get(w.id, 0.0)) * rate
            # the stages after it end at least this late (``latest``: at their fastest)
            foreseen = max(0.0, end - latest - charged) * rate if not hard else 0.0
            capex = state.capex(self.sc, o, start, end, est.chips)
            c = Candidate(o, est, start, end, egress, transfer, capex, v, late_h, penalty, foreseen)
            if c.budgeted > budget_left + EPS:
                over += 1
                continue
            out.append(c)
        if out:
            return out, None
        if over:
            return out, _over_budget(w)
        return out, self._why_busy(o, ready, latest, late > 0)

    # --- resources -----------------------------------------------------------------------------
    def book(self, w: Workload, stage: Stage, c: Candidate, state: PlanState) -> Booked:
        tl = state.timeline(self.sc, c.option)
        if c.option.procured:
            state.bought_peak[c.option.key] = max(
                state.bought_peak.get(c.option.key, 0), tl.used(c.start, c.end) + c.est.chips
            )
        tl.book(c.start, c.end, c.est.chips)
        a = make_assignment(
            self.sc,
            w,
            stage,
            c.option,
            c.est,
            c.start,
            c.end,
            c.egress,
            c.transfer,
            c.capex,
            c.verdict,
            c.late_hours,
            c.penalty,
        )
        b = state.placed[(w.id, stage.id)] = Booked(a, c.option.site, self.cand.ops[w.id][stage.id])
        state.spent[w.id] = state.spent.get(w.id, 0.0) + a.budgeted_usd
        state.late[w.id] = max(state.late.get(w.id, 0.0), a.late_hours)
        record_exports(self.sc, w, stage, c.option.site, state.exports, self.cand.date.year)
        return b
