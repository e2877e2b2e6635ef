"""What a rule, price or capacity change does to plans already made.

:func:`impact` takes a recorded plan (its scenario and JSON contract, as the ledger keeps them)
and re-evaluates every stage that has not finished by the check date:

* **rules**: the placement is asked again, as of the check date (or the plan's own date when
  it is later: a plan made for a later start is checked as it was planned) under the given
  regime; a decision that is no longer ``allow`` names the rule, and warnings that appear or
  lift are listed with theirs. Chips the plan buys are re-checked for ``procure`` until they
  arrive (the plan's date plus ``lead_days``), on the check date and on each later day the
  rules change before they arrive: an order not yet shipped needs the licence the day it
  ships, as the planner checked it;
* **cost**: a changed price, with the remaining chip-hours of the stage;
* **feasibility**: a pool that now has fewer chips than the plan uses at some instant;

and proposes a re-plan of the scenario as of that date with the changes, stage by stage, with
the rules that no longer block (or now block) each move.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

from straits.impact.overrides import Overrides, apply, price_of
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.options import pool_steps
from straits.plan.reasons import ReasonCode
from straits.plan.recheck import Placement, PlanContext
from straits.plan.timeline import Timeline
from straits.rules.decision import Reason
from straits.rules.engine import RuleSet

Kind = Literal["rules", "warning", "cost", "capacity", "replan"]
NOT_REACHED = "not reached"
"""a re-plan stage's ``now`` when the re-plan's time limit ran out before it"""


@dataclass(frozen=True)
class Change:
    workload: str
    stage: str
    kind: Kind
    summary: str
    rules: tuple[Reason, ...] = ()
    delta_usd: float | None = None
    severity: Literal["blocking", "info"] = "info"

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "stage": self.stage,
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "rules": [r.to_json() for r in self.rules],
            "delta_usd": None if self.delta_usd is None else round(self.delta_usd, 2),
        }


@dataclass
class PlanImpact:
    plan_id: str
    scenario: str
    plan_date: dt.date
    plan_regime: str
    checked_date: dt.date
    """the date the rules were asked as of"""
    regime: str
    changes: list[Change] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    """stages that ended before the check date (not re-checked)"""
    running: list[str] = field(default_factory=list)
    """stages that started before the check date and had not ended"""
    replan: dict[str, Any] | None = None
    asked_date: dt.date | None = None
    """the date asked for, when it was before the plan's own (then ``checked_date`` is the
    plan's date: a plan is checked as it was planned, never as of before it was made)"""
    plan_risk: str = "p50"
    """the risk the plan was made at (p90: its stages' costs, and a re-plan's, are the training
    estimates' high end)"""

    @property
    def affected(self) -> list[str]:
        return sorted({f"{c.workload}/{c.stage}" for c in self.changes})

    @property
    def blocking(self) -> bool:
        return any(c.severity == "blocking" for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "scenario": self.scenario,
            "plan_date": self.plan_date.isoformat(),
            "plan_regime": self.plan_regime,
            "plan_risk": self.plan_risk,
            "checked_date": self.checked_date.isoformat(),
            "asked_date": (self.asked_date or self.checked_date).isoformat(),
            "regime": self.regime,
            "affected_stages": self.affected,
            "blocking": self.blocking,
            "changes": [c.to_json() for c in self.changes],
            "finished": self.finished,
            "running": self.running,
            "replan": self.replan,
        }


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def _rule_changes(ctx: PlanContext, p: Placement) -> list[Change]:
    w = ctx.sc.workload(p.workload)
    stage = w.stage(p.stage)
    option = ctx.option(w, stage, p.site, p.chip, p.bought)
    if option is None:
        return [
            Change(
                p.workload,
                p.stage,
                "rules",
                f"{p.label} is no longer an option of the scenario",
                severity="blocking",
            )
        ]
    compute = ctx.verdict(w, stage, dataclasses.replace(option, buyer=None))
    # chips bought and delivered need no new order; an order that may still ship does, on
    # this day and on each day the rules change until the chips arrive (as the planner asks)
    pending = p.bought and ctx.date <= ctx.cands.arrival_day(option.pool)
    verdict = ctx.verdict(w, stage, option) if pending else compute
    out = []
    if not verdict.lawful and verdict.blocking is not None:
        b = verdict.blocking
        what = "buying the chips of" if pending and compute.lawful else "running on"
        out.append(
            Change(
                p.workload,
                p.stage,
                "rules",
                f"{what} {p.label} is no longer lawful ({b.outcome}): {b.text}",
                rules=tuple(_blocking(verdict)),
                severity="blocking",
            )
        )
        return out
    now = {r.rule: r for d in verdict.decisions for r in d.warnings}
    was = set(p.warnings)
    for rule in sorted(set(now) - was):
        out.append(
            Change(
                p.workload,
                p.stage,
                "warning",
                f"new warning on {p.label}: {now[rule].text}",
                rules=(now[rule],),
            )
        )
    for rule in sorted(was - set(now)):
        out.append(
            Change(p.workload, p.stage, "warning", f"warning {rule} no longer applies to {p.label}")
        )
    return out


def _blocking(verdict: Any) -> list[Reason]:
    seen: dict[str, Reason] = {}
    for d in verdict.decisions:
        for r in d.blocking:
            seen.setdefault(r.rule, r)
    return list(seen.values())


def _remaining(p: Placement, since: dt.datetime) -> float:
    total = (p.end - p.start).total_seconds()
    if total <= 0:
        return 0.0
    left = (p.end - max(p.start, since)).total_seconds()
    return max(0.0, min(1.0, left / total))


def _cost_changes(old: Scenario, new: Scenario, p: Placement, since: dt.datetime) -> list[Change]:
    a, b = price_of(old, p.site, p.chip), price_of(new, p.site, p.chip)
    if a is None or b is None or abs(a - b) < 1e-9 or p.bought:
        return []
    delta = p.chip_hours * _remaining(p, since) * (b - a)
    src = next((x.source for x in new.site(p.site).pools if x.chip == p.chip), None)
    return [
        Change(
            p.workload,
            p.stage,
            "cost",
            f"{p.label} price ${a:,.2f} -> ${b:,.2f} per chip-hour"
            + (f" ({src})" if src else "")
            + f": {'+' if delta >= 0 else '-'}${abs(delta):,.0f} on the remaining "
            "chip-hours",
            delta_usd=delta,
        )
    ]


def capacity_changes(
    new: Scenario, placements: list[Placement], since: dt.datetime
) -> list[Change]:
    """Stages running at an instant (from ``since``) when their pool has fewer chips than the
    plan uses. The pool's capacity is the planner's own step profile (availability windows
    with the changes applied); usage can only exceed it where a booking starts or the
    capacity steps down, so those are the instants checked."""
    by_pool: dict[tuple[str, str], list[Placement]] = defaultdict(list)
    for p in placements:
        if not p.bought and p.end > since:
            by_pool[(p.site, p.chip)].append(p)
    out = []
    for (site, chip), ps in by_pool.items():
        pool = next(x for x in new.site(site).pools if x.chip == chip)
        line = Timeline(pool.count, pool_steps(new, pool))
        origin = new.start
        steps = {origin + dt.timedelta(hours=h) for h, _ in line.steps}
        instants = sorted({max(t, since) for t in (*(p.start for p in ps), *steps)})
        flagged: set[tuple[str, str]] = set()
        # one sweep over the instants (a scan of every stage at every instant took minutes
        # for a plan of thousands of stages on one pool)
        by_start = sorted(range(len(ps)), key=lambda i: ps[i].start)
        ending: list[tuple[dt.datetime, int]] = []
        running: set[int] = set()
        used, nxt = 0, 0
        for t in instants:
            while nxt < len(by_start) and ps[by_start[nxt]].start <= t:
                i = by_start[nxt]
                heapq.heappush(ending, (ps[i].end, i))
                running.add(i)
                used += ps[i].chips
                nxt += 1
            while ending and ending[0][0] <= t:
                _, i = heapq.heappop(ending)
                running.discard(i)
                used -= ps[i].chips
            cap = line.capacity_at((t - origin).total_seconds() / 3600)
            if used > cap:
                for p in (ps[i] for i in sorted(running)):
                    if p.key not in flagged:
                        flagged.add(p.key)
                        out.append(
                            Change(
                                p.workload,
                                p.stage,
                                "capacity",
                                f"{site}/{chip} has {cap:,} chips from "
                                f"{t.date()}; the plan uses {used:,} then",
                                severity="blocking",
                            )
                        )
    return out


def _diagnosis_rules(plan: dict[str, Any]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    return {
        (d["workload"], d["stage"]): {r["rule"]: r for r in d.get("rules", ())}
        for d in plan.get("diagnosis", ())
    }


def _replan(
    sc: Scenario, recorded: dict[str, Any], rules: RuleSet, *, time_limit: float, seed: int
) -> dict[str, Any]:
    """The scenario planned again with the changes; per stage what moves and why."""
    new = make_plan(sc, rules=rules, time_limit=time_limit, seed=seed).to_json()
    old_a = {(a["workload"], a["stage"]): a for a in recorded.get("assignments", ())}
    new_a = {(a["workload"], a["stage"]): a for a in new["assignments"]}
    old_r, new_r = _diagnosis_rules(recorded), _diagnosis_rules(new)
    # stages the re-plan never examined before its time limit: nothing is known of them, so
    # they neither move nor lose rules (a 0.5 s re-plan of 1,000 stages reported every one
    # "moved to unplaced", with every rule of its diagnosis "no longer blocking")
    cut = {
        (u["workload"], u["stage"])
        for u in new["unplaced"]
        if set(u.get("lost_codes") or {}) == {ReasonCode.TIME_LIMIT.value}
    }
    stages = []
    for key in sorted(set(old_a) | set(new_a) | set(old_r)):
        a, b = old_a.get(key), new_a.get(key)
        was = f"{a['site']}/{a['chip']}" if a else "unplaced"
        now = f"{b['site']}/{b['chip']}" if b else NOT_REACHED if key in cut else "unplaced"
        lifted = [] if key in cut else sorted(set(old_r.get(key, {})) - set(new_r.get(key, {})))
        added = sorted(set(new_r.get(key, {})) - set(old_r.get(key, {})))
        stages.append(
            {
                "workload": key[0],
                "stage": key[1],
                "was": was,
                "now": now,
                "moved": was != now and now != NOT_REACHED,
                "cost_was": a["cost_usd"] if a else None,
                "cost_now": b["cost_usd"] if b else None,
                "rules_lifted": [old_r[key][r] for r in lifted],
                "rules_added": [new_r[key][r] for r in added],
            }
        )
    return {
        "date": new["date"],
        "regime": new["regime"],
        "status": new["status"],
        "total_cost_usd": new["total_cost_usd"],
        "recorded_total_cost_usd": recorded.get("total_cost_usd"),
        "unplaced": [f"{u['workload']}/{u['stage']}" for u in new["unplaced"]],
        "not_reached": [f"{w}/{st}" for w, st in sorted(cut)],
        "stages": stages,
        "plan": new,
    }


def impact(
    plan_id: str,
    recorded_sc: Scenario,
    plan: dict[str, Any],
    rules: RuleSet,
    *,
    date: dt.date,
    regime: str | None = None,
    overrides: Overrides | None = None,
    replan: bool = True,
    time_limit: float = 10.0,
    seed: int = 0,
) -> PlanImpact:
    """Re-evaluate ``plan`` (made from ``recorded_sc``) as of ``date``."""
    plan_date = dt.date.fromisoformat(str(plan["date"]))
    plan_regime = str(plan["regime"])
    as_of = max(date, plan_date)
    use_regime = regime or plan_regime
    new_sc = apply(recorded_sc, overrides or Overrides(), date=as_of, regime=use_regime)
    # rules about the recorded placements: the scenario as recorded, figures changed
    ctx = PlanContext(new_sc, plan, rules, date=as_of, regime=use_regime)
    since = _utc(date)
    out = PlanImpact(plan_id, recorded_sc.name, plan_date, plan_regime, as_of, use_regime)
    out.asked_date, out.plan_risk = date, recorded_sc.risk
    live = []
    for p in sorted(ctx.placements.values(), key=lambda p: p.start):
        if p.end <= since:
            out.finished.append(f"{p.workload}/{p.stage}")
            continue
        live.append(p)
        if p.start < since:
            out.running.append(f"{p.workload}/{p.stage}")
        out.changes += _rule_changes(ctx, p)
        out.changes += _cost_changes(recorded_sc, new_sc, p, since)
    out.changes += capacity_changes(new_sc, live, since)
    if replan:
        out.replan = _replan(new_sc, plan, rules, time_limit=time_limit, seed=seed)
        for s in out.replan["stages"]:
            tag = f"{s['workload']}/{s['stage']}"
            s["state"] = (
                "finished"
                if tag in out.finished
                else "running"
                if tag in out.running
                else "not started"
            )
            if not s["moved"] and not s["rules_lifted"]:
                continue
            lifted = tuple(_reason_stub(r) for r in s["rules_lifted"])
            delta = (
                (s["cost_now"] - s["cost_was"])
                if s["cost_now"] is not None and s["cost_was"] is not None
                else None
            )
            text = (
                f"re-plan moves it from {s['was']} to {s['now']}"
                if s["moved"]
                else f"re-plan keeps {s['was']}"
            )
            if s["moved"] and s["state"] != "not started":
                text += f" (it is {s['state']}: moving it means running it again)"
            if lifted:
                text += "; no longer blocking any of its options: " + ", ".join(
                    r.rule for r in lifted
                )
            added = tuple(_reason_stub(r) for r in s["rules_added"]) if s["moved"] else ()
            if added:
                text += "; now blocking some of its options: " + ", ".join(r.rule for r in added)
            out.changes.append(
                Change(s["workload"], s["stage"], "replan", text, lifted + added, delta)
            )
    return out


def rules_as_of(
    sc: Scenario, plan: dict[str, Any], rules: RuleSet, *, date: dt.date, regime: str
) -> list[Change]:
    """Every placement of ``plan`` asked of the rules in force on ``date`` under ``regime``,
    whatever the plan's own date (the console's what-if: "had this plan been made then"):
    the placements that would be blocked, and the warnings that would appear or lift."""
    ctx = PlanContext(sc, plan, rules, date=date, regime=regime)
    out: list[Change] = []
    for p in sorted(ctx.placements.values(), key=lambda p: (p.start, p.workload, p.stage)):
        out += _rule_changes(ctx, p)
    return out


def _reason_stub(r: dict[str, Any]) -> Reason:
    return Reason(
        rule=r["rule"],
        title=r.get("title", r["rule"]),
        citation=r.get("citation", ""),
        effect=r.get("effect", ""),
        confidence=r.get("confidence", ""),
        template=r.get("text", ""),
    )


__all__ = ["Change", "PlanImpact", "impact", "rules_as_of"]
