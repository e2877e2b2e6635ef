"""The models' time axis: a portfolio's horizon and its deadlines in model ticks.

Every CP-SAT model of a search (the whole portfolio's, the re-timing's, each neighbourhood's)
and every search that runs without the whole model takes its horizon from here, so they agree.
"""

from __future__ import annotations

import datetime as dt

from straits.limits import MAX_DATE
from straits.model.scenario import Scenario
from straits.plan.portfolio import Portfolio
from straits.plan.schedule import deadline_hours
from straits.plan.ticks import TICKS_PER_HOUR, ticks_down


def due_ticks(pf: Portfolio, day: dt.date) -> int:
    """The end of ``day`` in model ticks."""
    return ticks_down(deadline_hours(pf.sc, day))


def within_calendar(sc: Scenario, longest: int, horizon: int) -> int:
    """``horizon`` (ticks), no later than the last date Straits plans when the greedy plan
    (``longest``, its last end in ticks) ends by then: the model chose an option ending decades
    on where another ended in time, and the plan was refused. Every model of a search takes
    its horizon through here (the whole portfolio's, the re-timing's and each neighbourhood's:
    a neighbourhood given the uncapped one moved a chain past 2100-12-31 and a plan whose
    greedy start ended in 2083 was refused as running past the calendar)."""
    calendar = ticks_down(deadline_hours(sc, MAX_DATE))
    return min(horizon, calendar) if longest <= calendar else horizon


def model_ticks(pf: Portfolio, horizon: int | None, only: set[str] | None = None) -> int:
    """The horizon :func:`~straits.plan.cpsat_model.build` gives a model of ``only`` (all
    workloads: None) when asked for ``horizon``: the scenario's when none is asked for,
    stretched to twice the greedy plan's makespan when that is longer; then capped at the
    calendar's end (:func:`within_calendar`)."""
    longest = max(
        (st.hint_end for k, st in pf.stages.items() if only is None or k[0] in only), default=0
    )
    wide = horizon or max(int(pf.sc.horizon_days * 24 * TICKS_PER_HOUR), 2 * longest + 1)
    return within_calendar(pf.sc, longest, wide)
