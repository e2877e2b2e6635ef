"""Rule changes a plan runs into: the planner asks the rules in force on the scenario's date,
but a stage may run past a day on which the rules change (the AI Diffusion rule's compliance
date, a licence requirement). Each placement still running on such a day is asked again, as of
that day; one the rules would then block is named in the plan's notes, with the day and the
rules, so that the plan does not say "lawful" of a stage that will not be (h49: a serving stage
placed in Malaysia from 2025-11-27 under the AI Diffusion rule, planned on 2025-05-01, came back
``allow`` although the rule blocked it from 2025-05-15).

Only running the chips is asked again: a purchase is already asked on every day the rules
change until its chips arrive (:meth:`straits.plan.candidates.Candidates.procure_dates`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from straits.model.scenario import Scenario
    from straits.plan.candidates import Candidates
    from straits.plan.deadline import Deadline
    from straits.plan.options import Option
    from straits.plan.result import Plan
    from straits.rules.engine import RuleSet


def rules_ahead(
    plan: Plan,
    sc: Scenario,
    rules: RuleSet,
    regime: str,
    deadline: Deadline,
    cands: Candidates | None = None,
) -> list[str]:
    """Notes for the placements of ``plan`` that the rules block on a later day they run on,
    or one note saying which days the time limit left unchecked. ``cands``: the planner's
    options (their estimates are reused; only the rules are asked again)."""
    from straits.plan.recheck import PlanContext
    from straits.rules.listing import events

    if not plan.assignments:
        return []
    last = max(a.end_h for a in plan.assignments)
    end = (plan.start + dt.timedelta(hours=last)).date()
    # a rule that can block is a `requires` one: only its coming into force blocks anew (notes
    # and warnings never block, and a rule that lapses only lifts a requirement)
    days = sorted(
        {
            e.date
            for e in events(rules.rules, regime, sc.date + dt.timedelta(1), end)
            if any(rules.rule(r).effect == "requires" for r in e.added)
        }
    )
    if not days:
        return []
    doc = {
        "date": sc.date.isoformat(),
        "assignments": [a.to_json(plan.start) for a in plan.assignments],
    }
    out: list[str] = []
    noted: set[tuple[str, str]] = set()  # each placement once, on the first day it is blocked
    options: dict[tuple[str, str], Option | None] = {}  # the same on every day: found once
    for i, day in enumerate(days):
        if deadline.expired:
            left = ", ".join(d.isoformat() for d in days[i:])
            out.append(
                f"the rules change on {left}, while stages of this plan run: the time limit "
                "left them unchecked (`straits impact --date DAY` asks them)"
            )
            break
        ctx = PlanContext(sc, doc, rules, date=day, regime=regime, cands=cands)
        since = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
        for p in ctx.placements.values():
            if p.end <= since or p.key in noted:
                continue
            w = sc.workload(p.workload)
            stage = w.stage(p.stage)
            if p.key not in options:
                table = ctx.cands.table(w, stage)
                try:
                    found: Option | None = table.option(table.row_of(p.label))
                except KeyError:  # no such option: the plan is not of this scenario
                    found = None
                options[p.key] = None if found is None else replace(found, buyer=None)
            option = options[p.key]
            if option is None:
                continue
            verdict = ctx.verdict(w, stage, option)
            if verdict.blocking is None:
                continue
            noted.add(p.key)
            rule_ids = ", ".join(sorted(set(verdict.rules))) or verdict.blocking.outcome
            out.append(
                f"{p.workload}/{p.stage} on {p.label} runs on {day.isoformat()}, when the "
                f"rules in force block it ({rule_ids}): {verdict.blocking.text} "
                f"(`straits impact --date {day.isoformat()}` re-plans from that day)"
            )
    return out
