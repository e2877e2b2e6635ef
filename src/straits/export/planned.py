"""What an export refuses to write: a placement the planner could not have made.

A plan document is user input (an edited one, its ``id`` and ``digest`` deleted, is a new
plan), and so is a recorded plan exported under other rules. The export limits each stage's
failover to the lawful options, but the planned option comes first and is what the scheduler
runs: a stage moved by hand to a site whose rules forbid it (personal information that may not
leave its country), to a pool too small for the model, or beyond a pool's chips was written
out as planned, without a word. Each placement is asked again, as of the plan's date and under
its regime (what ``straits plan --recheck --date <plan date>`` asks), before anything is
written; one that fails is an :class:`~straits.errors.InputError` naming the assignment.
"""

from __future__ import annotations

import datetime as dt

from straits.catalog.tpu_slices import TPU_SLICES
from straits.errors import InputError
from straits.estimate import Estimate, estimate_training
from straits.plan.options import Option, arrival_hours, stage_tokens
from straits.plan.recheck import Placement, PlanContext
from straits.plan.ticks import TICKS_PER_HOUR


def refuse_unplannable(ctx: PlanContext) -> None:
    """Raise :class:`InputError` for the first placement of ``ctx``'s plan that runs after a
    stage the plan does not place or before its predecessor ends, that is no option of its
    stage, that the rules forbid, that runs on fewer chips than the stage needs, or that uses
    more chips of a pool than it has at some instant."""
    from straits.impact.drift import capacity_changes

    index = {(a["workload"], a["stage"]): i for i, a in enumerate(ctx.plan.get("assignments", ()))}
    for p in sorted(ctx.placements.values(), key=lambda p: index[p.key]):
        problem = _problem(ctx, p)
        if problem is not None:
            field, text = problem
            raise _refusal(index[p.key], field, f"{p.workload}/{p.stage} on {p.label}: {text}")
    placements = list(ctx.placements.values())
    if not placements:
        return
    since = min(p.start for p in placements) - dt.timedelta(seconds=1)
    for change in capacity_changes(ctx.sc, placements, since):
        key = (change.workload, change.stage)
        raise _refusal(index[key], "chips", f"{key[0]}/{key[1]}: {change.summary}")


#: how much earlier than its predecessor's end a stage may start: times are written to the
#: second, truncated, so two computed a hair apart may read a second apart
_SLACK = dt.timedelta(seconds=1)
#: how much shorter than its estimate a stage may be written (times to the second, hours
#: rounded): less is a stage the planner could not have made that short
_SHORT = 0.01
#: the assignment field an option's problem is about (others: its chip)
_PROBLEM_FIELDS = {"location": "site", "capacity": "chips"}


def _problem(ctx: PlanContext, p: Placement) -> tuple[str, str] | None:
    """(field, why) when ``p`` is no placement the planner could make, else None."""
    w = ctx.sc.workload(p.workload)
    stage = w.stage(p.stage)
    for a in stage.after:  # the order every target keeps is the plan's order in time
        pred = ctx.placements.get((w.id, a))
        if pred is None:
            return "stage", f"placed, but {a}, which it runs after, is not"
        if p.start < pred.start or p.start < pred.end - _SLACK:
            return "start", f"starts at {p.raw['start']}, before {a} (its predecessor) ends"
    begins = _plan_start(ctx)
    if p.start < begins - _SLACK:  # a plan starts at 00:00 UTC of its date
        return "start", f"starts at {p.raw['start']}, before the plan's date ({begins.date()})"
    option = ctx.option(w, stage, p.site, p.chip, p.bought)
    if option is None:
        return "site", "not an option of the stage in the plan's scenario"
    if p.bought:  # chips bought for the plan arrive after the pool's lead time
        arrives = begins + dt.timedelta(hours=arrival_hours(option.pool))
        if p.start < arrives - _SLACK:
            return "start", (
                f"starts at {p.raw['start']} on bought chips, which arrive on "
                f"{arrives.isoformat()} (the pool's lead time)"
            )
    # a stage that fixes its chips is placed on that many (a service of 16 chips edited to 8
    # served half the users it was sized for, exit 0)
    if stage.chips is not None and p.chips != stage.chips:
        return "chips", f"{p.chips:,} chips, where the stage fixes {stage.chips:,}"
    # a Cloud TPU is rented by the slice: a training stage's count is one slice (a serving
    # stage's replicas are a slice each, which the export sizes and notes)
    slices = TPU_SLICES.get(p.chip)
    if stage.kind != "serve" and slices is not None and not slices.chips_ok(p.chips):
        return "chips", f"{p.chips:,} {p.chip} chips are no slice (slices of {slices.sizes()})"
    est = _estimate(ctx, p, option)
    hours = (p.end - p.start).total_seconds() / 3600
    if est is not None and hours < est.hours * (1 - _SHORT) - 1 / TICKS_PER_HOUR:
        return "end", (
            f"runs {hours:,.1f} h on {p.chips:,} chips, where the stage takes "
            f"{est.hours:,.1f} h there (the estimate)"
        )
    # a service runs for its days, no longer: one edited to 38 days of a 10-day stage was
    # held by Slurm and SkyPilot for 38, at a cost the plan does not count
    if (
        stage.kind == "serve"
        and est is not None
        and hours > est.hours * (1 + _SHORT) + 1 / TICKS_PER_HOUR
    ):
        return "end", (
            f"serves {hours:,.1f} h, where the stage serves {est.hours:,.1f} h (its days)"
        )
    if option.problem is not None:  # a location the stage may not use, a chip too small
        detail = f" ({option.detail})" if option.detail else ""
        field = _PROBLEM_FIELDS.get(str(option.problem), "chip")
        return field, f"the stage cannot run there: {option.problem}{detail}"
    if p.chips < option.min_chips:
        return "chips", f"{p.chips:,} chips, the stage needs at least {option.min_chips:,}"
    verdict = ctx.verdict(w, stage, option)
    if not verdict.lawful and verdict.blocking is not None:
        b = verdict.blocking
        when = f"as of {ctx.date} under {ctx.regime}"
        return "site", f"not lawful {when} ({b.rule}, {b.outcome}): {b.text}"
    return None


def _estimate(ctx: PlanContext, p: Placement, option: Option) -> Estimate | None:
    """The stage's estimate at the placement's chip count: the option's where its menu has
    that count (a serving stage has one, its days whatever the chips); else estimated at that
    count (atk72: a pre-train edited to 2,000 chips, off the menu, and to last an hour was
    written as an 83-minute job). None where no layout of the stage fits that count (the
    minimum-chips check names it, or the count is the planner's to choose)."""
    est = next((e for e in option.sizes if e.chips == p.chips), None)
    if est is not None or p.chips <= 0:
        return est
    w = ctx.sc.workload(p.workload)
    stage = w.stage(p.stage)
    if stage.kind == "serve":
        return option.sizes[0] if option.sizes else None
    got = estimate_training(
        w.model, stage_tokens(ctx.sc, stage), option.chip, p.chips, risk=ctx.sc.risk, mfu=stage.mfu
    )
    return got if got.fits else None


def _plan_start(ctx: PlanContext) -> dt.datetime:
    """00:00 UTC of the plan's date (the scenario's, where the document does not say)."""
    day = ctx.plan.get("date")
    try:
        date = dt.date.fromisoformat(day) if isinstance(day, str) else ctx.sc.date
    except ValueError:
        date = ctx.sc.date
    return dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)


def _refusal(i: int, field: str, text: str) -> InputError:
    return InputError(
        f"{text}; nothing was written",
        path=f"assignments[{i}].{field}",
        expected="a plan whose placements the planner could make (`straits plan` makes one; "
        "`straits plan PLAN --recheck --date <plan date>` says what changed)",
    )
