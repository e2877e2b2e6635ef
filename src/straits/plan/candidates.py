"""Every stage's options with the rules' verdict on each, shared by the greedy planner and the
CP-SAT optimizer.

The rule questions of a placement depend on the site only through its country, its operator's
headquarters and which datasets are already stored there, and on the workload only through its
tenant, data and model; Cedar's answers are memoized on exactly that, so a portfolio over
hundreds of sites and workloads asks each distinct question once.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from straits.model.request import CheckRequest, SiteFacts, TenantFacts
from straits.model.scenario import Pool, Scenario, Site, Stage, Workload
from straits.plan.checks import (
    ExportLedger,
    Question,
    placement_questions,
    prior_volumes,
    users_export_id,
)
from straits.plan.options import MENU_SIZES, MENU_SIZES_LARGE, Option
from straits.plan.table import Index, StageTable, build_table
from straits.rules.decision import Decision, Reason, combine, template_values
from straits.rules.engine import RuleSet
from straits.rules.pack_loader import Rule


@dataclass(frozen=True)
class Verdict:
    """The rules' answer for one option: lawful, or the reason that blocks it."""

    decisions: tuple[Decision, ...]
    blocking: Reason | None

    @property
    def lawful(self) -> bool:
        return self.blocking is None

    @property
    def label(self) -> str:
        return self.blocking.label if self.blocking is not None else ""

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(r.rule for d in self.decisions for r in d.blocking)


def combine_decisions(decisions: list[Decision]) -> Verdict:
    """Lawful when every decision is ``allow``; else the most severe blocking reason."""
    worst: Reason | None = None
    for d in decisions:
        for r in d.blocking:
            if worst is None or (r.outcome == "deny" and worst.outcome != "deny"):
                worst = r
    return Verdict(tuple(decisions), worst)


#: stages beyond which a portfolio counts as large
LARGE_PORTFOLIO_STAGES = 400

Placed = tuple[Stage, Site, float]
"""A predecessor: the stage, where it runs, the model's training operations through it."""


class Candidates:
    """Options, estimates and memoized rule verdicts for every stage of a scenario."""

    def __init__(self, sc: Scenario, rules: RuleSet, *, regime: str, date: dt.date) -> None:
        self.sc = sc
        self.rules = rules
        self.regime = regime
        self.date = date
        self.index = Index.of(sc)
        #: a large portfolio tries fewer chip counts and schedules fewer options per stage
        self.large = sum(len(w.stages) for w in sc.workloads) > LARGE_PORTFOLIO_STAGES
        self._tables: dict[tuple[str, str], StageTable] = {}
        self.ops = _TrainingOps(self)
        """workload id -> stage id -> the model's training FLOPs through that stage (computed
        for a workload when first asked: re-checking one stage of a large plan needs only
        its own workload's tables)"""
        self._memo: dict[Hashable, tuple[list[list[Rule]], Verdict | None]] = {}
        self._procure: dict[tuple[str, str, str], Decision] = {}
        self._moves: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def table(self, w: Workload, stage: Stage) -> StageTable:
        """Every option of ``stage``, built on first use."""
        key = (w.id, stage.id)
        t = self._tables.get(key)
        if t is None:
            t = self._tables[key] = build_table(
                self.sc, self.index, w, stage, MENU_SIZES_LARGE if self.large else MENU_SIZES)
        return t

    def options(self, w: Workload, stage: Stage) -> list[Option]:
        return self.table(w, stage).options()

    def data_moves(self, stage: Stage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ready hours, egress USD, longest transfer hours) per site for the stage's datasets,
        which start moving at the plan start."""
        hit = self._moves.get(stage.datasets)
        if hit is None:
            n = len(self.index.site_ids)
            ready, egress = np.zeros(n), np.zeros(n)
            for d_id in stage.datasets:
                d = self.sc.dataset(d_id)
                src = self.index.site_of[d.located_at]
                ready = np.maximum(ready, self.index.transfer_hours_from(src, d.size_gb))
                egress += self.index.egress_from(src, d.size_gb)
            hit = self._moves[stage.datasets] = (ready, egress, ready)
        return hit

    def groups(self, w: Workload, stage: Stage, t: StageTable, pred_sites: list[int]
               ) -> np.ndarray:
        """A number per row: rows with the same number look the same to the rules (site
        class, chip, datasets stored there, bought or rented, predecessors there)."""
        located = np.zeros(len(t), dtype=np.int64)
        for k, d_id in enumerate(stage.datasets[:8]):
            home = self.index.site_of[self.sc.dataset(d_id).located_at]
            located |= (t.site == home).astype(np.int64) << k
        preds = np.zeros(len(t), dtype=np.int64)
        for k, s in enumerate(pred_sites[:8]):
            preds |= (t.site == s).astype(np.int64) << k
        n_chips = len(self.index.chip_ids)
        out: np.ndarray = (((t.cls * n_chips + t.chip) * 256 + located) * 2 + t.bought) * 256 \
            + preds
        return out

    def _training_ops(self, w: Workload) -> dict[str, float]:
        """Cumulative training FLOPs of the model through each stage (ancestors included)."""
        own = {s.id: max((e.flops for f in self.table(w, s).fits for e in f[3]), default=0.0)
               for s in w.stages}
        total: dict[str, float] = {}
        for s in w.topological_stages():
            total[s.id] = own[s.id] + sum(total[p] for p in ancestors(w, s))
        return total

    # --- verdicts ------------------------------------------------------------------------------
    def questions(self, w: Workload, stage: Stage, site: Site, chip: str, preds: list[Placed],
                  exports: list[ExportLedger]) -> list[Question]:
        return placement_questions(
            self.sc, w, stage, site, chip, date=self.date, regime=self.regime,
            training_ops=self.ops[w.id][stage.id], preds=preds, exports=exports,
            year=self.date.year)

    def _ops(self, training_ops: float) -> Hashable:
        return self.rules.position(("weights", "training_ops_e18"),
                                   math.ceil(training_ops / 1e18))

    def _key(self, w: Workload, stage: Stage, option: Option, preds: list[Placed],
             exports: list[ExportLedger]) -> Hashable:
        """Everything the questions of this placement depend on, and nothing that only names
        it: workloads of one tenant on similar data share their answers."""
        site = option.site
        t = self.sc.tenant(w.tenant)
        year = self.date.year
        data = []
        for d_id in stage.datasets:
            d = self.sc.dataset(d_id)
            prior = prior_volumes(exports, w.tenant, d.origin, year, {d.id}) if d.is_personal \
                else ()
            data.append((d.origin, d.classes, d.subjects, d.sensitive_subjects,
                         d.located_at == site.id, prior))
        users = tuple((c, prior_volumes(exports, w.tenant, c, year,
                                        {users_export_id(w, stage, c)}))
                      for c in stage.users)
        pred_key = tuple((ps.country, ps.operator_hq, ps.id == site.id, self._ops(ops))
                         for _, ps, ops in preds)
        return (t.hq, t.ciio, stage.kind, option.chip.id, site.country, site.operator_hq,
                site.dpf_certified, tuple(data), users, stage.user_subjects, w.model.open_weights,
                self._ops(self.ops[w.id][stage.id]), pred_key)

    def verdict(self, w: Workload, stage: Stage, option: Option, preds: list[Placed],
                exports: list[ExportLedger]) -> Verdict:
        """The verdict on placing ``stage`` on ``option`` after ``preds``, with the volumes in
        ``exports`` already sent abroad by the tenant this year. A bought option also needs
        ``procure`` to be lawful for the buyer."""
        key = self._key(w, stage, option, preds, exports)
        entry = self._memo.get(key)
        if entry is not None and entry[1] is not None:
            hit = entry[1]
        else:
            qs = self.questions(w, stage, option.site, option.chip.id, preds, exports)
            applicable = entry[0] if entry else self.rules.applicable([q.request for q in qs])
            hit = combine_decisions([combine(rules, q.request, template_values(q.request))
                                     for rules, q in zip(applicable, qs, strict=True)])
            if entry is None:
                # the verdict itself is shared unless a reason quotes what the key leaves out
                exact = any("{training_ops}" in r.reason for rs in applicable for r in rs)
                self._memo[key] = (applicable, None if exact else hit)
        if option.procured and hit.lawful:
            buy = self.procurement(w.tenant, option.site, option.pool)
            if not buy.lawful:
                return combine_decisions([*hit.decisions, buy])
            return Verdict((*hit.decisions, buy), None)
        return hit

    def static_verdict(self, w: Workload, stage: Stage, option: Option) -> Verdict:
        """The verdict with no predecessor placed elsewhere and nothing else exported: the
        weakest condition any placement of ``option`` must meet (requirements only grow with
        volume)."""
        return self.verdict(w, stage, option, [], [])

    def procurement(self, tenant_id: str, site: Site, pool: Pool) -> Decision:
        """May ``tenant`` buy the pool's procurable chips on the order date (the plan date)?"""
        key = (tenant_id, site.id, pool.chip)
        if key not in self._procure:
            assert pool.procurable is not None
            t = self.sc.tenant(tenant_id)
            req = CheckRequest(
                date=self.date, regime=self.regime, action="procure",
                tenant=TenantFacts(hq=t.hq, authorizations=t.authorizations, ciio=t.ciio),
                site=SiteFacts(country=site.country, operator_hq=site.operator_hq),
                chip=pool.chip, quantity=pool.procurable.max,
                ships_from=pool.procurable.ships_from)
            self._procure[key] = self.rules.check(req)
        return self._procure[key]


class _TrainingOps(dict[str, dict[str, float]]):
    def __init__(self, cand: Candidates) -> None:
        super().__init__()
        self._cand = cand

    def __missing__(self, workload_id: str) -> dict[str, float]:
        value = self[workload_id] = self._cand._training_ops(
            self._cand.sc.workload(workload_id))
        return value


def ancestors(w: Workload, s: Stage) -> set[str]:
    seen: set[str] = set()
    todo = list(s.after)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(w.stage(p).after)
    return seen
