"""Plan workers: claim jobs from the database queue, plan them, keep their leases alive.

A :class:`Worker` runs ``slots`` planner threads and one keeper thread. Each slot claims a
queued job its rules can run, tenants in turn (``straits.store.queue``, ``store.turns``), plans
it and stores the plan (and its ledger entry) in one transaction fenced on its lease. The
keeper renews every running job's lease once a second with its latest progress, stops a search
whose job was cancelled or taken over, and every few seconds reaps jobs whose workers died:
requeued, or failed with the reason after the attempt limit. The planner's progress callback
only copies the search state into memory: it touches no database and cannot raise.

The API server runs one in its own process (``STRAITS_PLAN_WORKERS`` slots, 0 for none: it
still reaps); ``straits worker`` runs one as a process of its own, on this machine or another
that shares the PostgreSQL database, so planning capacity grows with machines and a planner
that crashes takes no API server down.

CP-SAT releases the GIL while it searches, so planning in threads does not stall the API. Each
slot has its own rule set (the rule engine's caches are not shared across threads).
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from straits.errors import InputError, LedgerError, StoreError, StraitsError
from straits.plan import make_plan
from straits.plan.optimizer import SearchState
from straits.rules import RuleSet, ruleset
from straits.store import queue
from straits.store.db import Store
from straits.store.queue import Claim, QueuePolicy
from straits.store.sqlite_file import FileGoneError

log = logging.getLogger("straits.worker")
#: seconds between progress writes (and the keeper's tick)
PROGRESS_EVERY = 1.0
#: seconds between reaps
REAP_EVERY = 5.0
#: beyond its search time limit, how long a job may take (estimating thousands of workloads
#: and the greedy baseline) before its worker gives up on it
GRACE_S = 600.0
#: why a job whose plan could not be stored is tried again (the store's own words, which may
#: name the database, go to the worker's log, not to the job's submitter)
STORE_FAILED = "its result could not be stored (the worker's log has the reason)"
#: why a job whose stored options hold a time limit that is not a number is failed
UNREADABLE = (
    "its stored options are unreadable (the database was altered); submit the scenario again"
)
#: the signals after which a worker or a server gives its running jobs back, the attempt not
#: counted, before it ends: SIGHUP too (a terminal closed, an SSH session dropped), which killed
#: the process at once as a crash, leaving its jobs running until their lease ran out
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def stop_signals() -> tuple[signal.Signals, ...]:
    """The :data:`STOP_SIGNALS` this process is to stop on: all of them, but SIGHUP only when
    it was not started ignoring it (``nohup straits serve`` ignores SIGHUP so that closing the
    terminal leaves the process running; handling SIGHUP anyway stopped it). SIGTERM and
    SIGINT are always handled, as uvicorn handles them."""
    return tuple(
        s
        for s in STOP_SIGNALS
        if s is not signal.SIGHUP or signal.getsignal(s) is not signal.SIG_IGN
    )


def progress_json(state: SearchState, objective: str) -> dict[str, Any]:
    def pair(v: tuple[int, float] | None) -> dict[str, float] | None:
        return None if v is None else {"unplaced": v[0], "score": round(v[1], 2)}

    return {
        "elapsed_s": round(state.elapsed, 1),
        "best": pair(state.best),
        "bound": pair(state.bound),
        "gap": state.gap,
        "text": state.describe(objective),
    }


LEDGER_REFUSED = (
    "refusing to append the plan's ledger entry: the ledger's head or tables were altered, so "
    "the plan was not recorded (an admin's `straits ledger verify` shows where)"
)
"""why a plan whose entry the ledger refused failed (the ledger's own words name the log's head
and entry numbers, which only admins see; the worker's log has them)"""


@dataclass
class _Running:
    claim: Claim
    objective: str
    deadline: float
    stop: threading.Event = field(default_factory=threading.Event)
    progress: dict[str, Any] | None = None
    changed: bool = False
    last_beat: float = field(default_factory=time.monotonic)
    lost: bool = False

    def on_progress(self, state: SearchState) -> bool:
        """The planner's callback: copy the state, say whether to stop. Never raises."""
        try:
            self.progress = progress_json(state, self.objective)
            self.changed = True
        except Exception:  # a bug here must not fail the plan
            log.exception("progress of plan %s could not be read", self.claim.plan_id)
        return self.stop.is_set()


class Worker:
    """Claims and runs plan jobs from ``store`` (see the module docs)."""

    def __init__(
        self,
        store: Store,
        *,
        slots: int = 1,
        rule_dirs: tuple[Path, ...] = (),
        policy: QueuePolicy | None = None,
        poll_s: float = 1.0,
        rules: RuleSet | None = None,
    ) -> None:
        """``rules``: the rule set already read from ``rule_dirs`` (the server's own), so
        the two are one reading of the files, not two that a pack edited in between tells
        apart."""
        self.store = store
        self.slots = max(0, slots)
        self.rule_dirs = tuple(rule_dirs)
        self.policy = policy or QueuePolicy()
        self.poll_s = poll_s
        self.id = queue.worker_id()
        # read once: each slot builds its rule set from these packs (frozen), so every plan is
        # made under the rules whose digest the worker claims jobs by. Each slot read the
        # files again at its first job: packs edited (or Straits upgraded) on disk meanwhile
        # planned jobs promised the old rules under the new ones
        read = rules if rules is not None else ruleset(self.rule_dirs)  # shipped: parsed once
        self._packs = list(read.packs)
        self.rules_digest = read.digest
        self._local = threading.local()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._active: dict[str, _Running] = {}
        self._threads: list[threading.Thread] = []
        self.done = 0
        """Jobs this worker finished (done, failed or cancelled)."""
        self.fatal: FileGoneError | None = None
        """Set when the store's SQLite file was removed or replaced: nothing will succeed
        again in this process (``straits worker`` exits on it)."""

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._safe(self._reap)  # a restarted server's jobs are resumed before new ones start
        for i in range(self.slots):
            self._spawn(self._slot, f"straits-plan-{i}")
        self._spawn(self._keeper, "straits-keeper")
        log.info(
            "worker %s: %d planner slot(s), lease %g s, rules %s",
            self.id,
            self.slots,
            self.policy.lease_s,
            self.rules_digest[:12],
        )

    def _spawn(self, target: Any, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def wake(self) -> None:
        """A job was queued: look now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming, stop every search, and give running jobs back to the queue (not
        counted as attempts), so another worker or the restarted server resumes them."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            running = list(self._active.values())
        for job in running:
            job.lost = True
            job.stop.set()
            try:
                queue.release(self.store, job.claim, f"worker {self.id} shut down")
            except StoreError as exc:  # its lease runs out instead
                log.warning("could not release plan %s: %s", job.claim.plan_id, exc)
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, end - time.monotonic()))

    @property
    def busy(self) -> bool:
        """Whether a slot thread still runs (a planning job that has not ended)."""
        return any(t.is_alive() for t in self._threads)

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._active)

    # --- planner slots ---------------------------------------------------------------------------
    def _rules(self) -> RuleSet:
        rs: RuleSet | None = getattr(self._local, "rules", None)
        if rs is None:
            rs = self._local.rules = RuleSet(self._packs)
        return rs

    def _slot(self) -> None:
        while not self._stop.is_set():
            try:
                c = queue.claim(self.store, self.id, self.rules_digest, self.policy)
            except Exception as exc:  # the database is away: try again later
                if isinstance(exc, FileGoneError):
                    self.fatal = exc
                log.warning("worker %s cannot claim jobs: %s", self.id, exc)
                self._stop.wait(self.poll_s * 5)
                continue
            if c is None:
                self._wake.wait(self.poll_s * (0.5 + random.random()))
                self._wake.clear()
                continue
            try:
                self._run(c)
            except Exception:  # the slot must outlive any one job (it ended the thread: the
                # worker planned with one slot fewer for good, its job left to its lease)
                incident = uuid.uuid4().hex[:12]
                log.exception("plan %s failed (incident %s)", c.plan_id, incident)
                self._fail(c, f"internal error while planning (incident {incident})")

    @staticmethod
    def _limit(options: dict[str, Any]) -> float | None:
        """The job's search time limit; None when its stored options hold no number."""
        try:
            limit = float(options.get("time_limit") or 20.0)
        except (TypeError, ValueError, OverflowError):
            return None
        return None if math.isnan(limit) else limit

    def _run(self, c: Claim) -> None:
        from straits.loading import parse_scenario

        limit = self._limit(c.options)
        if limit is None:  # an altered row: float('abc') raised out of the slot, ending it
            self._fail(c, UNREADABLE)
            with self._lock:
                self.done += 1
            return
        job = _Running(
            c,
            str(c.options.get("objective") or c.scenario.get("objective") or "cost"),
            deadline=time.monotonic() + 2 * limit + GRACE_S,
        )
        with self._lock:
            # stop() takes its list of running jobs under this lock after setting _stop: a job
            # claimed just before that but not yet listed here was neither given back nor
            # stopped (it planned on, up to its time limit, after the worker had stopped)
            stopping = self._stop.is_set()
            if not stopping:
                self._active[c.plan_id] = job
        if stopping:
            try:
                queue.release(self.store, c, f"worker {self.id} shut down")
            except StoreError as exc:  # its lease runs out instead
                log.warning("could not release plan %s: %s", c.plan_id, exc)
            return
        log.info("plan %s: attempt %d on %s", c.plan_id, c.attempt, self.id)
        try:
            sc = parse_scenario(c.scenario, source=f"plan {c.plan_id}", stored=True)
            rules = self._rules()
            plan = make_plan(sc, rules=rules, on_progress=job.on_progress, **c.options)
            if job.lost:
                log.warning("plan %s finished after its lease was lost; result dropped", c.plan_id)
                return
            written, entry = queue.finish(self.store, c, plan, rules)
            if not written:
                log.warning("plan %s was taken over before it finished; result dropped", c.plan_id)
            elif entry is not None:
                log.info("plan %s done, ledger entry %d", c.plan_id, entry.seq)
        except InputError as exc:
            self._fail(c, str(exc))
        except StoreError as exc:  # retried, the attempt counted (its lease runs out if the
            # database is away altogether); the reason in the log only: it may name the database
            log.error("plan %s: cannot store the result: %s", c.plan_id, exc)
            try:
                queue.retry(self.store, c, STORE_FAILED, self.policy)
            except StoreError as again:
                log.warning("plan %s: left to its lease: %s", c.plan_id, again)
        except LedgerError as exc:  # the ledger refused the entry (its head or rows altered)
            # it was "internal error while planning", with a traceback in the log; the job's
            # error is the plan's tenant's to read, so what the ledger said (the log's head,
            # entry numbers and hashes: an admin's only) stays in the log
            log.error("plan %s failed: %s", c.plan_id, exc)
            self._fail(c, LEDGER_REFUSED)
        except StraitsError as exc:  # said as the API and the CLI say it
            log.error("plan %s failed: %s", c.plan_id, exc)
            self._fail(c, str(exc))
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("plan %s failed (incident %s)", c.plan_id, incident)
            self._fail(
                c,
                f"internal error while planning (incident {incident}; the worker's "
                "log has the details)",
            )
        finally:
            with self._lock:
                self._active.pop(c.plan_id, None)
                self.done += 1

    def _fail(self, c: Claim, reason: str) -> None:
        try:
            queue.fail(self.store, c, reason)
        except StoreError as exc:
            log.error("plan %s: cannot record its failure (%s): %s", c.plan_id, reason, exc)

    # --- the keeper: leases, progress, reaping ---------------------------------------------------
    def _keeper(self) -> None:
        last_reap = time.monotonic()
        while not self._stop.wait(PROGRESS_EVERY):
            self._safe(self._beat_all)
            if time.monotonic() - last_reap >= REAP_EVERY:
                last_reap = time.monotonic()
                self._safe(self._reap)

    def _safe(self, fn: Any) -> None:
        from sqlalchemy.exc import OperationalError

        try:
            fn()
        except (StoreError, OperationalError) as exc:  # the database is away: one line each
            # time (every 5 s), not a traceback
            if isinstance(exc, FileGoneError):
                self.fatal = exc
            why = exc.orig if isinstance(exc, OperationalError) else exc
            log.warning("worker %s: %s: %s", self.id, getattr(fn, "__name__", fn), why)
        except Exception:  # the keeper must outlive any one failure
            log.exception("worker %s: %s failed", self.id, getattr(fn, "__name__", fn))

    def _beat_all(self) -> None:
        with self._lock:
            running = [j for j in self._active.values() if not j.lost]
        now = time.monotonic()
        for job in running:
            if now > job.deadline:
                job.lost = True
                job.stop.set()
                self._fail(job.claim, "the planner ran past its time limit and was abandoned")
                continue
            if not job.changed and now - job.last_beat < self.policy.lease_s / 3:
                continue
            job.changed = False
            try:
                beat = queue.heartbeat(self.store, job.claim, self.policy, job.progress)
            except StoreError as exc:
                log.warning("plan %s: lease not renewed: %s", job.claim.plan_id, exc)
                continue
            job.last_beat = now
            if beat == "cancel":
                job.stop.set()
            elif beat == "lost":
                log.warning("plan %s is no longer this worker's; stopping it", job.claim.plan_id)
                job.lost = True
                job.stop.set()

    def _reap(self) -> None:
        reaped = queue.reap(self.store, self.policy, me=self.id, rules_digest=self.rules_digest)
        if reaped:
            log.warning(
                "reaped plans: requeued %s, failed %s, cancelled %s",
                reaped.requeued,
                reaped.failed,
                reaped.cancelled,
            )
            self._wake.set()


def run_worker(
    store: Store, *, slots: int, rule_dirs: tuple[Path, ...], policy: QueuePolicy
) -> None:
    """Run a worker until SIGTERM, SIGINT or SIGHUP, then give its jobs back (``straits
    worker``)."""
    worker = Worker(store, slots=slots, rule_dirs=rule_dirs, policy=policy)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()

    for sig in stop_signals():  # a terminal closing (SIGHUP) is no crash
        signal.signal(sig, on_signal)
    worker.start()
    while not stopping.wait(1.0) and worker.fatal is None:
        pass
    log.info("worker %s stopping: %d running job(s) go back to the queue", worker.id, worker.active)
    worker.stop()
    if worker.fatal is not None:
        # the file it opened is gone: waiting on (two warnings every 5 s) kept a worker
        # alive that could never plan again, so its supervisor never restarted it
        log.error("worker %s stops: %s", worker.id, worker.fatal)
        leave_searches(worker, 1)
        raise worker.fatal
    leave_searches(worker)


def leave_searches(worker: Worker, code: int = 0) -> None:
    """After ``worker`` stopped and gave its jobs back: end the process at once if a plan is
    still being searched. A search that has not reported past its hint cannot be stopped
    (OR-Tools aborts: see WholeModel.stop) and runs on to its own limit; leaving the
    interpreter with CP-SAT's threads running aborted the process at exit ("terminate called
    without an active exception", exit -6, 1 run in 4), and a slot thread still planning
    kept it waiting. Everything that matters is committed by then."""
    searching = [t for t in threading.enumerate() if t.name.startswith("straits-cpsat")]
    if worker.busy or any(t.is_alive() for t in searching):
        log.info("worker %s stopped; its searches are abandoned", worker.id)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
