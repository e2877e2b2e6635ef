"""Rule changes a plan runs into: the planner asks the rules in force on the scenario's date,
but a stage may run past a day on which the rules change (the AI Diffusion rule's compliance
date, a licence requirement). Each placement still running on such a day is asked again, as of
that day, or, when it starts later, as of its start (a requirement may lapse before then); one
the rules would then block is named in the plan's notes, with the day and the
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

#: seconds the solvers keep back for it, at least and per stage: 2.6 s for 2,191 placements
#: and three days on the 1,000 x 200 benchmark, on a loaded machine
AHEAD_S = (0.1, 0.0012)
#: the effects that can block a placement
BLOCKING = ("requires", "deny")

if TYPE_CHECKING:
    from straits.model.scenario import Scenario
    from straits.plan.candidates import Candidates
    from straits.plan.deadline import Deadline
    from straits.plan.options import Option
    from straits.plan.recheck import Placement
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
    # a rule that can block is a `requires` or a `deny` one (a user's pack may deny: date51):
    # only its coming into force blocks anew (notes and warnings never block, and a rule that
    # lapses only lifts a requirement)
    changes = events(rules.rules, regime, sc.date + dt.timedelta(1), end)
    days = sorted(
        {e.date for e in changes if any(rules.rule(r).effect in BLOCKING for r in e.added)}
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
    contexts: dict[dt.date, PlanContext] = {}

    def context(day: dt.date) -> PlanContext:
        if day not in contexts:
            contexts[day] = PlanContext(sc, doc, rules, date=day, regime=regime, cands=cands)
        return contexts[day]

    def first_day(p: Placement, day: dt.date) -> dt.date:
        """The day ``p`` is asked as of: ``day``, or for a placement that starts later the
        rules in force when it starts (the last change on or before then): a requirement that
        lapsed before the stage starts does not block it (a stage from June 2024 was named
        blocked by the 2023 standard-contract rule, which lapsed in March 2024)."""
        if p.start < dt.datetime.combine(day + dt.timedelta(1), dt.time(0), tzinfo=dt.UTC):
            return day  # it runs on the day
        return max(e.date for e in changes if e.date <= p.start.date())

    for i, day in enumerate(days):
        if deadline.expired:
            left = ", ".join(d.isoformat() for d in days[i:])
            out.append(
                f"the rules change on {left}, while stages of this plan run: the time limit "
                "left them unchecked (`straits impact --date DAY` asks them)"
            )
            break
        since = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
        for p in context(day).placements.values():
            if p.end <= since or p.key in noted:
                continue
            asked = first_day(p, day)
            ctx = context(asked)
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
            # a stage that starts after the day is named with its own start: it does not run
            # on the day (a service from June 2026 "ran on 2025-05-15")
            when = (
                f"runs on {day.isoformat()}"
                if asked == day and p.start < since + dt.timedelta(1)
                else f"starts on {p.start.date().isoformat()}"
            )
            out.append(
                f"{p.workload}/{p.stage} on {p.label} {when}, when the "
                f"rules in force block it ({rule_ids}): {verdict.blocking.text} "
                f"(`straits impact --date {day.isoformat()}` re-plans from {day.isoformat()}, "
                "when the rules change)"
            )
    return out
