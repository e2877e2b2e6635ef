"""The LP bound's capacity rows (:mod:`straits.plan.lp_bound`): per pool, which windows
``[a, b]`` can bind, whether the pool's choices compete for it at all, and the rows."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple

STARTS = False
#: deadlines are rounded up to this grid (hours) in the capacity rows: later is weaker, never
#: wrong, and fewer distinct deadlines make fewer rows
DUE_GRID_H = 24.0 * 7


class Use(NamedTuple):
    var: Any
    stage: int
    """the stage's number (at most one of its choices is taken)"""
    chips: int
    earliest: float
    hours: float
    due: float


def _chip_hours(steps: list[tuple[float, int]], a: float, b: float) -> float:
    """Chip-hours a capacity profile offers in ``[a, b]``."""
    total = 0.0
    for i, (t0, n) in enumerate(steps):
        t1 = steps[i + 1][0] if i + 1 < len(steps) else math.inf
        lo, hi = max(a, t0), min(b, t1)
        if hi > lo:
            total += (hi - lo) * n
    return total


class _Arrays(NamedTuple):
    chips: Any
    earliest: Any
    hours: Any
    due: Any
    """rounded up to :data:`DUE_GRID_H`"""
    stage: Any


def _arrays(items: list[Use]) -> _Arrays:
    import numpy as np

    return _Arrays(
        np.array([i.chips for i in items], dtype=float),
        np.array([i.earliest for i in items]),
        np.array([i.hours for i in items]),
        np.ceil(np.array([i.due for i in items]) / DUE_GRID_H) * DUE_GRID_H,
        np.array([i.stage for i in items]),
    )


def ends_of(items: list[Use]) -> list[float]:
    """The pool's deadlines, rounded up to :data:`DUE_GRID_H`, in order: the windows' ends."""
    return sorted({float(d) for d in _arrays(items).due if math.isfinite(d)})


def _windows(
    arr: _Arrays, steps: list[tuple[float, int]], ends: list[float]
) -> Iterator[tuple[float, float, Any, float]]:
    """One pool's windows ``[a, b]`` that get a row (``b`` a deadline some choice here must
    meet, ``a`` the start or, with :data:`STARTS`, a day some choice cannot start before):
    per window, ``(a, b, need, have)``: each choice's chip-hours that must be spent inside,
    and what the pool has there. A window that cannot bind (each stage at its choice here
    that needs the most, all of them within what the pool has) is left out; one where the
    pool has nothing is yielded (what must run there cannot be taken)."""
    import numpy as np

    if not ends or not len(arr.due):
        return
    latest_start = arr.due - arr.hours
    starts = (
        [0.0] if not STARTS else sorted({0.0} | {math.floor(e / 24.0) * 24.0 for e in arr.earliest})
    )
    for a in starts:
        if a >= ends[-1]:
            break
        for b in ends:
            if b <= a:
                continue
            least = np.minimum(
                np.minimum(arr.hours, arr.earliest + arr.hours - a),
                np.minimum(b - a, b - latest_start),
            )
            need = arr.chips * np.maximum(0.0, least)
            have = _chip_hours(steps, a, b)
            if have <= 0:
                if (need > 0).any():
                    yield a, b, need, have
                continue
            most = np.zeros(arr.stage.max() + 1)
            np.maximum.at(most, arr.stage, need)
            if most.sum() > have:
                yield a, b, need, have


def competes(items: list[Use], steps: list[tuple[float, int]]) -> bool:
    """Whether the pool gets any capacity row: its choices can compete for it."""
    return next(_windows(_arrays(items), steps, ends_of(items)), None) is not None


def capacity_rows(
    lp: Any,
    inf: float,
    items: list[Use],
    steps: list[tuple[float, int]],
    ends: list[float] | None = None,
) -> None:
    """One pool's rows, one per window of :func:`_windows`: the chip-hours every choice must
    spend inside it, within what the pool has there. ``ends``: the windows' ends (default the
    items' own deadlines; the LP passes those of every choice the pool had before the
    dominated ones were left out, so that no window is lost with them).

    The rows of one ``a`` are nested: a choice due by ``b`` spends all it must in every later
    window too. So each row reads the choices due by the previous row through one running
    total (a variable per row), and lists only the choices due since and those still running
    across ``b``: the rows hold a few nonzeros each instead of every choice, which is what
    makes the LP solve in seconds."""
    import numpy as np

    arr = _arrays(items)
    ends = ends_of(items) if ends is None else ends
    unit = 1.0
    total: Any = None  # what the choices counted so far must spend, in ``unit``s
    counted = np.zeros(len(items), dtype=bool)
    start = math.nan
    for a, b, need, have in _windows(arr, steps, ends):
        if a != start:  # a new running total
            start, total, counted[:] = a, None, False
            unit = _chip_hours(steps, a, max(ends))
        if have <= 0:  # no chips there at all: what must run there cannot be taken
            for k in np.flatnonzero(need > 0):
                items[k].var.SetUb(0.0)
            continue
        whole = (arr.due <= b) & (need > 0)  # due by b: all they must spend is inside
        fresh = np.flatnonzero(whole & ~counted)
        if len(fresh):
            grown = lp.NumVar(0.0, inf, "")
            row = lp.Constraint(0.0, 0.0)  # grown = total + fresh choices' need
            row.SetCoefficient(grown, 1.0)
            if total is not None:
                row.SetCoefficient(total, -1.0)
            for k in fresh:
                row.SetCoefficient(items[k].var, -float(need[k]) / unit)
            total = grown
            counted[fresh] = True
        row = lp.Constraint(-inf, 1.0)  # need / have <= 1
        if total is not None:
            row.SetCoefficient(total, unit / have)
        for k in np.flatnonzero((need > 0) & ~whole):
            row.SetCoefficient(items[k].var, float(need[k]) / have)
