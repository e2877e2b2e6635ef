"""What a plan is: assignments, unplaced stages, and the diagnosis of every option that lost."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from straits.plan.reasons import NO_OPTIONS_TEXT, RankedOut, ReasonCode
from straits.rules.decision import Reason

Status = Literal["optimal", "feasible", "infeasible"]


def iso(start: dt.datetime, hours: float) -> str:
    t = start + dt.timedelta(hours=hours)
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Assignment:
    workload: str
    stage: str
    site: str
    chip: str
    chips: int
    start_h: float
    end_h: float
    chip_hours: float
    compute_usd: float
    egress_usd: float
    transfer_hours: float
    mfu: float
    satisfied: tuple[str, ...]
    warnings: tuple[Reason, ...] = ()
    notes: tuple[Reason, ...] = ()
    late_hours: float = 0.0
    layout: str = ""
    energy_kwh: float | None = None
    tco2e: float | None = None
    capex_usd: float = 0.0
    """amortized price of chips bought for this stage"""
    penalty_usd: float = 0.0
    """soft-deadline penalty (not a cost; counted by the objective)"""
    bought: bool = False
    chip_hours_range: tuple[float, float] | None = None
    """(low, high) of the estimate's central 80% interval (training stages)"""

    @property
    def cost_usd(self) -> float:
        return self.compute_usd + self.egress_usd + self.capex_usd

    @property
    def budgeted_usd(self) -> float:
        """What the workload's budget counts: rental and data movement, not capex."""
        return self.compute_usd + self.egress_usd

    @property
    def option_label(self) -> str:
        base = f"{self.site}/{self.chip}"
        return f"{base} (bought)" if self.bought else base

    def to_json(self, start: dt.datetime) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "stage": self.stage,
            "site": self.site,
            "chip": self.chip,
            "chips": self.chips,
            "start": iso(start, self.start_h),
            "end": iso(start, self.end_h),
            "hours": round(self.end_h - self.start_h, 3),
            "chip_hours": round(self.chip_hours, 1),
            "cost_usd": round(self.cost_usd, 2),
            "compute_usd": round(self.compute_usd, 2),
            "egress_usd": round(self.egress_usd, 2),
            "capex_usd": round(self.capex_usd, 2),
            "bought": self.bought,
            "penalty_usd": round(self.penalty_usd, 2),
            "transfer_hours": round(self.transfer_hours, 3),
            "mfu": round(self.mfu, 4),
            "decision": "allow",
            "requires": list(self.satisfied),
            "warnings": sorted({w.rule for w in self.warnings}),
            "late_hours": round(self.late_hours, 1),
            "layout": self.layout,
            "energy_kwh": None if self.energy_kwh is None else round(self.energy_kwh, 1),
            "tco2e": None if self.tco2e is None else round(self.tco2e, 3),
            "chip_hours_low": None
            if self.chip_hours_range is None
            else round(self.chip_hours_range[0], 1),
            "chip_hours_high": None
            if self.chip_hours_range is None
            else round(self.chip_hours_range[1], 1),
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one option (site, pool) of a stage lost."""

    site: str
    chip: str
    code: ReasonCode
    note: str = ""
    rules: tuple[str, ...] = ()
    """for a rule rejection, the ids of every rule that blocks the option"""
    cite: Reason | None = None
    """for a rule rejection, the rule that blocks it (its text is rendered when read)"""
    bought: bool = False
    group: str = ""
    """the label to group by where the code's would mislead (:attr:`Loss.group`)"""

    @property
    def label(self) -> str:
        base = f"{self.site}/{self.chip}"
        return f"{base} (bought)" if self.bought else base

    @property
    def reason(self) -> str:
        """The group label people read: a rule's label such as 'PIPL cross-border
        (cac-security-assessment)', else the code's ('capacity', 'predecessor unplaced') or
        the group its loss names ('past 2100-12-31')."""
        if self.cite is not None:
            return self.cite.label
        return self.group or self.code.label

    @property
    def detail(self) -> str:
        return self.cite.text if self.cite is not None else self.note

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "site": self.site,
            "chip": self.chip,
            "reason": self.reason,
            "code": self.code.value,
            "detail": self.detail,
        }
        if self.rules:
            out["rules"] = list(self.rules)
        return out


@dataclass(frozen=True)
class StageDiagnosis:
    workload: str
    stage: str
    options: int
    chosen: str | None
    rejections: tuple[Rejection, ...]
    citations: tuple[Reason, ...] = ()
    """One reason per distinct blocking rule, for the explanation of what the rules did."""
    also_lost: tuple[RankedOut, ...] = ()
    """options that lost without a record of their own: in a large portfolio, those ranked
    below the best lawful ones on their own cost or time; those not examined in time"""

    @cached_property
    def _tally(self) -> tuple[dict[str, int], dict[str, int], int]:
        """(options lost per label, per code, options blocked by a constraint), in one pass."""
        labels: Counter[str] = Counter()
        codes: Counter[str] = Counter()
        blocked = 0
        for r in self.rejections:
            labels[r.reason] += 1
            codes[r.code.value] += 1
            blocked += not r.code.lost_to_better
        for x in self.also_lost:
            labels[x.code.label] += x.options
            codes[x.code.value] += x.options
            blocked += 0 if x.code.lost_to_better else x.options
        if self.options == 0:
            # nothing to choose from: the reason is still a code, counted over no options
            return {ReasonCode.NO_OPTIONS.label: 0}, {ReasonCode.NO_OPTIONS.value: 0}, 0
        return dict(labels.most_common()), dict(codes.most_common()), blocked

    @property
    def lost(self) -> dict[str, int]:
        """Options lost per reason, by the label people read (the plan JSON's ``lost``)."""
        return dict(self._tally[0])

    @property
    def lost_codes(self) -> dict[str, int]:
        """Options lost per reason code."""
        return dict(self._tally[1])

    @property
    def lawful_and_free(self) -> int:
        return self.options - self._tally[2]

    def summary(self) -> str:
        """'1/12 options lawful and free: 7 PIPL cross-border (...), 3 capacity, 1 cost'."""
        head = f"{self.lawful_and_free}/{self.options} options lawful and free"
        if self.options == 0:
            return f"{head}: {NO_OPTIONS_TEXT}"
        parts = ", ".join(f"{n} {reason}" for reason, n in self.lost.items())
        return f"{head}: {parts}" if parts else head

    def to_json(self, details: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "workload": self.workload,
            "stage": self.stage,
            "options": self.options,
            "lawful_and_free": self.lawful_and_free,
            "chosen": self.chosen,
            "lost": self.lost,
            "lost_codes": self.lost_codes,
            "summary": self.summary(),
            "rules": [c.to_json() for c in self.citations],
        }
        if details:
            out["rejections"] = [r.to_json() for r in self.rejections] + [
                {
                    "options": x.options,
                    "reason": x.code.label,
                    "code": x.code.value,
                    "detail": x.note,
                }
                for x in self.also_lost
            ]
        return out


@dataclass(frozen=True)
class WhyNot:
    """The smallest set of constraints that keeps a stage from being placed."""

    workload: str
    stage: str
    constraints: tuple[str, ...]
    requires: tuple[str, ...]
    """authorizations that would make blocked options lawful"""
    text: str

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "stage": self.stage,
            "constraints": list(self.constraints),
            "requires": list(self.requires),
            "text": self.text,
        }


@dataclass(frozen=True)
class Plan:
    scenario: str
    date: dt.date
    regime: str
    objective: str
    solver: str
    status: Status
    start: dt.datetime
    assignments: tuple[Assignment, ...]
    unplaced: tuple[StageDiagnosis, ...]
    diagnosis: tuple[StageDiagnosis, ...]
    rules_digest: str = ""
    bound_usd: float | None = None
    """CP-SAT's lower bound on the cost objective (when the search reports one)"""
    gap: float | None = None
    """(objective - bound) / objective of the CP-SAT search, in the model's units"""
    baseline_usd: float | None = None
    """the greedy plan's cost plus penalties, for comparison"""
    bound_unplaced: int | None = None
    """the fewest unplaced stages CP-SAT's bound allows (a plan cannot place more than
    all stages less this)"""
    baseline_unplaced: int | None = None
    """how many stages the greedy plan left unplaced (CP-SAT may place more at a higher cost)"""
    notes: tuple[str, ...] = field(default_factory=tuple)
    why_not: tuple[WhyNot, ...] = ()
    objective_unit: str = "USD"
    objective_value: float | None = None
    """the plan's value in the objective's own terms (dollars, hours, MWh, tCO2e)"""
    bound_value: float | None = None
    """the lower bound on that value (when the bound leaves as many stages unplaced)"""
    baseline_value: float | None = None
    """the greedy plan's value"""
    search: dict[str, Any] | None = None
    """what the search did: its parts, rounds of neighbourhood search, where the answer came
    from"""
    timings: dict[str, Any] | None = None
    """the time limit and the seconds each phase took (:class:`~straits.plan.deadline.Deadline`)"""
    risk: str = "p50"
    """where in the estimates' interval training stages were budgeted (``p90``: the high end)"""

    @property
    def total_cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.assignments)

    @property
    def penalty_usd(self) -> float:
        return sum(a.penalty_usd for a in self.assignments)

    @property
    def objective_usd(self) -> float:
        """What the cost objective minimizes: cost plus soft-deadline penalties."""
        return self.total_cost_usd + self.penalty_usd

    @property
    def energy_mwh(self) -> float:
        """The placed stages' energy, those whose energy is unknown left out (see
        :attr:`energy_known`)."""
        return sum(a.energy_kwh or 0.0 for a in self.assignments) / 1000.0

    @property
    def tco2e(self) -> float:
        """The placed stages' emissions, those whose emissions are unknown left out."""
        return sum(a.tco2e or 0.0 for a in self.assignments)

    @property
    def energy_known(self) -> tuple[bool, bool]:
        """Whether every placed stage's energy, and its emissions, are known (a chip with no
        power figure, a grid with no intensity): a total that left one out is no total."""
        return (
            all(a.energy_kwh is not None for a in self.assignments),
            all(a.tco2e is not None for a in self.assignments),
        )

    @property
    def total_cost_usd_high(self) -> float | None:
        """The cost with every training stage's compute at its estimate's high end (equal to
        ``total_cost_usd`` at p90); None when no placed stage carries an interval."""
        ranged = [a for a in self.assignments if a.chip_hours_range is not None]
        if not ranged:
            return None
        extra = 0.0
        for a in ranged:
            assert a.chip_hours_range is not None
            if a.chip_hours > 0:
                extra += a.compute_usd * (a.chip_hours_range[1] / a.chip_hours - 1.0)
        return self.total_cost_usd + max(extra, 0.0)

    @property
    def makespan_hours(self) -> float:
        return max((a.end_h for a in self.assignments), default=0.0)

    def assignment(self, workload: str, stage: str) -> Assignment | None:
        for a in self.assignments:
            if a.workload == workload and a.stage == stage:
                return a
        return None

    def warnings(self) -> dict[str, tuple[Reason, list[str]]]:
        """Each warning rule once, with the stages it touches."""
        out: dict[str, tuple[Reason, list[str]]] = {}
        for a in self.assignments:
            for w in a.warnings:
                entry = out.setdefault(w.rule, (w, []))
                tag = f"{a.workload}/{a.stage}"
                if tag not in entry[1]:
                    entry[1].append(tag)
        return out

    def to_json(self, details: bool = False) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "date": self.date.isoformat(),
            "regime": self.regime,
            "solver": self.solver,
            "status": self.status,
            "objective": self.objective,
            "risk": self.risk,
            "total_cost_usd": round(self.total_cost_usd, 2),
            "total_cost_usd_high": _round2(self.total_cost_usd_high),
            "penalty_usd": round(self.penalty_usd, 2),
            "makespan_hours": round(self.makespan_hours, 3),
            "energy_mwh": round(self.energy_mwh, 3) if self.energy_known[0] else None,
            "tco2e": round(self.tco2e, 2) if self.energy_known[1] else None,
            "assignments": [a.to_json(self.start) for a in self.assignments],
            "unplaced": [
                {
                    "workload": u.workload,
                    "stage": u.stage,
                    "lost": u.lost,
                    "lost_codes": u.lost_codes,
                    "summary": u.summary(),
                }
                for u in self.unplaced
            ],
            "diagnosis": [d.to_json(details) for d in self.diagnosis],
            "warnings": [
                {**w.to_json(), "stages": stages} for w, stages in self.warnings().values()
            ],
            "rules_digest": self.rules_digest,
            "bound_usd": None if self.bound_usd is None else round(self.bound_usd, 2),
            "gap": None if self.gap is None else round(self.gap, 6),
            "baseline_usd": None if self.baseline_usd is None else round(self.baseline_usd, 2),
            "bound_unplaced": self.bound_unplaced,
            "baseline_unplaced": self.baseline_unplaced,
            "why_not": [x.to_json() for x in self.why_not],
            "notes": list(self.notes),
            "objective_unit": self.objective_unit,
            "objective_value": _round(self.objective_value),
            "bound_value": _round(self.bound_value),
            "baseline_value": _round(self.baseline_value),
            "search": self.search,
            "timings": self.timings,
        }


def _round2(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 4)
