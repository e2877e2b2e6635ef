"""Planning: place every stage on a lawful (site, pool), over capacity and time, and say why
every other option lost.

:func:`make_plan` is the entry point. This package loads its parts when first used, so the
CLI can read the solver and objective lists (:mod:`straits.plan.registry`) without importing
OR-Tools.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from straits.plan.deadline import Deadline
from straits.plan.registry import DEFAULT_SOLVER, objective, solver_named

if TYPE_CHECKING:
    from straits.model.scenario import Scenario
    from straits.plan.result import Assignment, Plan, Rejection, StageDiagnosis
    from straits.plan.search import Progress
    from straits.rules.engine import RuleSet

Solver = str
"""A solver's name: one of :data:`straits.plan.registry.SOLVER_NAMES`."""
DEFAULT_TIME_LIMIT = 20.0


def make_plan(
    scenario: Scenario,
    *,
    regime: str | None = None,
    objective: str | None = None,
    rules: RuleSet | None = None,
    solver: str = DEFAULT_SOLVER,
    time_limit: float | None = DEFAULT_TIME_LIMIT,
    seed: int = 0,
    on_progress: Progress | None = None,
    deadline: Deadline | None = None,
) -> Plan:
    """Plan ``scenario`` under ``regime`` (default: the scenario's) for ``objective`` (a name
    or a weighted sum, default: the scenario's) with ``solver``, within ``time_limit`` seconds
    of wall-clock time from now, or within ``deadline`` (a budget the caller started earlier,
    e.g. before loading the scenario). The plan's ``timings`` say where the time went.

    Raises :class:`~straits.errors.RequestError` naming the argument for one of the wrong kind
    (a dict that is no scenario, a misspelt regime, rules that are no ``RuleSet``, a time limit
    that is no positive number of seconds, a seed that is no 32-bit integer, an objective or a
    solver that is not text)."""
    scenario, regime, rules, time_limit, seed = _arguments(
        scenario, regime, rules, time_limit, seed, deadline
    )
    _text_arg(objective, "objective", none=True)
    _text_arg(solver, "solver", none=False)
    d = deadline or Deadline(time_limit)
    with d.phase("start"):
        from straits.plan.candidates import Candidates
        from straits.plan.collector import fewer_collections
        from straits.plan.solvers import SolveContext
        from straits.rules.engine import ruleset

    goal = _objective(scenario, objective)
    with fewer_collections():
        with d.phase("rules"):
            rs = rules or ruleset()
        with d.phase("candidates"):
            cand = Candidates(
                scenario, rs, regime=regime or scenario.regime, date=scenario.date, deadline=d
            )
            stages = sum(len(w.stages) for w in scenario.workloads)
            chosen = solver_named(solver, stages=stages)
        plan = chosen.solve(cand, goal, SolveContext(d, seed, on_progress, solver))
    _within_calendar(plan, scenario)
    with d.phase("ahead"):
        from straits.plan.ahead import rules_ahead

        ahead = rules_ahead(plan, scenario, rs, regime or scenario.regime, d, cand)
    notes = (
        *plan.notes,
        *ahead,
        *_below_target(plan, scenario),
        *_ignored(scenario),
        *_assumed(scenario),
    )
    return replace(plan, timings=d.to_json(), risk=scenario.risk, notes=notes)


def _text_arg(value: Any, path: str, *, none: bool) -> None:
    """A name (an objective or a solver) that is text, else a RequestError naming ``path``:
    an ``int`` or ``bytes`` was an ``AttributeError`` or ``TypeError`` from the parsers."""
    if not (isinstance(value, str) or (none and value is None)):
        from straits.errors import RequestError

        raise RequestError(
            f"got {type(value).__name__}, not text",
            path=path,
            expected="a name as text" + (", or None" if none else ""),
        )


def _arguments(
    scenario: Any, regime: Any, rules: Any, time_limit: Any, seed: Any, deadline: Any
) -> tuple[Scenario, Any, Any, float | None, int]:
    """make_plan's arguments checked as ``straits.api`` checks its own (``api_args.py``): a
    library caller's mistake is a RequestError naming it, not a pydantic ValidationError, a
    ValueError or an AttributeError from deep inside the planner. Any real number (a numpy
    ``int64`` or ``float32``, a ``Fraction``) is a time limit and any integral one a seed, as
    they were before the check: they are returned as ``float`` and ``int``."""
    import math
    import numbers

    from straits import api_args as args
    from straits.errors import RequestError
    from straits.model.scenario import Scenario

    scenario = args.model_arg(scenario, Scenario, "scenario", again=False)
    regime = args.regime_arg(regime) if regime is not None else None
    rules = args.rules_arg(rules) if rules is not None else None
    if deadline is None and time_limit is not None:
        number = isinstance(time_limit, numbers.Real) and not isinstance(time_limit, bool)
        if not (number and math.isfinite(time_limit) and time_limit > 0):
            raise RequestError(
                f"time limit {str(time_limit)[:40]!r}",
                path="time_limit",
                expected="a positive number of seconds, or None",
            )
        time_limit = float(time_limit)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise RequestError(f"got {type(seed).__name__}, not an integer", path="seed")
    seed = int(seed)
    if not -(2**31) <= seed < 2**31:  # CP-SAT's random_seed: a TypeError from inside it
        raise RequestError(
            f"seed {str(seed)[:40]}", path="seed", expected="a 32-bit integer (CP-SAT's seed)"
        )
    return scenario, regime, rules, time_limit, seed


def _ignored(sc: Scenario) -> list[str]:
    """Serving's fields on a training stage: said, since nothing reads them there."""
    return [
        f"{w.id}/{s.id}: `{f}` applies to serving stages only: ignored for this {s.kind} stage"
        for w in sc.workloads
        for s in w.stages
        for f in s.ignored_fields()
    ]


def _assumed(sc: Scenario) -> list[str]:
    """Personal datasets of no stated size, read at the highest count the rules look at."""
    from straits.model.people import UNKNOWN_SUBJECTS

    return [
        f"dataset {d.id}: personal data with no `subjects` is read as {UNKNOWN_SUBJECTS:,} "
        "individuals (conservative): give the count"
        for d in sc.datasets
        if d.subjects_assumed
    ]


def _below_target(plan: Plan, sc: Scenario) -> list[str]:
    """A serving stage that fixes `chips` and also asks for `tokens_per_s` is placed on its
    chips; where they serve less than the target, the plan says so (it was silent)."""
    from straits.catalog import get_chip
    from straits.estimate import estimate_serving

    out = []
    for a in plan.assignments:
        stage = sc.workload(a.workload).stage(a.stage)
        if stage.kind != "serve" or stage.chips is None or stage.tokens_per_s is None:
            continue
        assert stage.days is not None
        est = estimate_serving(
            sc.workload(a.workload).model,
            get_chip(a.chip),
            a.chips,
            stage.days,
            tokens_per_s=stage.tokens_per_s,
            prompt_tokens=stage.prompt_tokens,
            output_tokens=stage.output_tokens,
        )
        need = est.serving["replicas"] * est.serving["replica_chips"]
        if a.chips < need:
            out.append(
                f"{a.workload}/{a.stage}: its {a.chips:,} x {a.chip} (the stage's `chips`) serve "
                f"less than its {stage.tokens_per_s:,.0f} output tokens/s, which need {need:,}; "
                "without `chips` the planner sizes it to the target"
            )
    return out


def _within_calendar(plan: Plan, sc: Scenario) -> None:
    """Refuse a plan with a stage that ends after the last date Straits plans (``MAX_DATE``):
    its document could not be read back (export, report and impact refuse such times) and
    past year 9999 its times cannot even be written (an OverflowError). A chain of long stages
    on few chips gets there (a 7B fine-tune of 6e11 tokens on 8 chips runs 3,300 hours, 200 of
    them in a row run past 2100)."""
    from straits.errors import ScenarioError
    from straits.limits import MAX_DATE
    from straits.plan.schedule import deadline_hours

    limit = deadline_hours(sc, MAX_DATE)
    late = [a for a in plan.assignments if a.end_h > limit]
    if not late:
        return
    last = max(late, key=lambda a: a.end_h)
    wi = next(i for i, w in enumerate(sc.workloads) if w.id == last.workload)
    si = next(i for i, s in enumerate(sc.workloads[wi].stages) if s.id == last.stage)
    raise ScenarioError(
        f"the plan runs past {MAX_DATE.isoformat()}, the last date Straits plans: "
        f"{len(late)} stage(s) would end after it, the last, {last.workload}/{last.stage}, "
        f"{_span(last.end_h)} after {sc.date.isoformat()}",
        path=f"workloads[{wi}].stages[{si}]",
        expected="stages that can end by then: more chips (`chips`), fewer tokens, "
        "or a shorter chain of stages",
    )


def _span(hours: float) -> str:
    """Hours as people say them: a stage ending a day after a scenario of 2100-12-31 was
    "about 0 years after" it."""
    if hours >= 2 * 24 * 365.25:
        return f"about {hours / (24 * 365.25):,.0f} years"
    if hours >= 48:
        return f"about {hours / 24:,.0f} days"
    return f"{hours:,.1f} hours"


def _objective(sc: Scenario, spec: str | None) -> Any:
    if spec is not None:
        return objective(spec)
    return objective(sc.objective, path="objective")


def __getattr__(name: str) -> Any:
    """The plan types, imported when first asked for."""
    if name in ("Assignment", "Plan", "Rejection", "StageDiagnosis"):
        from straits.plan import result

        return getattr(result, name)
    raise AttributeError(f"module 'straits.plan' has no attribute {name!r}")


__all__ = [
    "DEFAULT_TIME_LIMIT",
    "Assignment",
    "Deadline",
    "Plan",
    "Rejection",
    "Solver",
    "StageDiagnosis",
    "make_plan",
]
