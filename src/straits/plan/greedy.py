"""Capacity-aware greedy planner.

Workloads are taken by deadline, stages in dependency order. For each stage every (site, pool)
option is checked against the rules (given where its predecessors went and what the tenant has
already exported), then scheduled at the earliest time its pool has the chips free, after its
predecessors end and its datasets and predecessor weights have moved. The best candidate by the
objective wins; every other option gets a rejection reason for the diagnosis.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from straits.estimate import Estimate
from straits.model.scenario import Scenario, Site, Stage, Workload
from straits.plan.checks import (
    ExportLedger,
    Question,
    placement_questions,
    user_subjects,
    users_export_id,
)
from straits.plan.options import Option, fastest_hours, stage_options
from straits.plan.result import Assignment, Plan, Rejection, StageDiagnosis
from straits.plan.timeline import Timeline
from straits.plan.transfer import egress_usd, transfer_hours, weights_gb
from straits.rules.decision import Decision, Reason
from straits.rules.engine import RuleSet


@dataclass(frozen=True)
class Candidate:
    option: Option
    est: Estimate
    start: float
    end: float
    egress: float
    transfer: float
    decisions: tuple[Decision, ...]

    @property
    def cost(self) -> float:
        return (self.est.cost_usd or 0.0) + self.egress


@dataclass(frozen=True)
class Verdict:
    """The rules' answer for one option: lawful, or the reason that blocks it."""

    decisions: tuple[Decision, ...]
    blocking: Reason | None
    label: str


def combine_decisions(decisions: list[Decision]) -> Verdict:
    worst = None
    for d in decisions:
        for r in d.blocking:
            if worst is None or (r.outcome == "deny" and worst.outcome != "deny"):
                worst = r
    label = worst.label if worst is not None else ""
    return Verdict(tuple(decisions), worst, label)


@dataclass
class PlanState:
    timelines: dict[str, Timeline] = field(default_factory=dict)
    placed: dict[tuple[str, str], tuple[Assignment, Site, float]] = field(default_factory=dict)
    exports: ExportLedger = field(default_factory=ExportLedger)

    def timeline(self, option: Option) -> Timeline:
        return self.timelines.setdefault(option.key, Timeline(option.pool.count))


def _hours_until(sc: Scenario, day: dt.date) -> float:
    end = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(days=1)
    return (end - sc.start).total_seconds() / 3600.0


class GreedyPlanner:
    def __init__(self, sc: Scenario, rules: RuleSet, *, regime: str, objective: str,
                 date: dt.date) -> None:
        self.sc = sc
        self.rules = rules
        self.regime = regime
        self.objective = objective
        self.date = date
        self.options = {(w.id, s.id): stage_options(sc, w, s)
                        for w in sc.workloads for s in w.stages}
        self.ops = {w.id: self.training_ops(w) for w in sc.workloads}
        self.seed = ExportLedger()

    # --- per-workload preparation --------------------------------------------------------------
    def training_ops(self, w: Workload) -> dict[str, float]:
        """Cumulative training FLOPs of the model through each stage (its ancestors included)."""
        own: dict[str, float] = {}
        for s in w.stages:
            sizes = [e for o in self.options[(w.id, s.id)] for e in o.sizes]
            own[s.id] = max((e.flops for e in sizes), default=0.0)
        total: dict[str, float] = {}
        for s in w.topological_stages():
            total[s.id] = own[s.id] + sum(total[p] for p in _ancestors(w, s))
        return total

    def latest_finish(self, w: Workload) -> dict[str, float]:
        """Hours by which each stage must end so that its successors can still meet the
        deadline at their fastest."""
        if w.deadline is None:
            return {s.id: float("inf") for s in w.stages}
        deadline = _hours_until(self.sc, w.deadline)
        latest: dict[str, float] = {}
        for s in reversed(w.topological_stages()):
            succ = [t for t in w.stages if s.id in t.after]
            bound = deadline
            for t in succ:
                fast = fastest_hours(self.options[(w.id, t.id)]) or 0.0
                bound = min(bound, latest[t.id] - fast)
            latest[s.id] = bound
        return latest

    # --- the run -------------------------------------------------------------------------------
    def run(self) -> Plan:
        """Plan, then verify every export against the year's final volumes; when a placement
        turns out to need more than it was checked for, plan again knowing those exports
        (seeds only grow, so this ends within one round per export)."""
        seed = ExportLedger()
        for _ in range(64):
            plan, state = self.run_once(seed)
            if self.verified(state):
                return plan
            seed = seed.merged(state.exports)
        raise RuntimeError("export volumes did not converge")  # pragma: no cover

    def verified(self, state: PlanState) -> bool:
        for (wid, sid), (a, site, _) in state.placed.items():
            w = self.sc.workload(wid)
            stage = w.stage(sid)
            if not any(self.sc.dataset(d).is_personal for d in stage.datasets) and not stage.users:
                continue
            preds = [state.placed[(wid, p)] for p in stage.after]
            qs = self.questions(w, stage, site, a.chip, preds, [state.exports])
            if not all(d.lawful for d in self.rules.check_many([q.request for q in qs])):
                return False
        return True

    def run_once(self, seed: ExportLedger) -> tuple[Plan, PlanState]:
        self.seed = seed
        state = PlanState()
        diagnosis: list[StageDiagnosis] = []
        unplaced: list[StageDiagnosis] = []
        notes: list[str] = []
        order = sorted(self.sc.workloads, key=lambda w: (w.deadline or dt.date.max, w.id))
        for w in order:
            ops = self.ops[w.id]
            latest = self.latest_finish(w)
            for stage in w.topological_stages():
                diag, cand = self.place(w, stage, state, ops, latest[stage.id])
                diagnosis.append(diag)
                if cand is None:
                    unplaced.append(diag)
                    continue
                a = self.book(w, stage, cand, state, ops[stage.id], latest[stage.id])
                if a.late_hours > 0:
                    notes.append(f"{w.id}/{stage.id} ends {a.late_hours:,.0f} h after what the "
                                 f"deadline {w.deadline} allows")
            if w.budget_usd is not None:
                spent = sum(a.cost_usd for (wid, _), (a, _, _) in state.placed.items()
                            if wid == w.id)
                if spent > w.budget_usd:
                    notes.append(f"{w.id} costs ${spent:,.0f}, over its budget of "
                                 f"${w.budget_usd:,.0f}")
        assignments = tuple(a for a, _, _ in state.placed.values())
        return (Plan(
            scenario=self.sc.name, date=self.date, regime=self.regime, objective=self.objective,
            solver="greedy", status="infeasible" if unplaced else "feasible", start=self.sc.start,
            assignments=assignments, unplaced=tuple(unplaced), diagnosis=tuple(diagnosis),
            rules_digest=self.rules.digest, notes=tuple(notes),
        ), state)

    def place(self, w: Workload, stage: Stage, state: PlanState, ops: dict[str, float],
              latest: float) -> tuple[StageDiagnosis, Candidate | None]:
        options = self.options[(w.id, stage.id)]
        preds = [state.placed.get((w.id, p)) for p in stage.after]
        if any(p is None for p in preds):
            rej = tuple(Rejection(o.site.id, o.chip.id, "predecessor unplaced",
                                  "a stage it depends on could not be placed") for o in options)
            return StageDiagnosis(w.id, stage.id, len(options), None, rej), None
        placed_preds = [p for p in preds if p is not None]
        rejections: list[Rejection] = []
        citations: dict[str, Reason] = {}
        per_option: dict[str, list[Candidate]] = {}
        empty_end: dict[str, float] = {}
        for o in options:
            if o.problem is not None:
                rejections.append(Rejection(o.site.id, o.chip.id, o.problem, o.detail))
                continue
            verdict = self.verdict(w, stage, o, placed_preds, state)
            if verdict.blocking is not None:
                b = verdict.blocking
                citations.setdefault(b.rule, b)
                rejections.append(Rejection(o.site.id, o.chip.id, verdict.label, b.text,
                                            rules=tuple(r.rule for d in verdict.decisions
                                                        for r in d.blocking)))
                continue
            ready, transfer, egress = self.ready(w, stage, o.site, placed_preds)
            tl = state.timeline(o)
            cands = []
            for est in o.sizes:
                start = tl.earliest(est.chips, est.hours, ready)
                if start is None:
                    continue
                cands.append(Candidate(o, est, start, start + est.hours, egress, transfer,
                                       verdict.decisions))
            per_option[o.key] = cands
            empty_end[o.key] = ready + min(e.hours for e in o.sizes)
        all_cands = [c for cs in per_option.values() for c in cs]
        on_time = [c for c in all_cands if c.end <= latest + 1e-6]
        best: Candidate | None
        if on_time:
            best = min(on_time, key=self.score)
        else:  # nothing meets the deadline: the least late, then the cheapest
            best = min(all_cands, key=lambda c: (c.end, c.cost)) if all_cands else None
        for o in options:
            if o.key not in per_option:
                continue
            if best is not None and o.key == best.option.key:
                continue
            rejections.append(self._lost(o, per_option[o.key], best, latest, empty_end[o.key],
                                         bool(on_time)))
        diag = StageDiagnosis(w.id, stage.id, len(options),
                              best.option.key if best else None, tuple(rejections),
                              tuple(citations.values()))
        return diag, best

    def score(self, c: Candidate) -> tuple[float, float]:
        return (c.cost, c.end) if self.objective == "cost" else (c.end, c.cost)

    def _lost(self, o: Option, cands: list[Candidate], best: Candidate | None, latest: float,
              empty_end: float, any_on_time: bool) -> Rejection:
        on_time = [c for c in cands if c.end <= latest + 1e-6]
        if any_on_time and not on_time:
            if empty_end > latest:
                return Rejection(o.site.id, o.chip.id, "deadline",
                                 f"even on an empty pool it would end {empty_end - latest:,.0f} h"
                                 f" too late")
            return Rejection(o.site.id, o.chip.id, "capacity",
                             "pool is busy with other stages until too late")
        mine = min(on_time or cands, key=self.score)
        assert best is not None
        if self.objective == "cost" and mine.cost > best.cost + 1e-6:
            return Rejection(o.site.id, o.chip.id, "cost",
                             f"${mine.cost - best.cost:,.0f} more than {best.option.key}")
        if mine.end > best.end + 1e-6:
            return Rejection(o.site.id, o.chip.id, "time",
                             f"ends {mine.end - best.end:,.1f} h after {best.option.key}")
        return Rejection(o.site.id, o.chip.id, "cost",
                         f"${mine.cost - best.cost:,.0f} more than {best.option.key}")

    def questions(self, w: Workload, stage: Stage, site: Site, chip: str,
                  preds: list[tuple[Assignment, Site, float]],
                  exports: list[ExportLedger]) -> list[Question]:
        ops = self.ops[w.id]
        pred_info = [(w.stage(a.stage), psite, pops) for a, psite, pops in preds]
        return placement_questions(
            self.sc, w, stage, site, chip, date=self.date, regime=self.regime,
            training_ops=ops[stage.id], preds=pred_info, exports=exports, year=self.date.year)

    def verdict(self, w: Workload, stage: Stage, o: Option,
                preds: list[tuple[Assignment, Site, float]], state: PlanState) -> Verdict:
        qs = self.questions(w, stage, o.site, o.chip.id, preds, [state.exports, self.seed])
        return combine_decisions(self.rules.check_many([q.request for q in qs]))

    def ready(self, w: Workload, stage: Stage, site: Site,
              preds: list[tuple[Assignment, Site, float]]) -> tuple[float, float, float]:
        """(earliest start, longest transfer hours, egress USD) for running ``stage`` at
        ``site``: datasets move from the plan start, weights after their stage ends."""
        ready = 0.0
        longest = 0.0
        egress = 0.0
        for d_id in stage.datasets:
            d = self.sc.dataset(d_id)
            src = self.sc.site(d.located_at)
            h = transfer_hours(d.size_gb, src, site)
            ready = max(ready, h)
            longest = max(longest, h)
            egress += egress_usd(d.size_gb, src, site)
        size = weights_gb(w.model)
        for a, src, _ in preds:
            h = transfer_hours(size, src, site)
            ready = max(ready, a.end_h + h)
            longest = max(longest, h)
            egress += egress_usd(size, src, site)
        return ready, longest, egress

    def book(self, w: Workload, stage: Stage, c: Candidate, state: PlanState, ops: float,
             latest: float) -> Assignment:
        state.timeline(c.option).book(c.start, c.end, c.est.chips)
        satisfied = sorted({s for d in c.decisions for s in d.satisfied})
        site = c.option.site
        e = c.est.energy(c.option.chip, pue=site.pue, gco2_per_kwh=site.grid_gco2_per_kwh,
                         country=site.country)
        warnings = {r.rule: r for d in c.decisions for r in d.warnings}
        notes = {r.rule: r for d in c.decisions for r in d.notes}
        a = Assignment(
            workload=w.id, stage=stage.id, site=c.option.site.id, chip=c.option.chip.id,
            chips=c.est.chips, start_h=c.start, end_h=c.end, chip_hours=c.est.chip_hours,
            compute_usd=c.est.cost_usd or 0.0, egress_usd=c.egress, transfer_hours=c.transfer,
            mfu=c.est.mfu, satisfied=tuple(satisfied), warnings=tuple(warnings.values()),
            notes=tuple(notes.values()), late_hours=max(0.0, c.end - latest),
            layout=c.est.layout, energy_kwh=e.kwh if e else None, tco2e=e.tco2e if e else None,
        )
        state.placed[(w.id, stage.id)] = (a, c.option.site, ops)
        year = self.date.year
        state.exports.record(w.tenant, [self.sc.dataset(d) for d in stage.datasets],
                             c.option.site, year)
        for country in stage.users:
            if country != c.option.site.country:
                state.exports.add(w.tenant, country, year, users_export_id(w, stage, country),
                                  user_subjects(stage), 0)
        return a


def _ancestors(w: Workload, s: Stage) -> set[str]:
    seen: set[str] = set()
    todo = list(s.after)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(w.stage(p).after)
    return seen
