"""Scheduling helpers shared by every solver: time, capacity, moves, and what a booking is.

The greedy planner, the CP-SAT model, the neighbourhood search, the search-free bound and the
re-check of recorded plans all count hours from the plan start the same way, build a pool's
capacity over time the same way, and turn a choice into an :class:`Assignment` the same way;
those pieces live here, so no solver imports another's internals.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from straits.estimate import Estimate
from straits.model.scenario import Scenario, Site, Stage, Workload
from straits.plan.candidates import Candidates, Verdict
from straits.plan.checks import ExportLedger, user_subjects, users_export_id
from straits.plan.objectives import Objective, RowMetrics
from straits.plan.options import Option, capex_share, pool_steps, procured_steps
from straits.plan.result import Assignment
from straits.plan.table import StageTable, weights_moves
from straits.plan.ticks import TICKS_PER_HOUR, ticks_down
from straits.plan.timeline import Timeline
from straits.plan.transfer import egress_usd, transfer_hours, weights_gb

EPS = 1e-6

StageKey = tuple[str, str]
"""(workload id, stage id)"""


def deadline_hours(sc: Scenario, day: dt.date) -> float:
    """Hours from the plan start to the end of ``day``."""
    end = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) + dt.timedelta(days=1)
    return (end - sc.start).total_seconds() / 3600.0


def hard_deadline_hours(sc: Scenario, w: Workload) -> float:
    """When every stage of ``w`` must have ended (infinite without a hard deadline)."""
    if w.deadline is None or w.deadline_policy != "hard":
        return math.inf
    return deadline_hours(sc, w.deadline)


def late_hours(sc: Scenario, w: Workload, end: float) -> float:
    """How long after a soft deadline a stage of ``w`` ending at ``end`` ends."""
    if w.deadline is None or w.deadline_policy == "hard":
        return 0.0
    return max(0.0, end - deadline_hours(sc, w.deadline))


def new_timeline(sc: Scenario, o: Option) -> Timeline:
    """An empty timeline of the resource ``o`` uses: the pool's capacity over time, or the
    chips the tenant may buy once they have arrived."""
    steps = procured_steps(o.pool) if o.procured else pool_steps(sc, o.pool)
    return Timeline(max(n for _, n in steps), steps)


def model_blocks(steps: list[tuple[float, int]], horizon: int) -> list[tuple[int, int, int]]:
    """A capacity profile (steps in hours) in the CP-SAT model's ticks up to ``horizon``
    ticks, as (start, end, chips) bookings that take the chips missing below the pool's peak:
    each window widened outward to whole ticks, so the model never uses chips that are not
    there."""
    cap = max(c for _, c in steps)
    out = []
    for i, (t0, c0) in enumerate(steps):
        t1 = steps[i + 1][0] * TICKS_PER_HOUR if i + 1 < len(steps) else horizon
        a, b = ticks_down(t0), min(horizon, math.ceil(t1 - 1e-9))
        if c0 < cap and b > a:
            out.append((a, b, cap - c0))
    return out


def model_timeline(sc: Scenario, o: Option, horizon: int) -> Timeline:
    """An empty timeline of ``o``'s resource with the model's profile, in ticks."""
    steps = procured_steps(o.pool) if o.procured else pool_steps(sc, o.pool)
    tl = Timeline(max(n for _, n in steps))
    for a, b, n in model_blocks(steps, horizon):
        tl.reserve(a, b, n)
    return tl


class Booked(NamedTuple):
    """A placed stage: its assignment, where it runs, and the model's training operations
    through it (what the rules read when its weights move on)."""

    assignment: Assignment
    site: Site
    ops: float


@dataclass(frozen=True)
class Candidate:
    """One option of a stage at one chip count, scheduled: when it would run and what it
    would cost."""

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
    foreseen: float = 0.0
    """the soft deadline's penalty this choice makes certain for the stages after it, beyond
    ``penalty`` (its end leaves them too little time at their fastest): ranks, never charged"""

    @property
    def cost(self) -> float:
        return self.option.cost(self.est) + self.egress + self.capex

    @property
    def budgeted(self) -> float:
        """What a workload's budget counts: rental and data movement (bought chips are capex,
        reported apart, as every other solver and the scenario reference count it)."""
        return self.option.cost(self.est) + self.egress

    @property
    def charged(self) -> float:
        """What the cost objective pays: the cost plus any late penalty."""
        return self.cost + self.penalty


@dataclass
class PlanState:
    """What a planner has booked so far."""

    timelines: dict[str, Timeline] = field(default_factory=dict)
    placed: dict[StageKey, Booked] = field(default_factory=dict)
    exports: ExportLedger = field(default_factory=ExportLedger)
    spent: dict[str, float] = field(default_factory=dict)
    late: dict[str, float] = field(default_factory=dict)
    """hours each workload already ends after its (soft) deadline"""
    bought_peak: dict[str, int] = field(default_factory=dict)

    def timeline(self, sc: Scenario, o: Option) -> Timeline:
        tl = self.timelines.get(o.key)
        if tl is None:
            tl = self.timelines[o.key] = new_timeline(sc, o)
        return tl

    def budget_left(self, w: Workload) -> float:
        if w.budget_usd is None:
            return math.inf
        return w.budget_usd - self.spent.get(w.id, 0.0)

    def capex(self, sc: Scenario, o: Option, start: float, end: float, chips: int) -> float:
        """Capex of the bought chips a booking adds to the tenant's peak on that pool."""
        if not o.procured:
            return 0.0
        assert o.pool.procurable is not None
        tl = self.timeline(sc, o)
        peak = max(self.bought_peak.get(o.key, 0), tl.used(start, end) + chips)
        extra = peak - self.bought_peak.get(o.key, 0)
        return extra * o.pool.procurable.usd_per_chip * capex_share(sc, o.pool)


class Moves:
    """When a stage's data and its predecessors' weights reach a site, and what moving them
    costs (datasets move from the plan start, weights after their stage ends)."""

    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self._data: dict[tuple[tuple[str, ...], str], tuple[float, float]] = {}

    def data(self, stage: Stage, site: Site) -> tuple[float, float]:
        """(longest transfer hours, egress USD) of the stage's datasets to ``site``."""
        key = (stage.datasets, site.id)
        hit = self._data.get(key)
        if hit is None:
            h_max = cost = 0.0
            for d_id in stage.datasets:
                d = self.sc.dataset(d_id)
                src = self.sc.site(d.located_at)
                h_max = max(h_max, transfer_hours(d.size_gb, src, site))
                cost += egress_usd(d.size_gb, src, site)
            hit = self._data[key] = (h_max, cost)
        return hit

    def ready(
        self, w: Workload, stage: Stage, site: Site, preds: list[Booked]
    ) -> tuple[float, float, float]:
        """(earliest start, longest transfer hours, egress USD) for running ``stage`` at
        ``site`` after ``preds``."""
        ready, egress = self.data(stage, site)
        longest = ready
        size = weights_gb(w.model)
        for b in preds:
            h = transfer_hours(size, b.site, site)
            ready, longest = max(ready, b.assignment.end_h + h), max(longest, h)
            egress += egress_usd(size, b.site, site)
        return ready, longest, egress


def row_metrics(
    cand: Candidates, w: Workload, stage: Stage, t: StageTable, preds: list[tuple[float, int]]
) -> RowMetrics:
    """Every row of a stage on its own (an empty pool), after predecessors that end at
    (hour, site index): cost, end, energy, carbon."""
    ready, egress, _ = cand.data_moves(stage)
    if preds:
        w_ready, w_egress, _ = weights_moves(cand.index, w, preds)
        ready, egress = np.maximum(ready, w_ready), egress + w_egress
    return RowMetrics(
        cost=t.min_chip_hours * t.price + egress[t.site],
        end=ready[t.site] + t.min_hours,
        mwh=t.min_chip_hours * t.mwh_rate,
        tco2e=t.min_chip_hours * t.tco2e_rate,
    )


def rank_rows(
    cand: Candidates,
    objective: Objective,
    w: Workload,
    stage: Stage,
    t: StageTable,
    preds: list[tuple[float, int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows that can run the stage, best first by the objective on their own (empty pool),
    with every row's standalone cost and end."""
    m = row_metrics(cand, w, stage, t, preds)
    primary, secondary = objective.row_keys(m, w)
    rows = np.flatnonzero(t.problem == 0)
    return rows[np.lexsort((secondary[rows], primary[rows]))], m.cost, m.end


def make_assignment(
    sc: Scenario,
    w: Workload,
    stage: Stage,
    o: Option,
    est: Estimate,
    start: float,
    end: float,
    egress: float,
    transfer: float,
    capex: float,
    verdict: Verdict,
    late: float,
    penalty: float,
) -> Assignment:
    satisfied = sorted({s for d in verdict.decisions for s in d.satisfied})
    warnings = {r.rule: r for d in verdict.decisions for r in d.warnings}
    notes = {r.rule: r for d in verdict.decisions for r in d.notes}
    site = o.site
    e = est.energy(o.chip, pue=site.pue, gco2_per_kwh=site.grid_gco2_per_kwh, country=site.country)
    return Assignment(
        workload=w.id,
        stage=stage.id,
        site=site.id,
        chip=o.chip.id,
        chips=est.chips,
        start_h=start,
        end_h=end,
        chip_hours=est.chip_hours,
        compute_usd=o.cost(est),
        egress_usd=egress,
        transfer_hours=transfer,
        mfu=est.mfu,
        satisfied=tuple(satisfied),
        warnings=tuple(warnings.values()),
        notes=tuple(notes.values()),
        late_hours=late,
        layout=est.layout,
        energy_kwh=e.kwh if e else None,
        tco2e=e.tco2e if e else None,
        capex_usd=capex,
        penalty_usd=penalty,
        bought=o.procured,
        chip_hours_range=(est.chip_hours_low, est.chip_hours_high) if est.interval else None,
    )


def record_exports(
    sc: Scenario, w: Workload, stage: Stage, site: Site, ledger: ExportLedger, year: int
) -> None:
    """Add what placing ``stage`` at ``site`` sends abroad to ``ledger``."""
    ledger.record(w.tenant, [sc.dataset(d) for d in stage.datasets], site, year)
    for country in stage.users:
        if country != site.country:
            ledger.add(
                w.tenant, country, year, users_export_id(w, stage, country), user_subjects(stage), 0
            )
