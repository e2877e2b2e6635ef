"""Large-neighbourhood search around the greedy plan: CP-SAT on small pieces, many times.

On a large portfolio CP-SAT cannot improve the whole model in the time a person waits; it can
solve a piece of it to optimality in a fraction of a second. Each round frees a *neighbourhood*
(a few workloads, every stage of each, so their deadlines, budgets and precedence stay inside
the piece), holds every other booking fixed, solves that piece warm-started from the incumbent,
and keeps the result when the whole plan's objective (:func:`~straits.plan.solution.evaluate`)
improves. Neighbourhoods are chosen where improvement is likely:

* ``unplaced``: a workload with a stage that could run alone but is unplaced, and its rivals
  (not one that has as many stages placed as its own optimum alone places: no plan places more);
* ``regret``: a workload that pays most above its stages' best choices, and its rivals (the
  workloads booked on the pools of its better choices when it could use them);
* ``window``: the bookings of one pool around one booking, and the workloads that want it;
* ``slice``: workloads running in one slice of time;
* ``guided`` (only with the LP bound's answer, :mod:`straits.plan.lp_bound`): a costly run
  wider than half its pool that the LP puts mostly on other pools, with the runs as wide
  booked on its pool and on the LP's pools for it. Such runs hold their pools one at a time,
  and which pools must be re-packed together is what the LP's answer says.

The kinds that improve the plan are chosen more often (adaptive weights), and the size of a
neighbourhood grows while CP-SAT proves its pieces optimal quickly and shrinks when it does
not. Every piece is lawful by construction (the same choices as the whole model), so every
accepted solution is too. Each piece is solved with one worker and a deterministic-time limit,
so for a seed the search takes the same steps; only the wall clock decides how many.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable

from ortools.sat.python import cp_model

from straits.plan.bounds import placeable
from straits.plan.cpsat_model import (
    Booking,
    Score,
    add_hints,
    build,
    due_ticks,
    late_hours_of,
    new_solver,
)
from straits.plan.lns_stats import KINDS, LnsStats
from straits.plan.objectives import COMPLETION, COST, TIME, Objective
from straits.plan.options import pool_steps, procured_steps
from straits.plan.portfolio import Portfolio
from straits.plan.retime import NOTHING_HELD, Held
from straits.plan.schedule import StageKey, deadline_hours, hard_deadline_hours
from straits.plan.solution import Solution, Value, evaluate, from_solver
from straits.plan.stoppable import solve_stoppable
from straits.plan.ticks import ticks_down

#: the workload id under which held workloads' chips are booked in the search's index
HELD = "\x00held"
#: stages per neighbourhood: fewest, most (the first: ``lns_stats.START_SIZE``)
MIN_SIZE = 6
MAX_SIZE = 160
#: deterministic seconds per piece, and at most this many wall-clock seconds (CP-SAT's
#: deterministic time undercounts presolve and cumulative constraints with many fixed bookings,
#: and a loaded machine stretches both)
PIECE_SECONDS = 1.5
PIECE_WALL_S = 6.0
#: wall-clock seconds a piece should take: neighbourhoods are sized to it
PIECE_TARGET_S = 1.5
#: the highest-regret workloads a ``regret`` neighbourhood is drawn from
REGRET_POOL = 40
#: stages a ``guided`` neighbourhood may hold (the runs of two or three large pools)
GUIDED_SIZE = 40
#: wall seconds a piece leaves for settling its other workloads when it places a stage
#: (:meth:`NeighbourhoodSearch._settle`), the most a settling solve takes, and its
#: deterministic seconds
SETTLE_S = 1.5
SETTLE_SECONDS = 0.5


class NeighbourhoodSearch:
    """The search's state: the incumbent solution, its value, and who is booked where."""

    def __init__(
        self,
        pf: Portfolio,
        objective: Objective,
        horizon: int,
        start: Solution,
        *,
        seed: int = 0,
        workers: int = 1,
        tie_unit: int = 1000,
        held: Held = NOTHING_HELD,
        stop: threading.Event | None = None,
        guide: dict[StageKey, dict[str, float]] | None = None,
        most_placed: dict[str, int] | None = None,
    ) -> None:
        self.pf = pf
        self.most_placed = most_placed or {}
        """workload -> the most of its stages any plan places (each workload alone,
        :mod:`straits.plan.alone`): an ``unplaced`` neighbourhood around a workload that has
        as many placed cannot place more, and the round goes to another kind"""
        self.stop = stop
        """set when the search must end (a proof, a callback): a piece in flight is stopped"""
        self.objective = objective = objective.fitted(pf.sc)  # in the model's units
        self.horizon = horizon
        self.rng = random.Random(seed)
        self.seed = seed
        self.workers = workers
        self.sol: Solution = dict(start)
        self.tie_unit = tie_unit
        """the whole model's tie-break unit, so values compare as its objective does"""
        self.held = held
        """workloads kept where the greedy plan put them: never freed"""
        self.value = evaluate(pf, objective, self.sol, tie_unit, held)
        self.stats = LnsStats()
        self.weights = dict.fromkeys(KINDS, 1.0)
        self.guide = guide or {}
        """the LP bound's answer: per stage, the share of it each pool takes"""
        self.weights["guided"] = 4.0 if self.guide else 0.0  # with an answer, look there first
        self._tried: set[StageKey] = set()
        self._most: dict[str, int] = {}
        self.placeable = placeable(pf, objective)
        self.time_weight = {
            w.id: objective.tick_weight(TIME) + objective.done_weight(w) for w in pf.sc.workloads
        }
        """workload -> model units per tick it ends later (makespan, its weighted completion)"""
        self.timed = objective.weight(TIME) > 0 or objective.weight(COMPLETION) > 0
        self.floor: dict[StageKey, int] = {}
        """a stage's least value among the choices that could make its hard deadline alone"""
        self.fastest: dict[StageKey, int] = {}
        for key, st in pf.stages.items():
            hard = hard_deadline_hours(pf.sc, st.workload)
            due = horizon if math.isinf(hard) else ticks_down(hard)
            ok = [c for c in st.choices if c.release + c.duration <= due] or st.choices
            if ok:
                self.floor[key] = min(c.value for c in ok)
                self.fastest[key] = min(c.release + c.duration for c in ok)
        self.penalty: dict[str, tuple[int, float]] = {}
        """workload -> (due tick, USD a day late) of a soft deadline"""
        k_cost = objective.global_weight(COST)
        for w in pf.sc.workloads:
            if k_cost and w.deadline is not None and w.deadline_policy != "hard":
                self.penalty[w.id] = (due_ticks(pf, w.deadline), w.late_penalty_usd_per_day)
        self.stages_of: dict[str, list[StageKey]] = {}
        for key in self.sol:
            self.stages_of.setdefault(key[0], []).append(key)
        self.on: dict[str, dict[StageKey, tuple[int, int, int]]] = {}
        """resource key -> the stages booked on it: (start, end, chips)"""
        self.res_of: dict[StageKey, str] = {}
        self._index(self.sol)
        for i, (res, s, e, n) in enumerate(held.bookings):
            self.on.setdefault(res, {})[(HELD, str(i))] = (s, e, n)

    # --- bookkeeping ---------------------------------------------------------------------------
    def _index(self, keys: Solution) -> None:
        for key, (idx, s) in keys.items():
            old = self.res_of.pop(key, None)
            if old is not None:
                self.on[old].pop(key, None)
            if idx is not None:
                c = self.pf.stages[key].choices[idx]
                self.on.setdefault(c.option.key, {})[key] = (s, s + c.duration, c.est.chips)
                self.res_of[key] = c.option.key

    def score(self, v: Value | None = None) -> Score:
        v = v or self.value
        return Score(v.unplaced, v.primary / self.objective.model_scale)

    def adopt(self, sol: Solution) -> bool:
        """Take ``sol`` (from the whole-portfolio search) when it is better."""
        v = evaluate(self.pf, self.objective, sol, self.tie_unit, self.held)
        if v >= self.value:
            return False
        self.sol, self.value = dict(sol), v
        held_on = {res: {k: v for k, v in b.items() if k[0] == HELD} for res, b in self.on.items()}
        self.on, self.res_of = {res: dict(b) for res, b in held_on.items() if b}, {}
        self._index(self.sol)
        self.stats.adopted += 1
        return True

    # --- one round -----------------------------------------------------------------------------
    def step(self, seconds: float, stop_at: float, clock: Callable[[], float]) -> bool:
        """One neighbourhood, solved in at most ``seconds`` of deterministic time and never
        past ``stop_at``; True when the incumbent improved."""
        # a stage placed outweighs any saving: while some could be, half the rounds try
        if self.rng.random() < 0.5 and self._unplaced() is not None:
            kind = "unplaced"
        else:
            kind = self.rng.choices(KINDS, weights=[self.weights[k] for k in KINDS])[0]
        free = self._pick(kind) or self._pick("slice")
        self.stats.rounds += 1
        self.stats.by_kind[kind].rounds += 1
        if not free:
            return False
        left = stop_at - clock()
        if left <= 0.05:
            return False
        better = self._solve(free, min(seconds, left), left)
        self.weights[kind] = 0.8 * self.weights[kind] + 0.2 * (4.0 if better else 0.5)
        if better:
            self.stats.improved += 1
            self.stats.by_kind[kind].improved += 1
        return better

    def _solve(self, free: set[str], seconds: float, wall: float) -> bool:
        before, t0 = self.value, time.monotonic()
        status, piece, took = self._piece(free, seconds, wall, reserve=SETTLE_S)
        # pieces grow while proved within half the target time, and shrink when they take
        # more than twice it or are not proved: many rounds of pieces CP-SAT closes beat a few
        # of pieces it cannot, whatever the machine's speed
        if status == cp_model.OPTIMAL and took < 0.5 * PIECE_TARGET_S:
            self.stats.size = min(MAX_SIZE, int(self.stats.size * 1.25) + 1)
        elif status != cp_model.OPTIMAL or took > 2 * PIECE_TARGET_S:
            self.stats.size = max(MIN_SIZE, int(self.stats.size * 0.8))
        if piece is None:
            self.stats.no_solution += 1
            return False
        placed = {k[0] for k, (i, _) in piece.items() if i is not None and self.sol[k][0] is None}
        old = self.sol
        if not self._accept(piece):
            return False
        if self.value.unplaced < before.unplaced and status != cp_model.OPTIMAL:
            # those the piece made dearest first: the time left may not reach them all
            rise = {w: self._own(w, self.sol) - self._own(w, old) for w in free - placed}
            self._settle(sorted(rise, key=lambda w: (-rise[w], w)), t0 + wall)
        return True

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

    def _settle(self, workloads: list[str], end: float) -> None:
        """After a piece placed a stage without being proved optimal: each of its other
        workloads alone, in the order given, then all of them together, the rest of the plan
        held. A stage placed outweighs any cost, so the first answer that places one is taken
        however it moved the others: on seed 20003 CP-SAT's first such answer (all it found
        in 6 s) sent nine rivals decades past their soft deadlines, +$2.03B, which this brings
        back to +$1.4M in about two seconds. Each solve at most ``SETTLE_S`` of wall time
        (proving the nine together took 3.8 s for nothing more), never past ``end``
        (``time.monotonic``)."""
        for group in [*([w] for w in workloads), workloads]:
            left = end - time.monotonic()
            if left <= 0.05 or (self.stop is not None and self.stop.is_set()):
                return
            _, piece, _took = self._piece(set(group), SETTLE_SECONDS, min(left, SETTLE_S))
            if piece is not None and self._accept(piece):
                self.stats.settled += 1

    def _accept(self, piece: Solution) -> bool:
        """Take ``piece`` into the incumbent when the whole plan's value improves."""
        trial = {**self.sol, **piece}
        v = evaluate(self.pf, self.objective, trial, self.tie_unit, self.held)
        if v >= self.value:
            return False
        self.sol, self.value = trial, v
        self._index(piece)
        return True

    def _piece(
        self, free: set[str], seconds: float, wall: float, reserve: float = 0.0
    ) -> tuple[int, Solution | None, float]:
        """CP-SAT on the stages of ``free``, every other booking held, warm-started from the
        incumbent: (status, the piece's slots or None, wall seconds). Its wall limit leaves
        ``reserve`` of ``wall`` unused, unless that would leave the piece less than it."""
        pf = self.pf
        keys = [k for w in sorted(free) for k in self.stages_of.get(w, [])]
        resources = {c.option.key for k in keys for c in pf.stages[k].choices}
        fixed: list[Booking] = [
            (res, s, e, n)
            for res in resources
            for key, (s, e, n) in self.on.get(res, {}).items()
            if key[0] not in free
        ]
        floor = 0
        if self.objective.tick_weight(TIME):
            floor = max(
                [self.held.floor]
                + [
                    s + pf.stages[k].choices[i].duration
                    for k, (i, s) in self.sol.items()
                    if i is not None and k[0] not in free
                ]
            )
        pm = build(pf, self.objective, horizon=self.horizon, only=free, fixed=fixed, min_span=floor)
        add_hints(pm, {k: self.sol[k] for k in pm.x})
        solver = new_solver()
        p = solver.parameters
        p.num_workers = self.workers
        p.random_seed = self.seed + self.stats.rounds
        p.max_deterministic_time = max(0.05, seconds)
        budget = wall - reserve if wall > 2 * reserve else wall
        p.max_time_in_seconds = max(0.05, min(budget, PIECE_WALL_S))
        p.cp_model_probing_level = 0
        p.symmetry_level = 0
        status = solve_stoppable(solver, pm.model, self.stop)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return status, None, solver.wall_time
        return status, from_solver(pm, solver), solver.wall_time

    # --- neighbourhoods ------------------------------------------------------------------------
    def _pick(self, kind: str) -> set[str]:
        if kind == "unplaced":
            return self._around(self._unplaced())
        if kind == "regret":
            return self._around(self._regretful())
        if kind == "window":
            return self._window()
        if kind == "guided":
            return self._guided()
        return self._slice()

    def _unplaced(self) -> str | None:
        stuck = sorted(
            {k[0] for k, (i, _) in self.sol.items() if i is None and k in self.placeable}
        )
        if self.most_placed:
            stuck = [w for w in stuck if self._placed(w) < self.most_placed.get(w, math.inf)]
        return self.rng.choice(stuck) if stuck else None

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
        while it could use them, up to the neighbourhood's size."""
        if target is None:
            return set()
        free = {target}
        count = len(self.stages_of.get(target, []))
        rivals: set[str] = set()
        for key in self.stages_of.get(target, []):
            st = self.pf.stages[key]
            idx, _ = self.sol[key]
            mine = st.choices[idx].value if idx is not None else None
            due = self._due(key)
            for c in st.choices:
                if mine is not None and c.value >= mine and not self.timed:
                    continue
                for other, (s, _e, _n) in self.on.get(c.option.key, {}).items():
                    if other[0] not in (target, HELD) and s < due:
                        rivals.add(other[0])
        order = sorted(rivals)
        self.rng.shuffle(order)
        # rivals without a hard deadline first: they are the ones that can make room
        order.sort(
            key=lambda w: (
                self.pf.sc.workload(w).deadline_policy == "hard"
                and self.pf.sc.workload(w).deadline is not None
            )
        )
        for w in order:
            n = len(self.stages_of.get(w, []))
            if count + n > self.stats.size:
                continue
            free.add(w)
            count += n
        return free

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
        puts mostly elsewhere, and the runs as wide on its pool and the LP's, earliest first."""
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
        for res in [wide[key], *(r for _, r in theirs)]:
            for other in sorted(
                (k for k, r in wide.items() if r == res), key=lambda k: (self.sol[k][1], k)
            ):
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
