"""Large-neighbourhood search around the greedy plan: CP-SAT on small pieces, many times.

On a large portfolio CP-SAT cannot improve the whole model in the time a person waits; it can
solve a piece of it to optimality in a fraction of a second. Each round frees a *neighbourhood*
(a few workloads, every stage of each, so their deadlines, budgets and precedence stay inside
the piece), holds every other booking fixed, solves that piece warm-started from the incumbent,
and keeps the result when the whole plan's objective (:func:`~straits.plan.solution.evaluate`)
improves. Neighbourhoods are chosen where improvement is likely:

* ``unplaced``: a workload with a stage that could run alone but is unplaced, and its rivals,
  those in its way first (:meth:`~straits.plan.lns_pick.Picker._around`); not one that has as
  many stages placed as its own optimum alone places: no plan places more;
* ``regret``: a workload that pays most above its stages' best choices, and its rivals (the
  workloads booked on the pools of its better choices when it could use them);
* ``window``: the bookings of one pool around one booking, and the workloads that want it;
* ``slice``: workloads running in one slice of time;
* ``guided`` (only with the LP bound's answer, :mod:`straits.plan.lp_bound`): a costly run
  wider than half its pool that the LP puts mostly on other pools, with the runs of any width
  booked on the LP's pools for it before its deadline (most chip-time first: a run as wide as
  its pool cannot start while any other runs there) and the runs as wide booked on its own
  pool. Which pools must be re-packed together is what the LP's answer says;
* ``split`` (only with the LP's per-workload shares): the workloads furthest above their LP
  share, with the widest runs booked on the pools of their own optima.

The pickers are :mod:`straits.plan.lns_pick`'s. An ``unplaced`` workload whose stages several
rounds in a row failed to place is left out for exponentially longer (``BACKOFF_AFTER``).

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
    ModelTooLarge,
    Score,
    add_hints,
    build,
    new_solver,
)
from straits.plan.horizon import due_ticks
from straits.plan.lns_pick import HELD, Picker
from straits.plan.lns_stats import KINDS, LnsStats
from straits.plan.objectives import COMPLETION, COST, TIME, Objective
from straits.plan.portfolio import Portfolio
from straits.plan.retime import NOTHING_HELD, Held
from straits.plan.schedule import StageKey, hard_deadline_hours
from straits.plan.solution import Solution, Value, evaluate, from_solver
from straits.plan.stoppable import solve_stoppable
from straits.plan.ticks import ticks_down

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
#: wall seconds a piece leaves for settling its other workloads when it places a stage
#: (:meth:`NeighbourhoodSearch._settle`), the most a settling solve takes, and its
#: deterministic seconds
SETTLE_S = 1.5
SETTLE_SECONDS = 0.5
#: the most wall-clock seconds a ``split`` piece may take: its limit doubles from
#: ``PIECE_WALL_S`` while its pieces improve the plan unproved, and falls back when one does not
SPLIT_WALL_S = 24.0


class NeighbourhoodSearch(Picker):
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
        shares: dict[str, float] | None = None,
        own_pools: dict[str, dict[str, int]] | None = None,
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
        #: wall seconds the last piece's model took to build: a piece is not started where
        #: the time left would not cover another such build (a dense stage graph's took 8 s)
        self.last_build = 0.0
        self.sol: Solution = dict(start)
        self.tie_unit = tie_unit
        """the whole model's tie-break unit, so values compare as its objective does"""
        self.held = held
        """workloads kept where the greedy plan put them: never freed"""
        self.value = evaluate(pf, objective, self.sol, tie_unit, held)
        self.stats = LnsStats()
        self.too_large: str | None = None
        """why the search stopped early: a piece's objective past 64-bit integers (whose
        whole model, above ``WHOLE_MAX_STAGES`` not built, would have been as well)"""
        self.weights = dict.fromkeys(KINDS, 1.0)
        self.guide = guide or {}
        """the LP bound's answer: per stage, the share of it each pool takes"""
        self.weights["guided"] = 4.0 if self.guide else 0.0  # with an answer, look there first
        self.shares = shares or {}
        self.own_pools = own_pools or {}
        self.weights["split"] = 4.0 if self.shares else 0.0
        self.split_wall = PIECE_WALL_S
        """the next ``split`` piece's wall limit (``SPLIT_WALL_S``)"""
        self._tried, self._led, self._most = set(), set(), {}
        self._fails, self._retry = {}, {}
        self._target: str | None = None
        self._open = False
        """the last piece was not proved optimal"""
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
        self._target = None
        free = self._pick(kind) or self._pick("slice")
        self.stats.rounds += 1
        self.stats.by_kind[kind].rounds += 1
        if not free:
            return False
        left = stop_at - clock()
        if left <= 0.05 + self.last_build:
            return False
        target, cap = self._target, self.split_wall if kind == "split" else PIECE_WALL_S
        had = self._placed(target) if target is not None else 0
        if cap != PIECE_WALL_S:
            seconds *= cap / PIECE_WALL_S
        try:
            better = self._solve(free, min(seconds, left), left, cap)
        except ModelTooLarge as exc:
            # a piece's objective never exceeds the whole model's, whose own ModelTooLarge
            # let the greedy plan stand at once: the search stops here, the plan it has kept
            self.too_large = str(exc)
            return False
        if kind == "unplaced" and target is not None:
            self._tried_unplaced(target, self._placed(target) > had)
        if kind == "split":  # more time while its pieces improve without a proof
            self.split_wall = min(SPLIT_WALL_S, 2 * cap) if better and self._open else PIECE_WALL_S
        self.weights[kind] = 0.8 * self.weights[kind] + 0.2 * (4.0 if better else 0.5)
        if better:
            self.stats.improved += 1
            self.stats.by_kind[kind].improved += 1
        return better

    def _solve(
        self, free: set[str], seconds: float, wall: float, cap: float = PIECE_WALL_S
    ) -> bool:
        before, t0 = self.value, time.monotonic()
        status, piece, took = self._piece(free, seconds, wall, reserve=SETTLE_S, cap=cap)
        self._open = status != cp_model.OPTIMAL
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
        self,
        free: set[str],
        seconds: float,
        wall: float,
        reserve: float = 0.0,
        cap: float = PIECE_WALL_S,
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
        began = time.monotonic()
        pm = build(pf, self.objective, horizon=self.horizon, only=free, fixed=fixed, min_span=floor)
        add_hints(pm, {k: self.sol[k] for k in pm.x})
        # the build is part of the piece's wall time: a 300-stage workload of 45,000 edges
        # took 8 s to build, then its 20 s of search, 1.3 x the command's limit (a fresh-eye
        # attack)
        self.last_build = built = time.monotonic() - began
        wall -= built
        if wall <= 0.05:
            return int(cp_model.UNKNOWN), None, built
        solver = new_solver()
        p = solver.parameters
        p.num_workers = self.workers
        # CP-SAT's seed is an int32: the seed a plan may be given (up to 2**31 - 1) plus the
        # round overflowed it, a traceback (a fresh-eye attack)
        p.random_seed = (self.seed + self.stats.rounds) % 2**31
        p.max_deterministic_time = max(0.05, seconds)
        budget = wall - reserve if wall > 2 * reserve else wall
        p.max_time_in_seconds = max(0.05, min(budget, cap))
        p.cp_model_probing_level = 0
        p.symmetry_level = 0
        status = solve_stoppable(solver, pm.model, self.stop)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return status, None, solver.wall_time
        return status, from_solver(pm, solver), solver.wall_time
