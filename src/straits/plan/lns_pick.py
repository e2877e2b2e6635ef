"""The neighbourhood search's pickers: which workloads each kind of neighbourhood frees.

A mixin of :class:`straits.plan.lns.NeighbourhoodSearch` (the kinds are described there); it
reads the search's state and draws from its random generator, so for a seed the search takes
the same steps.
"""

from __future__ import annotations

import math
import random

from straits.plan.alone import AloneBound
from straits.plan.cpsat_model import late_hours_of
from straits.plan.lns_stats import LnsStats
from straits.plan.objectives import Objective
from straits.plan.options import pool_steps, procured_steps
from straits.plan.portfolio import Portfolio
from straits.plan.schedule import StageKey, deadline_hours
from straits.plan.solution import Solution
from straits.plan.ticks import ticks_down

#: the workload id under which held workloads' chips are booked in the search's index
HELD = "\x00held"
#: the highest-regret workloads a ``regret`` neighbourhood is drawn from
REGRET_POOL = 40
#: stages a ``guided`` or ``split`` neighbourhood may hold (the runs of two or three large pools)
GUIDED_SIZE = 40
#: ``unplaced`` rounds in a row around a workload that place none of its stages before it is
#: left out for a while (:meth:`Picker._tried_unplaced`)
BACKOFF_AFTER = 3


def own_pools(pf: Portfolio, alone: AloneBound) -> dict[str, dict[str, int]]:
    """workload -> the pools its own optimum alone books, each with the most chips it takes
    there (for ``split`` neighbourhoods, and the rivals of an ``unplaced`` one)."""
    out: dict[str, dict[str, int]] = {}
    for wid, opt in alone.workloads.items():
        pools = out[wid] = {}
        for sid, i in opt.placed.items():
            c = pf.stages[(wid, sid)].choices[i]
            pools[c.option.key] = max(pools.get(c.option.key, 0), c.est.chips)
    return out


class Picker:
    """The neighbourhoods, drawn from the search's state (set by its ``__init__``)."""

    pf: Portfolio
    objective: Objective
    horizon: int
    rng: random.Random
    sol: Solution
    stats: LnsStats
    most_placed: dict[str, int]
    placeable: set[StageKey]
    stages_of: dict[str, list[StageKey]]
    on: dict[str, dict[StageKey, tuple[int, int, int]]]
    floor: dict[StageKey, int]
    fastest: dict[StageKey, int]
    time_weight: dict[str, int]
    penalty: dict[str, tuple[int, float]]
    timed: bool
    guide: dict[StageKey, dict[str, float]]
    shares: dict[str, float]
    """the LP bound's answer: per workload, its share of the bound's value (model units)"""
    own_pools: dict[str, dict[str, int]]
    _tried: set[StageKey]
    _led: set[str]
    """workloads that led a ``split`` neighbourhood (all of them: again from the top)"""
    _most: dict[str, int]
    _fails: dict[str, int]
    """workload -> ``unplaced`` rounds in a row around it that placed none of its stages"""
    _retry: dict[str, int]
    """workload -> the round from which ``unplaced`` may draw it again"""
    _target: str | None
    """the workload the last ``unplaced`` draw chose"""

    def _own(self, wid: str, sol: Solution) -> int:
        """A workload's part of ``sol``'s value: its choices, and its soft deadline's penalty."""
        total, end = 0, -1
        for key in self.stages_of.get(wid, []):
            idx, s = sol[key]
            if idx is not None:
                c = self.pf.stages[key].choices[idx]
                total, end = total + c.value, max(end, s + c.duration)
        if end >= 0 and wid in self.penalty:
            due, usd = self.penalty[wid]
            total += self.objective.penalty_of(late_hours_of(end, due), usd)
        return total

    def _pick(self, kind: str) -> set[str]:
        if kind == "unplaced":
            return self._around(self._unplaced())
        if kind == "regret":
            return self._around(self._regretful())
        if kind == "window":
            return self._window()
        if kind == "guided":
            return self._guided()
        if kind == "split":
            return self._split()
        return self._slice()

    def _unplaced(self) -> str | None:
        stuck = sorted(
            {k[0] for k, (i, _) in self.sol.items() if i is None and k in self.placeable}
        )
        if self.most_placed:
            stuck = [w for w in stuck if self._placed(w) < self.most_placed.get(w, math.inf)]
        stuck = [w for w in stuck if self._retry.get(w, 0) <= self.stats.rounds]
        self._target = self.rng.choice(stuck) if stuck else None
        return self._target

    def _tried_unplaced(self, wid: str, placed: bool) -> None:
        """An ``unplaced`` round around ``wid`` ended: after ``BACKOFF_AFTER`` rounds in a row
        that placed none of its stages, it is left out of the next 2, then 4, 8... rounds (on
        seed 20001, 60 of 95 rounds went to one stage that was never placed)."""
        if placed:
            self._fails.pop(wid, None)
            self._retry.pop(wid, None)
            return
        n = self._fails[wid] = self._fails.get(wid, 0) + 1
        if n >= BACKOFF_AFTER:
            self._retry[wid] = self.stats.rounds + 2 ** (n - BACKOFF_AFTER + 1)

    def _placed(self, wid: str) -> int:
        return sum(1 for k in self.stages_of.get(wid, []) if self.sol[k][0] is not None)

    def regret(self, key: StageKey) -> int:
        """How much a placed stage pays above its best choice (value, and lateness for the
        time objectives)."""
        idx, s = self.sol[key]
        if idx is None or key not in self.floor:
            return 0
        c = self.pf.stages[key].choices[idx]
        late = max(0, s + c.duration - self.fastest[key]) * self.time_weight[key[0]]
        return c.value - self.floor[key] + late

    def _regretful(self) -> str | None:
        per: dict[str, int] = {}
        ends: dict[str, int] = {}
        for key, (idx, s) in self.sol.items():
            r = self.regret(key)
            if r > 0:
                per[key[0]] = per.get(key[0], 0) + r
            if idx is not None and key[0] in self.penalty:
                e = s + self.pf.stages[key].choices[idx].duration
                ends[key[0]] = max(ends.get(key[0], 0), e)
        for wid, e in ends.items():  # soft deadlines missed: the penalty is regret too
            due, usd = self.penalty[wid]
            late = self.objective.penalty_of(late_hours_of(e, due), usd)
            if late > 0:
                per[wid] = per.get(wid, 0) + late
        if not per:
            return None
        top = sorted(per, key=lambda w: (-per[w], w))[:REGRET_POOL]
        return self.rng.choices(top, weights=[per[w] for w in top])[0]

    def _around(self, target: str | None) -> set[str]:
        """``target`` and its rivals: the workloads booked on the pools of its better choices
        while it could use them, up to the neighbourhood's size.

        A target with a stage unplaced puts some rivals first (tried on seeds 20001 and 20004,
        whose last unplaced stages were placed only then): when its unplaced stage has no time
        left after its placed predecessors, those booked before them on their pools (latest
        first: they hold them back); then those booked before its deadline on the pools where
        its own optimum (which places it, within its budget and deadline) needs more than half
        the chips, or where a cheaper choice of a placed stage would leave the budget room for
        the rest (:meth:`_affordable`): there one booking is in the way, where on a pool many
        times as wide a narrow run finds room (taking also the wide choices its stages may take
        instead moved too many others up: seed 20004's last stages stayed unplaced).
        """
        if target is None:
            return set()
        free = {target}
        keys = self.stages_of.get(target, [])
        count = len(keys)
        stuck = self._unplaced_in(target)
        late = stuck and self._held_back(target)
        rivals: set[str] = set()
        ahead: dict[str, int] = {}  # rival -> its latest start before the target's, there
        wide = {r for r, n in self.own_pools.get(target, {}).items() if 2 * n > self._chips(r)}
        if stuck:
            wide |= self._affordable(target)
        for key in keys:
            st = self.pf.stages[key]
            idx, start = self.sol[key]
            mine = st.choices[idx].value if idx is not None else None
            if late and idx is not None:
                for other, (s, _e, _n) in self.on.get(st.choices[idx].option.key, {}).items():
                    if other[0] not in (target, HELD) and s < start:
                        ahead[other[0]] = max(ahead.get(other[0], s), s)
            due = self._due(key)
            for c in st.choices:
                if mine is not None and c.value >= mine and not self.timed:
                    continue
                for other, (s, _e, _n) in self.on.get(c.option.key, {}).items():
                    if other[0] not in (target, HELD) and s < due:
                        rivals.add(other[0])
        due_all = max((self._due(k) for k in keys), default=0)
        near = {
            other[0]
            for pool in (wide if stuck else ())
            for other, (s, _e, _n) in self.on.get(pool, {}).items()
            if other[0] not in (target, HELD) and s < due_all
        }
        order = sorted(rivals | set(ahead) | near)
        self.rng.shuffle(order)
        # then rivals without a hard deadline: they are the ones that can make room
        order.sort(
            key=lambda w: (
                -ahead.get(w, -1),
                w not in near,
                self.pf.sc.workload(w).deadline_policy == "hard"
                and self.pf.sc.workload(w).deadline is not None,
            )
        )
        for w in order:
            n = len(self.stages_of.get(w, []))
            if count + n > self.stats.size:
                continue
            free.add(w)
            count += n
        return free

    def _affordable(self, target: str) -> set[str]:
        """When ``target``'s unplaced stages do not fit what its placed ones leave of its
        budget: the pools of the cheaper choices of a placed stage that would leave enough,
        where that choice needs more than half the chips (seed 20004's w0737: its pre-training
        spent $49.85M of $50M, and two pools of 4,096 chips were $5-8M cheaper)."""
        wl = self.pf.sc.workload(target)
        budget = wl.budget_usd
        if budget is None:
            return set()
        hard = wl.deadline is not None and wl.deadline_policy == "hard"
        spent, need = 0, 0
        for key in self.stages_of.get(target, []):
            idx, _ = self.sol[key]
            choices = self.pf.stages[key].choices
            if idx is not None:
                spent += choices[idx].cost
            elif choices:
                need += min(c.cost for c in choices)
        if spent + need <= budget:
            return set()
        out: set[str] = set()
        for key in self.stages_of.get(target, []):
            idx, _ = self.sol[key]
            if idx is None:
                continue
            choices = self.pf.stages[key].choices
            room = budget - need - (spent - choices[idx].cost)
            due = self._due(key) if hard else self.horizon
            out |= {
                c.option.key
                for c in choices
                if c.cost <= room
                and c.release + c.duration <= due
                and 2 * c.est.chips > self._chips(c.option.key)
            }
        return out

    def _unplaced_in(self, target: str) -> bool:
        return any(self.sol[k][0] is None for k in self.stages_of.get(target, []))

    def _held_back(self, target: str) -> bool:
        """Whether a stage of ``target`` is unplaced for want of time: its predecessors are
        placed, and after their ends every choice of it would pass its hard deadline."""
        w = self.pf.sc.workload(target)
        if w.deadline is None or w.deadline_policy != "hard":
            return False
        for key in self.stages_of.get(target, []):
            if self.sol[key][0] is not None:
                continue
            st, ready = self.pf.stages[key], 0
            for sid in st.stage.after:
                i, s = self.sol.get((target, sid), (None, 0))
                if i is None:
                    break
                ready = max(ready, s + self.pf.stages[(target, sid)].choices[i].duration)
            else:
                due = self._due(key)
                if st.choices and all(max(ready, c.release) + c.duration > due for c in st.choices):
                    return True
        return False

    def _due(self, key: StageKey) -> int:
        w = self.pf.stages[key].workload
        if w.deadline is None:
            return self.horizon
        return ticks_down(deadline_hours(self.pf.sc, w.deadline)) + 1

    def _window(self) -> set[str]:
        """The workloads booked on one pool around one of its bookings."""
        movable = {r: [(k, v) for k, v in b.items() if k[0] != HELD] for r, b in self.on.items()}
        busy = sorted(r for r, b in movable.items() if len(b) >= 2)
        if not busy:
            return set()
        res = self.rng.choices(busy, weights=[len(movable[r]) for r in busy])[0]
        bookings = sorted(movable[res])
        _, (s0, e0, _) = self.rng.choice(bookings)
        reach = max(1, e0 - s0)
        near = sorted(bookings, key=lambda kv: abs(kv[1][0] - s0))
        free: set[str] = set()
        count = 0
        for key, (s, e, _) in near:
            if e < s0 - reach or s > e0 + reach:
                continue
            if key[0] in free:
                continue
            n = len(self.stages_of[key[0]])
            if free and count + n > self.stats.size:
                break
            free.add(key[0])
            count += n
        return free

    def _guided(self) -> set[str]:
        """The costliest run wider than half its pool (not tried yet, else again) that the LP
        puts mostly elsewhere; the runs of any width booked on the LP's pools for it before its
        deadline, most chip-time there first; then the runs as wide on its own pool, earliest
        first. Freeing only the wide runs on the LP's pools (before the fifteenth pass) left
        the narrow long ones that held them: the piece could not move the run in."""
        wide = {
            k: r
            for r, b in self.on.items()
            for k, v in b.items()
            if k[0] != HELD and 2 * v[2] > self._chips(r)
        }
        keys = sorted(
            (k for k, r in wide.items() if k in self.guide and self.guide[k].get(r, 0.0) < 0.5),
            key=lambda k: (-self.regret(k), k),
        )
        keys = [k for k in keys if self.regret(k) > 0]
        if not keys:
            return set()
        key = next((k for k in keys if k not in self._tried), keys[0])
        self._tried.add(key)
        theirs = sorted((-x, r) for r, x in self.guide[key].items() if x > 0.1 and r != wide[key])
        free, count = {key[0]}, len(self.stages_of[key[0]])
        due = self._due(key)
        # first what blocks the LP's pools before the run's deadline, of any width, the most
        # chip-time first (a run as wide as its pool cannot start while any other runs there),
        # then the runs as wide booked on its own pool
        blockers = [
            k
            for _, r in theirs
            for _, _, k in sorted(
                (-n * (min(e, due) - s), s, k)
                for k, (s, e, n) in self.on.get(r, {}).items()
                if k[0] != HELD and s < due
            )
        ]
        mates = sorted(
            (k for k, r in wide.items() if r == wide[key]), key=lambda k: (self.sol[k][1], k)
        )
        for other in [*blockers, *mates]:
            n = len(self.stages_of.get(other[0], []))
            if other[0] not in free and count + n <= GUIDED_SIZE:
                free.add(other[0])
                count += n
        return free

    def _chips(self, res: str) -> int:
        if res not in self._most:  # the most chips the pool has at any time
            o = self.pf.option_of(res)
            steps = procured_steps(o.pool) if o.procured else pool_steps(self.pf.sc, o.pool)
            self._most[res] = max((n for _, n in steps), default=0)
        return self._most[res]

    def _slice(self) -> set[str]:
        """Workloads with a stage running in one slice of time, drawn at random."""
        placed = sorted((s, k) for k, (i, s) in self.sol.items() if i is not None)
        if not placed:
            return set()
        t, _ = self.rng.choice(placed)
        durations = sorted(
            self.pf.stages[k].choices[i].duration
            for k, (i, _s) in self.sol.items()
            if i is not None
        )
        width = durations[len(durations) // 2]
        running = sorted(
            {
                k[0]
                for k, (i, s) in self.sol.items()
                if i is not None and s < t + width and s + self.pf.stages[k].choices[i].duration > t
            }
        )
        self.rng.shuffle(running)
        free: set[str] = set()
        count = 0
        for w in running:
            n = len(self.stages_of[w])
            if free and count + n > self.stats.size:
                continue
            free.add(w)
            count += n
        return free

    def _split(self) -> set[str]:
        """The workloads furthest above their LP share (led by the first that has not led a
        ``split`` piece yet; when all have, again from the top), up to half the piece, then
        the widest runs booked on the pools of their own optima: the LP says what each should
        pay, the gap to it lives in few workloads and their large rivals (the tenth pass)."""
        above = {w: self._own(w, self.sol) - share for w, share in self.shares.items()}
        top = sorted((w for w, x in above.items() if x > 0), key=lambda w: (-above[w], w))
        if not top:
            return set()
        lead = next((w for w in top if w not in self._led), None)
        if lead is None:
            self._led.clear()
            lead = top[0]
        self._led.add(lead)
        free, count = {lead}, len(self.stages_of.get(lead, []))
        for w in top:
            n = len(self.stages_of.get(w, []))
            if w not in free and count + n <= GUIDED_SIZE // 2:
                free.add(w)
                count += n
        pools = sorted({r for w in free for r in self.own_pools.get(w, ())})
        runs = sorted(
            (-n, s, k)
            for r in pools
            for k, (s, _e, n) in self.on.get(r, {}).items()
            if k[0] != HELD and k[0] not in free
        )
        for _, _, k in runs:
            n = len(self.stages_of.get(k[0], []))
            if k[0] not in free and count + n <= GUIDED_SIZE:
                free.add(k[0])
                count += n
        return free
