"""What a plan report shows, as plain data: built from the plan JSON contract and its scenario.

The report, the web console and the tests read this view; templates only lay it out and the
figures (``figures.py``) only draw it. Every number here comes from the plan document, the
scenario or the rules: nothing is recomputed differently from the planner.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from straits.estimate.interval import RISKS
from straits.limits import as_utc
from straits.model.scenario import Scenario
from straits.report.geo import MapView, map_view
from straits.report.usage import PoolView, pool_views
from straits.rules.engine import RuleSet
from straits.rules.listing import in_force, rule_regimes

#: stages whose every option is listed one by one (beyond it, options are grouped by reason only)
DETAIL_LIMIT = 300
#: options of one stage listed one by one; beyond it, each reason shows this many examples
OPTION_LINES = 24
EXAMPLES_PER_REASON = 4


@dataclass(frozen=True)
class Summary:
    scenario: str
    date: str
    regime: str
    objective: str
    solver: str
    status: str
    stages: int
    placed: int
    unplaced: int
    total_cost_usd: float
    penalty_usd: float
    makespan_hours: float
    end: str | None
    energy_mwh: float | None  # None: a placed stage's energy is unknown
    tco2e: float | None
    bound_usd: float | None
    gap: float | None
    baseline_usd: float | None
    baseline_unplaced: int | None
    bound_unplaced: int | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class CostRow:
    """Cost of one group of stages (a workload, or a site): its parts in US dollars."""

    key: str
    compute_usd: float
    egress_usd: float
    capex_usd: float
    penalty_usd: float

    @property
    def total_usd(self) -> float:
        return self.compute_usd + self.egress_usd + self.capex_usd + self.penalty_usd


@dataclass(frozen=True)
class RuleRef:
    rule: str
    title: str
    citation: str
    confidence: str
    effect: str
    requires: str | None


@dataclass(frozen=True)
class OptionLine:
    """One option of a stage and why it lost (or that it was chosen)."""

    option: str
    reason: str
    detail: str
    rules: tuple[str, ...]
    chosen: bool = False
    count: int = 1


@dataclass(frozen=True)
class WhyNot:
    """A stage's options, grouped like the Kubernetes scheduler's "0/N nodes are available"."""

    workload: str
    stage: str
    placed_at: str | None
    options: int
    lawful_and_free: int
    summary: str
    lost: tuple[tuple[str, int], ...]
    rules: tuple[RuleRef, ...]
    lines: tuple[OptionLine, ...]
    blocked: bool
    """some option was stopped by a rule (not only by cost, time or capacity)"""
    explanation: str = ""
    """for an unplaced stage: the smallest set of constraints that keeps it out"""
    itemized: bool = True
    """the plan document lists this stage's lost options one by one (``plan --details``; a
    recorded plan keeps the counts per reason only)"""


@dataclass(frozen=True)
class RuleSpan:
    """A rule on the timeline: when it is in force, and whether it is on the plan's date."""

    rule: str
    pack: str
    title: str
    citation: str
    confidence: str
    effect: str
    requires: str | None
    start: dt.date
    end: dt.date | None
    regimes: tuple[str, ...]
    in_force: bool


@dataclass(frozen=True)
class Warning:
    rule: str
    citation: str
    confidence: str
    text: str
    stages: tuple[str, ...]


@dataclass(frozen=True)
class Recorded:
    """The ledger entry that records the plan, and the receipt that proves it (when given)."""

    plan_id: str
    seq: int | None = None
    hash: str | None = None
    recorded_at: str | None = None
    tenant: str | None = None
    receipt: dict[str, Any] | None = None
    #: why there is no receipt (no signed checkpoint covers the entry and no key, a broken log)
    receipt_note: str | None = None


@dataclass(frozen=True)
class PlanView:
    source: str
    summary: Summary
    assignments: tuple[dict[str, Any], ...]
    pools: tuple[PoolView, ...]
    geo: MapView
    cost_by_workload: tuple[CostRow, ...]
    cost_by_site: tuple[CostRow, ...]
    why_not: tuple[WhyNot, ...]
    rules: tuple[RuleSpan, ...]
    warnings: tuple[Warning, ...]
    recorded: Recorded | None = None
    interval: dict[str, Any] = field(default_factory=dict)
    """the estimator's range for the plan's totals, when the plan carries one"""

    @property
    def rules_in_force(self) -> tuple[RuleSpan, ...]:
        return tuple(r for r in self.rules if r.in_force)


def _day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def in_utc(plan: dict[str, Any]) -> dict[str, Any]:
    """``plan`` with its assignments' times in UTC (``...Z``): a document may write them with
    any offset, and the report compares them and shows their first 16 characters."""

    def utc(text: object) -> object:
        if not isinstance(text, str):
            return text
        t = as_utc(_day(text))
        return t.isoformat(timespec="seconds" if not t.microsecond else "auto")[:-6] + "Z"

    assigned = plan.get("assignments") or []
    return {
        **plan,
        "assignments": [
            {**a, "start": utc(a.get("start")), "end": utc(a.get("end"))} for a in assigned
        ],
    }


def _figure(value: object) -> float | None:
    """A total of the plan, None where it is null (not known)."""
    return float(value) if isinstance(value, int | float) else None


def summary_of(plan: dict[str, Any], sc: Scenario) -> Summary:
    assigned = plan.get("assignments") or []
    stages = sum(len(w.stages) for w in sc.workloads)
    end = max((a["end"] for a in assigned), key=_day, default=None)
    return Summary(
        scenario=str(plan.get("scenario", sc.name)),
        date=str(plan.get("date", sc.date)),
        regime=str(plan.get("regime", sc.regime)),
        objective=str(plan.get("objective", "")),
        solver=str(plan.get("solver", "")),
        status=str(plan.get("status", "")),
        stages=stages,
        placed=len(assigned),
        unplaced=len(plan.get("unplaced") or []),
        total_cost_usd=float(plan.get("total_cost_usd") or 0.0),
        penalty_usd=float(plan.get("penalty_usd") or 0.0),
        makespan_hours=float(plan.get("makespan_hours") or 0.0),
        end=end,
        energy_mwh=_figure(plan.get("energy_mwh")),
        tco2e=_figure(plan.get("tco2e")),
        bound_usd=plan.get("bound_usd"),
        gap=plan.get("gap"),
        baseline_usd=plan.get("baseline_usd"),
        baseline_unplaced=plan.get("baseline_unplaced"),
        bound_unplaced=plan.get("bound_unplaced"),
        notes=tuple(plan.get("notes") or ()),
    )


def costs_by(plan: dict[str, Any], key: str) -> tuple[CostRow, ...]:
    """Cost parts summed per ``key`` (``workload`` or ``site``), largest total first."""
    parts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for a in plan.get("assignments") or []:
        p = parts[str(a[key])]
        p[0] += float(a.get("compute_usd", a.get("cost_usd", 0.0)))
        p[1] += float(a.get("egress_usd", 0.0))
        p[2] += float(a.get("capex_usd", 0.0))
        p[3] += float(a.get("penalty_usd", 0.0))
    rows = [CostRow(k, *v) for k, v in parts.items()]
    return tuple(sorted(rows, key=lambda r: (-r.total_usd, r.key)))


def _rule_ref(r: dict[str, Any]) -> RuleRef:
    return RuleRef(
        rule=str(r.get("rule", "")),
        title=str(r.get("title") or r.get("rule", "")),
        citation=str(r.get("citation", "")),
        confidence=str(r.get("confidence", "")),
        effect=str(r.get("effect", "")),
        requires=r.get("requires"),
    )


def _option_lines(d: dict[str, Any], chosen: str | None) -> tuple[OptionLine, ...]:
    lines: list[OptionLine] = []
    if chosen:
        lines.append(OptionLine(chosen, "chosen", "", (), chosen=True))
    for r in d.get("rejections") or ():
        if "options" in r:  # options that lost without a record of their own
            lines.append(
                OptionLine(
                    f"{r['options']} more",
                    str(r["reason"]),
                    str(r.get("detail", "")),
                    (),
                    count=int(r["options"]),
                )
            )
            continue
        rules = tuple(dict.fromkeys(r.get("rules") or ()))
        lines.append(
            OptionLine(
                f"{r['site']}/{r['chip']}", str(r["reason"]), str(r.get("detail", "")), rules
            )
        )
    return _grouped(lines)


def _grouped(lines: list[OptionLine]) -> tuple[OptionLine, ...]:
    """All lines when they are few; else a few examples per reason and a count of the rest."""
    if len(lines) <= OPTION_LINES:
        return tuple(lines)
    by_reason: dict[str, list[OptionLine]] = defaultdict(list)
    for line in lines:
        by_reason["chosen" if line.chosen else line.reason].append(line)
    out: list[OptionLine] = []
    for reason, group in sorted(
        by_reason.items(), key=lambda kv: (kv[0] != "chosen", -sum(x.count for x in kv[1]))
    ):
        out += group[:EXAMPLES_PER_REASON]
        rest = sum(x.count for x in group[EXAMPLES_PER_REASON:])
        if rest:
            out.append(
                OptionLine(
                    f"{rest} more", reason, f"{rest} more options lost to {reason}", (), count=rest
                )
            )
    return tuple(out)


def why_not_of(plan: dict[str, Any]) -> tuple[WhyNot, ...]:
    """Every stage's options, unplaced stages first; per-option lines where the plan has them
    (``plan --details``) and the stage count is readable."""
    placed = {
        (a["workload"], a["stage"]): f"{a['site']}/{a['chip']}"
        for a in plan.get("assignments") or []
    }
    unplaced = {(u["workload"], u["stage"]) for u in plan.get("unplaced") or []}
    explained = {
        (x["workload"], x["stage"]): str(x.get("text", "")) for x in plan.get("why_not") or []
    }
    diagnosis = plan.get("diagnosis") or []
    detailed = len(diagnosis) <= DETAIL_LIMIT
    out = []
    for d in diagnosis:
        key = (d["workload"], d["stage"])
        rules = tuple(_rule_ref(r) for r in d.get("rules") or ())
        lost = tuple((str(k), int(v)) for k, v in (d.get("lost") or {}).items())
        at = placed.get(key) or d.get("chosen")
        lines = _option_lines(d, at) if detailed or key in unplaced else ()
        out.append(
            WhyNot(
                workload=key[0],
                stage=key[1],
                placed_at=at if key not in unplaced else None,
                options=int(d.get("options", 0)),
                lawful_and_free=int(d.get("lawful_and_free", 0)),
                summary=str(d.get("summary", "")),
                lost=lost,
                rules=rules,
                lines=lines,
                blocked=bool(rules),
                explanation=explained.get(key, ""),
                itemized="rejections" in d or int(d.get("options", 0)) <= 1,
            )
        )
    out.sort(key=lambda w: (w.placed_at is not None, w.workload, w.stage))
    return tuple(out)


def rule_spans(rules: RuleSet, on: dt.date, regime: str) -> tuple[RuleSpan, ...]:
    """Every loaded rule that applies under ``regime`` (warnings and notes included), with its
    window; ``in_force`` marks those in force on ``on``."""
    current = {r.id for r in in_force(list(rules.rules), on, regime)}
    spans = [
        RuleSpan(
            rule=r.id,
            pack=r.pack,
            title=r.title,
            citation=r.citation,
            confidence=r.confidence,
            effect=r.effect,
            requires=r.requires,
            start=r.effective_from,
            end=r.effective_until,
            regimes=tuple(rule_regimes(r)),
            in_force=r.id in current,
        )
        for r in rules.rules
        if regime in rule_regimes(r)
    ]
    spans.sort(key=lambda s: (s.pack, s.start, s.rule))
    return tuple(spans)


def warnings_of(plan: dict[str, Any]) -> tuple[Warning, ...]:
    return tuple(
        Warning(
            rule=str(w.get("rule", "")),
            citation=str(w.get("citation", "")),
            confidence=str(w.get("confidence", "")),
            text=str(w.get("text") or w.get("title") or ""),
            stages=tuple(w.get("stages") or ()),
        )
        for w in plan.get("warnings") or []
    )


def build_view(
    plan: dict[str, Any],
    sc: Scenario,
    rules: RuleSet,
    *,
    source: str,
    recorded: Recorded | None = None,
) -> PlanView:
    """The report's view of ``plan`` (the ``straits plan --json`` document) over ``sc``."""
    plan = in_utc(plan)
    summary = summary_of(plan, sc)
    on = dt.date.fromisoformat(summary.date)
    start = dt.datetime.combine(sc.date, dt.time(), tzinfo=dt.UTC)
    interval: dict[str, Any] = {}
    if plan.get("total_cost_usd_high") is not None:
        interval["total_cost_usd_high"] = plan["total_cost_usd_high"]
    if plan.get("risk") in RISKS:  # p90: the figures are the high end already
        interval["risk"] = plan["risk"]
    return PlanView(
        source=source,
        summary=summary,
        assignments=tuple(plan.get("assignments") or ()),
        pools=pool_views(plan, sc, start),
        geo=map_view(plan, sc),
        cost_by_workload=costs_by(plan, "workload"),
        cost_by_site=costs_by(plan, "site"),
        why_not=why_not_of(plan),
        rules=rule_spans(rules, on, summary.regime),
        warnings=warnings_of(plan),
        recorded=recorded,
        interval=interval,
    )


@dataclass(frozen=True)
class Cited:
    """A rule that stopped some option, once for the whole plan."""

    ref: RuleRef
    stages: int


def cited_rules(view: PlanView) -> tuple[Cited, ...]:
    """Every rule cited in the plan's diagnosis, with the number of stages it touched."""
    refs: dict[str, RuleRef] = {}
    stages: Counter[str] = Counter()
    for w in view.why_not:
        for r in w.rules:
            refs.setdefault(r.rule, r)
            stages[r.rule] += 1
    return tuple(Cited(refs[k], n) for k, n in stages.most_common())


def reason_totals(view: PlanView) -> list[tuple[str, int]]:
    """Options lost per reason over the whole plan (the report's headline of what blocked)."""
    total: Counter[str] = Counter()
    for w in view.why_not:
        for reason, n in w.lost:
            total[reason] += n
    return total.most_common()
