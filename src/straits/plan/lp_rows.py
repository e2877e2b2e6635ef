"""The LP bound's capacity rows (:mod:`straits.plan.lp_bound`): per pool, which windows
``[a, b]`` can bind, what each choice needs in them (whether the pool's choices compete for it
at all), and the rows."""

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


def needs(items: list[Use], steps: list[tuple[float, int]], ends: list[float]) -> Any | None:
    """Each choice's chip-hours in each window that can bind with all of the pool's choices
    (an items x windows array; the coefficients its rows would give them, up to the rows'
    scale), or None when no window can: the pool gets no capacity row, its choices do not
    compete. With fewer of its choices a pool's rows are among these windows."""
    import numpy as np

    cols = [need for _, _, need, _ in _windows(_arrays(items), steps, ends)]
    return np.stack(cols, axis=1) if cols else None


#: pairs of choices compared at once in :func:`dominated` (memory: pairs x windows floats)
PAIRS_AT_ONCE = 20_000


def dominated(costs: Any, stage: Any, need: Any) -> Any:
    """Which of a pool's choices another choice of the same stage on the pool dominates: no
    larger in ``costs`` (per choice: its value, budget share, lateness penalty) nor in
    ``need`` (its chip-hours in each window that can bind, :func:`needs`). Of equal ones the
    first is kept; a strict order, so each one it marks is dominated by one it does not.

    A choice's chip-hours in a window ``[a, b]`` are its chips times
    ``min(hours, earliest + hours - a, b - a, b - due + hours)`` (at least 0): fewer chips,
    fewer hours or a later deadline (on the grid) never need more. The pool's rows, with any
    subset of its choices, are among ``need``'s windows, and a window that cannot bind with
    all of them holds whatever each stage takes; so moving a dominated choice's share onto
    the one that dominates it keeps every row and costs no more."""
    import numpy as np

    n = len(stage)
    price = np.asarray(costs, dtype=float).reshape(n, -1)
    keys = np.hstack([price, need])
    out = np.zeros(n, dtype=bool)
    order = np.argsort(stage, kind="stable")  # a stage's choices together, in their order
    _, first, size = np.unique(stage[order], return_index=True, return_counts=True)
    many = size > 1
    first, size = first[many], size[many]
    if not len(size):
        return out
    # every ordered pair (i, j) within a stage: positions in ``order``
    sq = size * size
    group = np.repeat(np.arange(len(size)), sq)
    k = np.arange(sq.sum()) - np.repeat(np.cumsum(sq) - sq, sq)
    i = order[first[group] + k // size[group]]
    j = order[first[group] + k % size[group]]
    cheap = (price[i] <= price[j]).all(axis=1) & (i != j)  # the costs first: few pass
    i, j = i[cheap], j[cheap]
    for lo in range(0, len(i), PAIRS_AT_ONCE):
        a, b = i[lo : lo + PAIRS_AT_ONCE], j[lo : lo + PAIRS_AT_ONCE]
        ka, kb = keys[a], keys[b]
        le = (ka <= kb).all(axis=1)
        beats = le & ((ka != kb).any(axis=1) | (a < b))
        out[b[beats]] = True
    return out


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
