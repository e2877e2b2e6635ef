"""The greedy plan in the model's ticks: where every search starts.

The greedy planner places stages at exact hours and packs chains of them up to their
deadlines; the model rounds durations, transfers and starts up to whole ticks. Re-timed, a
few stages of a large plan no longer make their hard deadlines. Those workloads are *held*:
kept exactly where the greedy plan put them, outside the search, their chips taken from the
pools the model sees (:class:`Held`), so every search starts from a solution that places
everything the greedy plan placed and can only do better.

A held workload's usage of a pool enters the model as its profile over time, each minute
taking the most chips any instant of it uses (two held stages that follow each other within a
minute do not add up).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

from straits.plan.cpsat_model import UNPLACED, Booking, Slot
from straits.plan.horizon import model_ticks
from straits.plan.portfolio import Portfolio
from straits.plan.schedule import PlanState, StageKey, hard_deadline_hours, model_timeline
from straits.plan.ticks import ticks_down, ticks_up
from straits.plan.timeline import Timeline

Solution = dict[StageKey, Slot]
#: rounds of holding the workloads a re-timing loses (each round re-times the others)
ROUNDS = 6


@dataclass(frozen=True)
class Held:
    """Workloads kept where the greedy plan put them, and the chips they take."""

    workloads: frozenset[str] = frozenset()
    bookings: tuple[Booking, ...] = ()
    """their usage of each pool, in ticks: (resource key, start, end, chips)"""
    floor: int = 0
    """the tick by which every held stage has ended"""
    usage: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    """resource key -> (start, end, chips) of ``bookings``"""


NOTHING_HELD = Held()


class Retimed(NamedTuple):
    solution: Solution
    """a slot for every stage of the workloads not held"""
    held: Held


def model_horizon(pf: Portfolio) -> int:
    """The model's horizon in ticks: the scenario's, stretched to twice the greedy plan's
    makespan when that is longer, and no later than the calendar's end where the greedy plan
    ends by then (:func:`~straits.plan.horizon.within_calendar`)."""
    return model_ticks(pf, None)


def retime(pf: Portfolio, state: PlanState, horizon: int) -> Retimed:
    """The greedy plan in the model's ticks: the same choices, started as early as the
    rounded durations, releases and (rounded) capacities allow; a stage that no longer makes
    its hard deadline or budget at its own choice takes the first of its other choices that
    does (by value). Workloads that still lose a stage are held where the greedy plan put
    them."""
    held: set[str] = set()
    for _ in range(ROUNDS):
        h = _held(pf, state, held)
        sol, lost = _retime(pf, state, horizon, h)
        if not lost:
            return Retimed(sol, h)
        held |= lost
    h = _held(pf, state, held)
    sol, lost = _retime(pf, state, horizon, h)
    if lost:  # hold the last ones too, and re-time the rest once more without them
        h = _held(pf, state, held | lost)
        sol, _ = _retime(pf, state, horizon, h)
    return Retimed(sol, h)


def _retime(pf: Portfolio, state: PlanState, horizon: int, held: Held) -> tuple[Solution, set[str]]:
    """One re-timing of the workloads not held; the workloads that lost a stage."""
    timelines: dict[str, Timeline] = {}
    out: Solution = {k: UNPLACED for k in pf.stages if k[0] not in held.workloads}
    ends: dict[StageKey, int] = {}
    placed_at: dict[StageKey, int] = {}
    spent: dict[str, int] = {}
    lost: set[str] = set()

    def timeline(c_key: str, idx_key: StageKey, idx: int) -> Timeline:
        tl = timelines.get(c_key)
        if tl is None:
            tl = timelines[c_key] = model_timeline(
                pf.sc, pf.stages[idx_key].choices[idx].option, horizon
            )
            for s, e, n in held.usage.get(c_key, ()):
                tl.reserve(s, e, n)
        return tl

    for key, _ in sorted(state.placed.items(), key=lambda kv: kv[1].assignment.start_h):
        st = pf.stages.get(key)
        if key[0] in held.workloads or st is None:
            continue
        if st.hint is None:
            lost.add(key[0])
            continue
        w = st.workload
        due = hard_deadline_hours(pf.sc, w)
        limit = horizon if math.isinf(due) else min(horizon, ticks_down(due))
        others = sorted(
            (i for i in range(len(st.choices)) if i != st.hint),
            key=lambda i: (st.choices[i].value, i),
        )
        for idx in (st.hint, *others):
            c = st.choices[idx]
            ready = c.release
            for p in st.stage.after:
                pk = (key[0], p)
                if pk not in ends:
                    ready = -1
                    break
                pc = pf.stages[pk].choices[placed_at[pk]]
                ready = max(ready, ends[pk] + pf.weights_ticks(w, pc, c))
            if ready < 0:
                break
            if w.budget_usd is not None and spent.get(w.id, 0) + c.cost > int(w.budget_usd):
                continue
            tl = timeline(c.option.key, key, idx)
            s = earliest_tick(tl, c.est.chips, c.duration, ready)
            if s is None or s + c.duration > limit:
                continue  # rounded up to whole ticks it no longer makes it
            spent[w.id] = spent.get(w.id, 0) + c.cost
            tl.reserve(s, s + c.duration, c.est.chips)
            out[key] = Slot(idx, s)
            ends[key] = s + c.duration
            placed_at[key] = idx
            break
        if out[key].choice is None:
            lost.add(key[0])
    return out, lost


def _held(pf: Portfolio, state: PlanState, workloads: set[str]) -> Held:
    """The greedy plan's bookings of ``workloads`` as the chips they take, per pool."""
    if not workloads:
        return NOTHING_HELD
    by_res: dict[str, list[tuple[float, float, int]]] = {}
    floor = 0
    for (wid, sid), b in state.placed.items():
        if wid not in workloads:
            continue
        a = b.assignment
        w = pf.sc.workload(wid)
        t = pf.cand.table(w, w.stage(sid))
        res = t.option(t.row_of(a.option_label)).key
        by_res.setdefault(res, []).append((a.start_h, a.end_h, a.chips))
        floor = max(floor, ticks_up(a.end_h))
    bookings = tuple(
        (res, s, e, n) for res, ivs in sorted(by_res.items()) for s, e, n in _profile(ivs)
    )
    usage: dict[str, list[tuple[int, int, int]]] = {}
    for res, s, e, n in bookings:
        usage.setdefault(res, []).append((s, e, n))
    return Held(frozenset(workloads), bookings, floor, usage)


def _profile(intervals: list[tuple[float, float, int]]) -> list[tuple[int, int, int]]:
    """Chips in use over time (hours) as tick segments, each taking the most chips any
    instant of it uses."""
    events = sorted({t for s, e, _ in intervals for t in (s, e)})
    steps: list[tuple[float, float, int]] = []
    for t0, t1 in itertools.pairwise(events):
        used = sum(n for s, e, n in intervals if s <= t0 < e)
        if used > 0:
            steps.append((t0, t1, used))
    cuts = sorted({x for t0, t1, _ in steps for x in (ticks_down(t0), ticks_up(t1))})
    out: list[tuple[int, int, int]] = []
    for a, b in itertools.pairwise(cuts):
        most = max((n for t0, t1, n in steps if ticks_down(t0) < b and ticks_up(t1) > a), default=0)
        if most > 0:
            if out and out[-1][1] == a and out[-1][2] == most:
                out[-1] = (out[-1][0], b, most)
            else:
                out.append((a, b, most))
    return out


def earliest_tick(tl: Timeline, chips: int, ticks: int, ready: int) -> int | None:
    """The earliest whole tick >= ``ready`` at which ``chips`` are free for ``ticks``."""
    at = float(ready)
    for _ in range(64):
        s = tl.earliest(chips, ticks, at)
        if s is None:
            return None
        whole = math.ceil(s - 1e-9)
        if tl.earliest(chips, ticks, whole) == whole:
            return whole
        at = whole
    return None
