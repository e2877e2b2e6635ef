"""Capacity-aware greedy planner: the baseline, and the warm start of the CP-SAT optimizer.

Workloads are taken by deadline, stages in dependency order. For each stage every option is
checked against the rules (given where its predecessors went and what the tenant has already
exported; verdicts are shared by options that look the same to the rules), the lawful ones are
ranked on their own cost or finish, and the best few are scheduled at the earliest time their
pool has the chips free after predecessors end and data and weights have moved; when none of
those can run, the next lawful options in the ranking are tried, a batch at a time. Hard deadlines
and budgets exclude candidates; soft deadlines charge their penalty. Every other option gets
the reason it lost.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from straits.estimate import Estimate
from straits.model.scenario import Scenario, Site, Stage, Workload
from straits.plan.candidates import Candidates, Placed, Verdict
from straits.plan.checks import ExportLedger, user_subjects, users_export_id
from straits.plan.options import Option, capex_share, pool_steps, procured_steps
from straits.plan.result import Assignment, Plan, Rejection, StageDiagnosis
from straits.plan.table import PROBLEMS, StageTable, weights_moves
from straits.plan.timeline import Timeline
from straits.plan.transfer import egress_usd, transfer_hours, weights_gb
from straits.rules.decision import Reason

#: options scheduled in full per stage (the best ranked on their own, by the objective and by
#: finish); the rest lose on their own ranking
TOP_BY_OBJECTIVE = 12
TOP_BY_FINISH = 4
#: stages with at most this many options get every option's legality examined
EXAMINE_ALL_UP_TO = 64
RANKED_OUT = {False: "ranked below the best lawful options even on an empty pool",
              True: "ranked below the best lawful options even on an empty pool (its "
                    "legality was not examined)"}
EPS = 1e-6


@dataclass(frozen=True)
class Candidate:
    option: Option
    est: Estimate
    start: float
    end: float
    egress: float
    transfer: float
    capex: float
    verdict: Verdict
    late_hours: float = 0.0
    penalty: float = 0.0

    @property
    def cost(self) -> float:
        return self.option.cost(self.est) + self.egress + self.capex

    @property
    def charged(self) -> float:
        """What the objective pays: the cost plus any late penalty."""
        return self.cost + self.penalty


@dataclass
class PlanState:
    timelines: dict[str, Timeline] = field(default_factory=dict)
    placed: dict[tuple[str, str], tuple[Assignment, Site, float]] = field(default_factory=dict)
    exports: ExportLedger = field(default_factory=ExportLedger)
    spent: dict[str, float] = field(default_factory=dict)
    late: dict[str, float] = field(default_factory=dict)
    """hours each workload already ends after its (soft) deadline"""
    bought_peak: dict[str, int] = field(default_factory=dict)


def deadline_hours(sc: Scenario, day: dt.date) -> float:
    """Hours from the plan start to the end of ``day``."""
    end = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(days=1)
    return (end - sc.start).total_seconds() / 3600.0


def _limits(w: Workload, state: PlanState) -> tuple[bool, float]:
    """Whether the workload's deadline is hard, and how much of its budget is left."""
    hard = w.deadline is not None and w.deadline_policy == "hard"
    return hard, (w.budget_usd - state.spent.get(w.id, 0.0)) if w.budget_usd else math.inf


def _too_late(hours: float) -> tuple[str, str]:
    return "deadline", f"even on an empty pool it would end {hours:,.0f} h too late"


def _over_budget(w: Workload) -> tuple[str, str]:
    return "budget", f"would take the workload over its budget of ${w.budget_usd or 0:,.0f}"


@dataclass
class _StageJob:
    """One stage being placed: its options, their verdicts, and what scheduling found."""

    w: Workload
    stage: Stage
    t: StageTable
    verdict: Callable[[int], Verdict]
    preds: list[tuple[Assignment, Site, float]]
    latest: float
    per_row: dict[int, list[Candidate]] = field(default_factory=dict)
    """row -> its candidates (empty when none qualified)"""
    why: dict[int, tuple[str, str]] = field(default_factory=dict)
    """row -> (reason, detail) it lost on before any candidate was compared"""


class GreedyPlanner:
    def __init__(self, cand: Candidates, *, objective: str) -> None:
        self.cand = cand
        self.sc = cand.sc
        self.objective = objective
        self.seed = ExportLedger()
        self._data_moves: dict[tuple[tuple[str, ...], str], tuple[float, float]] = {}
        self.state = PlanState()

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

    # --- the run -------------------------------------------------------------------------------
    def run(self) -> Plan:
        """Plan, then verify every export against the year's final volumes; when a placement
        turns out to need more than it was checked for, plan again knowing those exports
        (seeds only grow, so this ends within one round per export)."""
        for _ in range(64):
            plan, state = self.run_once()
            if self.verified(state):
                self.state = state
                return plan
            self.seed = self.seed.merged(state.exports)
        raise RuntimeError("export volumes did not converge")  # pragma: no cover

    def verified(self, state: PlanState) -> bool:
        for (wid, sid), (a, _site, _) in state.placed.items():
            w = self.sc.workload(wid)
            stage = w.stage(sid)
            if not any(self.sc.dataset(d).is_personal for d in stage.datasets) and not stage.users:
                continue
            t = self.cand.table(w, stage)
            option = t.option(t.row_of(a.option_label))
            if not self.cand.verdict(w, stage, option, self.preds(w, stage, state),
                                     [state.exports]).lawful:
                return False
        return True

    def preds(self, w: Workload, stage: Stage, state: PlanState) -> list[Placed]:
        out = []
        for p in stage.after:
            _a, site, ops = state.placed[(w.id, p)]
            out.append((w.stage(p), site, ops))
        return out

    def run_once(self) -> tuple[Plan, PlanState]:
        state = PlanState()
        diagnosis: list[StageDiagnosis] = []
        unplaced: list[StageDiagnosis] = []
        notes: list[str] = []
        order = sorted(self.sc.workloads, key=lambda w: (w.deadline or dt.date.max, w.id))
        for w in order:
            latest = self.latest_finish(w)
            for stage in w.topological_stages():
                diag, cand = self.place(w, stage, state, latest[stage.id])
                diagnosis.append(diag)
                if cand is None:
                    unplaced.append(diag)
                    continue
                a = self.book(w, stage, cand, state)
                if a.late_hours > 0:
                    notes.append(f"{w.id}/{stage.id} ends {a.late_hours:,.0f} h after the "
                                 f"deadline {w.deadline} (soft deadline)")
        assignments = tuple(a for a, _, _ in state.placed.values())
        if not self.sc.workloads:
            notes.append("nothing to plan: the scenario has no workloads")
        return (Plan(
            scenario=self.sc.name, date=self.cand.date, regime=self.cand.regime,
            objective=self.objective, solver="greedy",
            status="infeasible" if unplaced else "feasible" if self.sc.workloads else "optimal",
            start=self.sc.start,
            assignments=assignments, unplaced=tuple(unplaced), diagnosis=tuple(diagnosis),
            rules_digest=self.cand.rules.digest, notes=tuple(notes),
        ), state)

    # --- one stage -----------------------------------------------------------------------------
    def place(self, w: Workload, stage: Stage, state: PlanState, latest: float
              ) -> tuple[StageDiagnosis, Candidate | None]:
        t = self.cand.table(w, stage)
        if any((w.id, p) not in state.placed for p in stage.after):
            rej = tuple(_row_reject(t, i, "predecessor unplaced",
                                    "a stage it depends on could not be placed")
                        for i in range(len(t)))
            return StageDiagnosis(w.id, stage.id, len(t), None, rej), None
        preds = self.preds(w, stage, state)
        placed_preds = [state.placed[(w.id, p)] for p in stage.after]
        pred_sites = [self.cand.index.site_of[site.id] for _, site, _ in placed_preds]
        order, alone_cost, end = self.rank_rows(w, stage, t, [(a.end_h, self.cand.index.site_of[
            site.id]) for a, site, _ in placed_preds])
        gid = self.cand.groups(w, stage, t, pred_sites)
        # verdicts, shared by the rows the rules cannot tell apart; in a large portfolio only
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
        shrink = 1
        for rows, quota in ((order, TOP_BY_OBJECTIVE // shrink),
                            (by_finish, TOP_BY_FINISH // shrink)):
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
        per_row, why = job.per_row, job.why
        best = min(pool, key=lambda c: self.score(w, c)) if pool else None
        best_row = next((i for i, cs in per_row.items() if best in cs), None)
        rejections, citations, ranked_out = self._explain(t, gid, verdicts, per_row, why, best,
                                                          best_row)
        what = "cost" if self.objective == "cost" else "time"
        also = tuple((what, n, RANKED_OUT[unexamined]) for unexamined, n in ranked_out.items()
                     if n)
        diag = StageDiagnosis(w.id, stage.id, len(t), best.option.label if best else None,
                              tuple(rejections), tuple(citations.values()), also)
        return diag, best

    def _schedule_rows(self, job: _StageJob, rows: list[int], state: PlanState
                       ) -> list[Candidate]:
        """Schedule ``rows`` of the stage's table, recording each row's candidates and why
        none qualified; returns the candidates."""
        pool: list[Candidate] = []
        for i in rows:
            cands, failed = self.schedule(job.w, job.stage, job.t.option(i), job.verdict(i),
                                          job.preds, state, job.latest)
            job.per_row[i] = cands
            pool += cands
            if failed is not None:
                job.why[i] = failed
        return pool

    def _deeper(self, job: _StageJob, ranking: tuple[np.ndarray, np.ndarray, np.ndarray],
                done: set[int], state: PlanState) -> list[Candidate]:
        """Schedule the lawful rows below the shortlist ``done``, a batch at a time in the
        order of the ranking, until a batch yields a candidate or none are left. Rows that
        would end after a hard deadline or cost more than the budget left even on an empty
        pool lose on that, without a rule check."""
        order, alone_cost, alone_end = ranking
        hard, budget_left = _limits(job.w, state)

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

    def _explain(self, t: StageTable, gid: np.ndarray, verdicts: dict[int, Verdict],
                 per_row: dict[int, list[Candidate]], why: dict[int, tuple[str, str]],
                 best: Candidate | None, best_row: int | None
                 ) -> tuple[list[Rejection], dict[str, Reason], dict[bool, int]]:
        """Why every row other than the chosen one lost."""
        rejections: list[Rejection] = []
        citations: dict[str, Reason] = {}
        ranked_out = {False: 0, True: 0}
        for i in range(len(t)):
            if i == best_row:
                continue
            code = int(t.problem[i])
            if code:
                f = int(t.fit_of[i])
                note = t.fits[f][1] if f >= 0 else \
                    f"stage runs only in {', '.join(t.stage.locations)}"
                rejections.append(_row_reject(t, i, PROBLEMS[code], note))
                continue
            known = verdicts.get(int(gid[i]))
            if known is not None and known.blocking is not None:
                citations.setdefault(known.blocking.rule, known.blocking)
                rejections.append(_row_reject(t, i, known.label, rules=known.rules,
                                              cite=known.blocking))
            elif i in why:
                rejections.append(_row_reject(t, i, *why[i]))
            elif per_row.get(i) and best is not None:
                rejections.append(self._lost(t.option(i), per_row[i], best))
            else:
                ranked_out[known is None] += 1
        return rejections, citations, ranked_out

    def rank_rows(self, w: Workload, stage: Stage, t: StageTable,
                  preds: list[tuple[float, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows that can run the stage, best first by the objective on their own (empty pool),
        with every row's standalone cost and end."""
        ready, egress, _ = self.cand.data_moves(stage)
        if preds:
            w_ready, w_egress, _ = weights_moves(self.cand.index, w, preds)
            ready, egress = np.maximum(ready, w_ready), egress + w_egress
        cost = t.min_chip_hours * t.price + egress[t.site]
        end = ready[t.site] + t.min_hours
        rows = np.flatnonzero(t.problem == 0)
        keys = (end[rows], cost[rows]) if self.objective == "cost" else (cost[rows], end[rows])
        return rows[np.lexsort(keys)], cost, end

    def schedule(self, w: Workload, stage: Stage, o: Option, v: Verdict,
                 preds: list[tuple[Assignment, Site, float]], state: PlanState, latest: float
                 ) -> tuple[list[Candidate], tuple[str, str] | None]:
        """Candidates of one option at each chip count, and why none qualifies (if so)."""
        ready, transfer, egress = self.ready(w, stage, o.site, preds)
        tl = self.timeline(state, o)
        hard, budget_left = _limits(w, state)
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
            penalty = max(0.0, late_h - state.late.get(w.id, 0.0)) / 24.0 \
                * w.late_penalty_usd_per_day
            capex = self.capex(state, o, tl, start, end, est.chips)
            c = Candidate(o, est, start, end, egress, transfer, capex, v, late_h, penalty)
            if c.cost > budget_left + EPS:
                over += 1
                continue
            out.append(c)
        if out:
            return out, None
        if over:
            return out, _over_budget(w)
        if late:
            empty_end = ready + min(e.hours for e in o.sizes)
            if empty_end > latest + EPS:
                return out, _too_late(empty_end - latest)
            return out, ("capacity", "pool is busy with other stages until too late")
        return out, ("capacity", "pool never has the chips free")

    def score(self, w: Workload, c: Candidate) -> tuple[float, float]:
        if self.objective == "cost":
            return (c.charged, c.end)
        return (c.end * (w.weight if self.objective == "completion" else 1.0), c.charged)

    def _lost(self, o: Option, cands: list[Candidate], best: Candidate) -> Rejection:
        w = self.sc.workload(o.workload)
        mine = min(cands, key=lambda c: self.score(w, c))
        if self.objective == "cost" and mine.charged > best.charged + EPS:
            return reject(o, "cost",
                             f"${mine.charged - best.charged:,.0f} more than {best.option.label}")
        if mine.end > best.end + EPS:
            return reject(o, "time",
                             f"ends {mine.end - best.end:,.1f} h after {best.option.label}")
        return reject(o, "cost",
                         f"${mine.charged - best.charged:,.0f} more than {best.option.label}")

    # --- resources -----------------------------------------------------------------------------
    def timeline(self, state: PlanState, o: Option) -> Timeline:
        tl = state.timelines.get(o.key)
        if tl is None:
            steps = procured_steps(o.pool) if o.procured else pool_steps(self.sc, o.pool)
            tl = Timeline(max(c for _, c in steps), steps)
            state.timelines[o.key] = tl
        return tl

    def capex(self, state: PlanState, o: Option, tl: Timeline, start: float, end: float,
              chips: int) -> float:
        """Capex of the bought chips this booking adds to the tenant's peak on that pool."""
        if not o.procured:
            return 0.0
        assert o.pool.procurable is not None
        peak = max(state.bought_peak.get(o.key, 0), tl.used(start, end) + chips)
        extra = peak - state.bought_peak.get(o.key, 0)
        return extra * o.pool.procurable.usd_per_chip * capex_share(self.sc, o.pool)

    def ready(self, w: Workload, stage: Stage, site: Site,
              preds: list[tuple[Assignment, Site, float]]) -> tuple[float, float, float]:
        """(earliest start, longest transfer hours, egress USD) for running ``stage`` at
        ``site``: datasets move from the plan start, weights after their stage ends."""
        key = (stage.datasets, site.id)
        data = self._data_moves.get(key)
        if data is None:
            h_max = cost = 0.0
            for d_id in stage.datasets:
                d = self.sc.dataset(d_id)
                src = self.sc.site(d.located_at)
                h_max = max(h_max, transfer_hours(d.size_gb, src, site))
                cost += egress_usd(d.size_gb, src, site)
            data = self._data_moves[key] = (h_max, cost)
        ready = longest = data[0]
        egress = data[1]
        size = weights_gb(w.model)
        for a, src, _ in preds:
            h = transfer_hours(size, src, site)
            ready, longest = max(ready, a.end_h + h), max(longest, h)
            egress += egress_usd(size, src, site)
        return ready, longest, egress

    def book(self, w: Workload, stage: Stage, c: Candidate, state: PlanState) -> Assignment:
        tl = self.timeline(state, c.option)
        if c.option.procured:
            state.bought_peak[c.option.key] = max(state.bought_peak.get(c.option.key, 0),
                                                  tl.used(c.start, c.end) + c.est.chips)
        tl.book(c.start, c.end, c.est.chips)
        a = make_assignment(self.sc, w, stage, c.option, c.est, c.start, c.end, c.egress,
                            c.transfer, c.capex, c.verdict, c.late_hours, c.penalty)
        state.placed[(w.id, stage.id)] = (a, c.option.site, self.cand.ops[w.id][stage.id])
        state.spent[w.id] = state.spent.get(w.id, 0.0) + a.cost_usd
        state.late[w.id] = max(state.late.get(w.id, 0.0), a.late_hours)
        record_exports(self.sc, w, stage, c.option.site, state.exports, self.cand.date.year)
        return a


def reject(o: Option, reason: str, note: str = "", **kw: Any) -> Rejection:
    return Rejection(o.site.id, o.chip.id, reason, note, bought=o.procured, **kw)


def _row_reject(t: StageTable, i: int, reason: str, note: str = "", **kw: Any) -> Rejection:
    r, buyer = t.rows[i]
    return Rejection(r.site.id, r.chip.id, reason, note, bought=buyer is not None, **kw)


def make_assignment(sc: Scenario, w: Workload, stage: Stage, o: Option, est: Estimate,
                    start: float, end: float, egress: float, transfer: float, capex: float,
                    verdict: Verdict, late_hours: float, penalty: float) -> Assignment:
    satisfied = sorted({s for d in verdict.decisions for s in d.satisfied})
    warnings = {r.rule: r for d in verdict.decisions for r in d.warnings}
    notes = {r.rule: r for d in verdict.decisions for r in d.notes}
    site = o.site
    e = est.energy(o.chip, pue=site.pue, gco2_per_kwh=site.grid_gco2_per_kwh,
                   country=site.country)
    return Assignment(
        workload=w.id, stage=stage.id, site=site.id, chip=o.chip.id, chips=est.chips,
        start_h=start, end_h=end, chip_hours=est.chip_hours,
        compute_usd=o.cost(est), egress_usd=egress, transfer_hours=transfer,
        mfu=est.mfu, satisfied=tuple(satisfied), warnings=tuple(warnings.values()),
        notes=tuple(notes.values()), late_hours=late_hours, layout=est.layout,
        energy_kwh=e.kwh if e else None, tco2e=e.tco2e if e else None, capex_usd=capex,
        penalty_usd=penalty, bought=o.procured,
        chip_hours_range=(est.chip_hours_low, est.chip_hours_high) if est.interval else None,
    )


def record_exports(sc: Scenario, w: Workload, stage: Stage, site: Site, ledger: ExportLedger,
                   year: int) -> None:
    ledger.record(w.tenant, [sc.dataset(d) for d in stage.datasets], site, year)
    for country in stage.users:
        if country != site.country:
            ledger.add(w.tenant, country, year, users_export_id(w, stage, country),
                       user_subjects(stage), 0)
