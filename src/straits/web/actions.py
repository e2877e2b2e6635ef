"""The console's heavier questions: a plan's scenario under both regimes, and a plan re-checked
on another date. Each runs in a worker thread, never on the event loop, with a rule set lent to
its request (``server.plan_routes.borrowed_rules``: the packs the server read at start, as the
API decides; the rule engine's caches are per set). Each thread read the pack files again, so a
pack edited on disk while the server ran made the console contradict the API, and one thread
another (atk70). Both ask at the risk the plan was made on (:func:`at_plan_risk`), and say it."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from typing import Any

from straits.errors import BusyError
from straits.estimate.interval import RISKS
from straits.model.scenario import Scenario
from straits.report.view import rule_spans
from straits.rules import RuleSet
from straits.web.submit import RISK_CHOICES

REGIMES = ("enacted", "ai-diffusion")
#: the what-if slider's span (the rule packs' changes of interest lie inside it)
SLIDER_FIRST = dt.date(2022, 6, 1)
SLIDER_LAST = dt.date(2027, 12, 31)
#: seconds each regime's plan may search in a comparison
COMPARE_SECONDS = 10.0
#: comparisons one server process runs at once: each plans a scenario twice in the server's
#: thread pool, outside the plan queue, for any signed-in role; more would take every thread
#: (40 reloads of the page held them all)
COMPARE_SLOTS = 2
compare_slots = threading.BoundedSemaphore(COMPARE_SLOTS)


@dataclass(frozen=True)
class CompareRow:
    stage: str
    placements: dict[str, str]
    moved: bool
    rules: list[dict[str, Any]]


def plan_risk(sc: Scenario, plan: dict[str, Any]) -> str:
    """The risk ``plan`` was made on: its own ``risk``, which the plan page shows, or, for a
    plan of a version that did not record it (or a value no version wrote), its scenario's."""
    risk = plan.get("risk")
    return risk if isinstance(risk, str) and risk in RISKS else sc.risk


def at_plan_risk(sc: Scenario, plan: dict[str, Any]) -> Scenario:
    """``sc`` at the risk ``plan`` was made on (:func:`plan_risk`): what the compare and
    what-if pages plan and check at, where the stored scenario says another."""
    risk = plan_risk(sc, plan)
    return sc if risk == sc.risk else sc.model_copy(update={"risk": risk})


def _risk(sc: Scenario) -> dict[str, Any]:
    """What a page says of the risk it asked at (``risks``: each risk's words)."""
    return {"risk": sc.risk, "risks": RISK_CHOICES}


def compare(sc: Scenario, rules: RuleSet, seconds: float = COMPARE_SECONDS) -> dict[str, Any]:
    """``sc`` planned under each regime, stage by stage, with the rules that moved a stage
    (:class:`~straits.errors.BusyError` when every comparison slot is taken), each plan at
    ``sc``'s risk (a plan's page passes :func:`at_plan_risk`), which its totals name."""
    from straits.demo import differences
    from straits.plan import make_plan

    slots = compare_slots  # the one acquired is the one released
    if not slots.acquire(blocking=False):
        raise BusyError(
            f"{COMPARE_SLOTS} comparisons are running; try again shortly",
            retry_after=int(seconds * len(REGIMES)),
        )
    try:
        plans = {r: make_plan(sc, regime=r, rules=rules, time_limit=seconds) for r in REGIMES}
    finally:
        slots.release()
    diffs = {(d.workload, d.stage): d for d in differences(plans)}
    rows = []
    for w in sc.workloads:
        for st in w.stages:
            places = {}
            for r, p in plans.items():
                a = p.assignment(w.id, st.id)
                places[r] = a.option_label if a is not None else "unplaced"
            d = diffs.get((w.id, st.id))
            rows.append(
                CompareRow(
                    stage=f"{w.id}/{st.id}",
                    placements=places,
                    moved=len(set(places.values())) > 1,
                    rules=[] if d is None else d.to_json()["rules"],
                )
            )
    totals = {
        r: {
            "cost": p.total_cost_usd,
            "placed": len(p.assignments),
            "unplaced": len(p.unplaced),
            "risk": p.risk,
        }
        for r, p in plans.items()
    }
    return {"rows": rows, "totals": totals, "regimes": list(REGIMES), **_risk(sc)}


def slider_days() -> list[dt.date]:
    n = (SLIDER_LAST - SLIDER_FIRST).days
    return [SLIDER_FIRST + dt.timedelta(days=i) for i in range(n + 1)]


def events(rules: RuleSet, regime: str) -> list[dict[str, str]]:
    """Dates on which a rule starts or stops under ``regime``, inside the slider's span."""
    seen: dict[dt.date, list[str]] = {}
    for s in rule_spans(rules, SLIDER_FIRST, regime):
        if s.effect not in ("deny", "requires"):
            continue
        for day, verb in ((s.start, "from"), (s.end and s.end + dt.timedelta(days=1), "until")):
            if day is not None and SLIDER_FIRST <= day <= SLIDER_LAST:
                seen.setdefault(day, []).append(s.rule if verb == "from" else f"end of {s.rule}")
    return [{"date": d.isoformat(), "label": ", ".join(names)} for d, names in sorted(seen.items())]


def whatif(
    sc: Scenario, plan: dict[str, Any], rules: RuleSet, day: dt.date, regime: str
) -> dict[str, Any]:
    """The recorded plan's placements asked of the rules in force on ``day`` under ``regime``
    (no re-plan: ``straits impact`` proposes one), its options built at the plan's risk."""
    from straits.impact.drift import rules_as_of

    sc = at_plan_risk(sc, plan)
    changes = [c.to_json() for c in rules_as_of(sc, plan, rules, date=day, regime=regime)]
    return {
        "changes": changes,
        "affected": sorted({f"{c['workload']}/{c['stage']}" for c in changes}),
        "blocking": any(c["severity"] == "blocking" for c in changes),
        "checked": day.isoformat(),
        **_risk(sc),
        "events": events(rules, regime),
        "days_json": json.dumps([d.isoformat() for d in slider_days()]),
    }
