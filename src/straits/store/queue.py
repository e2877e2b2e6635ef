"""Plan jobs as a durable queue in the database (SQLite or PostgreSQL).

A job is a row of ``plans``. Its life:

``queued`` --claim--> ``running`` (leased to one worker until ``lease_until``) --> ``done`` |
``failed`` (with its reason) | ``cancelled``; a running job whose lease runs out goes back to
``queued`` (attempt 2, 3, ...) or, after ``max_attempts``, to ``failed`` with the reason.

* **claim**: one transaction picks a queued job whose rules match the worker's, marks it
  running, leased to the worker, and counts the attempt. Claims take turns (a transaction
  advisory lock, :data:`QUEUE_LOCK`, on PostgreSQL; the write lock on SQLite), so each weighs
  the turns with every earlier claim counted. Tenants take turns
  (``store.turns.serving_order``): the oldest job of the tenant with the fewest jobs running,
  then the one whose last job started longest ago, so one tenant's thousand submissions do
  not hold up another's one;
* **heartbeat**: the worker renews its lease and writes its progress; the answer says whether
  the job was cancelled or is no longer the worker's (another worker reclaimed it);
* **finish / fail**: fenced on (job, worker, attempt), so a worker that lost its lease (paused,
  partitioned) can never overwrite a result, and the plan and its ledger entry are written in
  one transaction;
* **reap**: any server or worker, every few seconds, requeues or fails jobs whose lease ran out
  (at once when the lease belongs to a dead process on this host), cancels leaseless jobs that
  were asked to stop, and fails jobs nobody took within the queue timeout.

Every state change is one transaction through :meth:`Store.transaction` (retried on lock
contention).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.orm import Session

from straits.plan import Plan
from straits.rules import RuleSet
from straits.store.db import Store
from straits.store.enqueue import enqueue as enqueue
from straits.store.enqueue import enqueue_once as enqueue_once
from straits.store.ledger import Entry, append, canonical, digest
from straits.store.records import plan_body
from straits.store.tables import AlteredRowError, PlanRow, ScenarioRow, utcnow
from straits.store.turns import next_job, runnable, serving_order

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")
Beat = Literal["ok", "cancel", "lost"]


@dataclass(frozen=True)
class QueuePolicy:
    """How long leases last and how often a job may be retried."""

    lease_s: float = 30.0
    """A running job's worker must renew its lease within this many seconds."""
    max_attempts: int = 3
    """A job whose worker stops responding this many times is failed, not retried."""
    queue_timeout_s: float = 24 * 3600.0
    """A job no worker has taken within this many seconds is failed."""


@dataclass(frozen=True)
class Claim:
    """A job leased to a worker: what it needs to plan."""

    plan_id: str
    worker: str
    attempt: int
    tenant: str
    scenario: dict[str, Any]
    options: dict[str, Any]
    record: bool


@dataclass
class Reaped:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed or self.cancelled)


def here() -> str:
    """This host, with the inode of its PID namespace where Linux tells it (``host~ns``).

    Containers of one host that share its hostname (Kubernetes pods with ``hostNetwork``,
    Docker's ``--network host``) each number their processes from 1: by hostname alone, a
    server took a worker of another container for a dead process of its own (no such pid
    in its namespace) and requeued that worker's running job at once, every 5 s, until the
    job failed after its attempt limit."""
    host = socket.gethostname()[:100]
    try:
        return f"{host}~{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:  # not Linux, or no /proc
        return host


def worker_id() -> str:
    """``host:pid:nonce`` (``host`` as :func:`here` gives it), unique per worker instance."""
    return f"{here()}:{os.getpid()}:{os.urandom(3).hex()}"


def _now(s: Session) -> dt.datetime:
    """The database's clock on PostgreSQL (workers on several machines compare leases on one
    clock, whatever their own clocks say); this machine's on SQLite (every process sharing the
    file runs here)."""
    if s.get_bind().dialect.name == "postgresql":
        value = s.execute(text("SELECT clock_timestamp()")).scalar_one()
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC)
    return utcnow()


def _aware(t: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return t if t is None or t.tzinfo else t.replace(tzinfo=dt.UTC)


# --- submitting and cancelling -------------------------------------------------------------------
def cancel(store: Store, plan_id: str) -> str | None:
    """Cancel a job (a running one by asking its worker): the status after; None: no such job."""
    return None if (found := cancel_job(store, plan_id)) is None else found[1]


def cancel_job(store: Store, plan_id: str) -> tuple[str, str] | None:
    """:func:`cancel`, returning the status found under the lock and the one after: a job
    cancelled first by another request is found ``cancelled`` (both cancels answered 200)."""

    def work(s: Session) -> tuple[str, str] | None:
        # under the row's lock (PostgreSQL; SQLite's write lock is held already): read plainly,
        # a job being finished or claimed looked running or queued, and the write below, which
        # waited for that transaction, then marked a done plan as asked to stop (202) or
        # overwrote a claim with `cancelled`
        row = s.get(PlanRow, plan_id, with_for_update=True)
        if row is None:
            return None
        before = row.status
        if row.status == "queued":
            row.status, row.finished_at = "cancelled", _now(s)
            row.error, row.lease_until, row.cancel_requested = "cancelled", None, True
        elif row.status == "running":
            row.cancel_requested = True
        return before, row.status

    return store.transaction(work)


# --- the worker's side ---------------------------------------------------------------------------
#: the transaction lock claims take turns on (PostgreSQL; SQLite's write lock does the same)
QUEUE_LOCK = 0x5354524149545302

#: attempts are counted in an INTEGER column: a stored count at its maximum is an altered row
MAX_ATTEMPTS_STORED = 2**31 - 1


def claim(store: Store, worker: str, rules_digest: str | None, policy: QueuePolicy) -> Claim | None:
    """Lease a queued job this worker's rules can run (tenants in :func:`serving_order`, each
    tenant's oldest job first), or None."""

    def work(s: Session) -> Claim | Literal["unreadable"] | None:
        pg = store.dialect == "postgresql"
        if pg:  # each statement reads a snapshot of its own: a claim that weighed the turns
            # while another committed its claim then took the next job of the tenant just
            # served (two workers serving one tenant while another waited); claims are short
            s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": QUEUE_LOCK})
        q = (
            select(PlanRow)
            .where(PlanRow.status == "queued", runnable(PlanRow, rules_digest))
            .order_by(PlanRow.created_at, PlanRow.id)
            .limit(1)
        )
        if pg:
            q = q.with_for_update(skip_locked=True)
        row = None
        # each waiting tenant's oldest job in turn (one another worker is claiming: that
        # tenant's turn is taken, the next tenant's job is tried), then the oldest of all.
        # Built as tried: the 64 statements built up front took 12 ms of a 22 ms claim
        order = serving_order(s, rules_digest)
        turns = (next_job(t, rules_digest, postgresql=pg) for t in order)
        for tried in itertools.chain(turns, [q]):
            try:
                row = s.scalars(tried).first()
            except AlteredRowError:  # a time or count Straits never writes: fail it, go on
                _fail_altered(s, s.scalars(tried.with_only_columns(PlanRow.id)).first(), _now(s))
                return "unreadable"
            if row is not None:
                break
        if row is None:
            return None
        now = _now(s)
        if not 0 <= row.attempts < MAX_ATTEMPTS_STORED or not isinstance(row.tenant, str):
            # a count no Straits writes; at PostgreSQL's INTEGER maximum the increment below
            # failed every claim ('integer out of range'), so no worker took the jobs behind it.
            # No tenant (its NOT NULL dropped): a plan nobody may read, a ledger entry refused
            _fail_altered(s, row.id, now)
            return "unreadable"
        if row.ledger_seq is not None:  # recorded, then set back to queued by hand: planned
            # again, it was recorded a second time (two entries for one plan id)
            row.status, row.finished_at, row.lease_until = "failed", now, None
            row.error = (
                f"it was recorded before (ledger entry {row.ledger_seq}) and set back to "
                "queued (the database was altered); not planned again: submit the scenario again"
            )
            return "unreadable"
        try:
            options = json.loads(row.options)
            # the body alone: the whole row read, a scenario's other column Straits never
            # writes (created_at = 'garbage', a BLOB name) failed every claim, this job first
            # in line, so no worker took any job
            body = s.scalar(
                select(ScenarioRow.body).where(ScenarioRow.digest == row.scenario_digest)
            )
            doc = json.loads(body) if body is not None else None
            if not isinstance(options, dict) or not isinstance(doc, dict):
                raise ValueError("not an object")
            if digest(doc) != row.scenario_digest:  # content-addressed: it was rewritten
                raise ValueError("not the scenario submitted")
        except (ValueError, RecursionError, AlteredRowError):  # an altered database: fail
            # the job, say why (JSON nested deeper than Python parses raised out of every
            # claim, the job first in line, so no worker took any job)
            row.status, row.finished_at = "failed", now
            row.error = (
                "its stored scenario or options are missing or unreadable (the "
                "database was altered); submit the scenario again"
            )
            return "unreadable"
        row.status, row.worker, row.attempts = "running", worker, row.attempts + 1
        row.started_at, row.heartbeat_at = now, now
        row.lease_until = now + dt.timedelta(seconds=policy.lease_s)
        row.progress = canonical(
            {"elapsed_s": 0.0, "attempt": row.attempts, "text": "estimating and checking options"}
        )
        return Claim(row.id, worker, row.attempts, row.tenant, doc, options, bool(row.record))

    while True:
        got = store.transaction(work)
        if got != "unreadable":
            return got


def _mine(s: Session, c: Claim) -> PlanRow | None:
    # read under the row's lock (PostgreSQL; SQLite's write lock is held already): read
    # plainly, a row another transaction was finishing looked still running, and the write
    # that followed waited for that transaction, then undid it (a worker stopping gave back a
    # plan being stored at that moment: queued again, planned twice, two ledger entries)
    row = s.get(PlanRow, c.plan_id, with_for_update=True)
    if (
        row is None
        or row.status != "running"
        or row.worker != c.worker
        or row.attempts != c.attempt
    ):
        return None
    return row


def heartbeat(store: Store, c: Claim, policy: QueuePolicy, progress: dict[str, Any] | None) -> Beat:
    """Renew the lease and store the progress: ``ok``; ``cancel`` when the job was asked to
    stop; ``lost`` when it is no longer this worker's."""

    def work(s: Session) -> Beat:
        row = _mine(s, c)
        if row is None:
            return "lost"
        now = _now(s)
        row.heartbeat_at, row.lease_until = now, now + dt.timedelta(seconds=policy.lease_s)
        if progress is not None:
            row.progress = canonical({**progress, "attempt": c.attempt})
        return "cancel" if row.cancel_requested else "ok"

    return store.transaction(work)


def finish(store: Store, c: Claim, plan: Plan, rules: RuleSet) -> tuple[bool, Entry | None]:
    """Store the plan (and append it to the ledger when the job asks) in one transaction.
    (False, None) when the job is no longer this worker's: nothing is written. A job asked to
    stop meanwhile ends ``cancelled`` and its plan is not recorded."""

    def work(s: Session) -> tuple[bool, Entry | None]:
        row = _mine(s, c)
        if row is None:
            return False, None
        now = _now(s)
        row.lease_until, row.progress, row.finished_at = None, None, now
        if row.cancel_requested:
            row.status, row.error = "cancelled", "cancelled while planning"
            return True, None
        entry = None
        if row.record:
            body = plan_body(row.scenario_digest, json.loads(row.options), plan, rules, row.id)
            entry = append(s, tenant=row.tenant, actor=row.actor, kind="plan", body=body)
            row.ledger_seq = entry.seq
        row.status, row.result = "done", canonical(plan.to_json())
        return True, entry

    return store.transaction(work, ledger=c.record)


def fail(store: Store, c: Claim, reason: str) -> bool:
    """Fail the job with ``reason`` (``cancelled`` if it was asked to stop); False when it is
    no longer this worker's."""

    def work(s: Session) -> bool:
        row = _mine(s, c)
        if row is None:
            return False
        row.lease_until, row.finished_at = None, _now(s)
        row.status = "cancelled" if row.cancel_requested else "failed"
        row.error = "cancelled while planning" if row.cancel_requested else reason
        return True

    return store.transaction(work)


def release(store: Store, c: Claim, why: str) -> bool:
    """Give a running job back to the queue without counting the attempt (a worker shutting
    down): the next worker starts it again at once."""

    def work(s: Session) -> bool:
        row = _mine(s, c)
        if row is None:
            return False
        if row.cancel_requested:
            row.status, row.error, row.finished_at = "cancelled", "cancelled", _now(s)
        else:
            row.status, row.attempts = "queued", max(0, row.attempts - 1)
            row.progress = canonical({"text": f"requeued: {why}"})
        row.lease_until, row.worker = None, None
        return True

    return store.transaction(work)


def retry(store: Store, c: Claim, why: str, policy: QueuePolicy) -> bool:
    """Give a job back after an attempt that failed for a reason that may pass (its result
    could not be stored): queued again with the attempt counted, or failed with ``why`` once
    its attempts are spent. Left to its lease instead, it was failed as a worker that "stopped
    responding", which it had not. False when the job is no longer this worker's."""

    def work(s: Session) -> bool:
        row = _mine(s, c)
        if row is None:
            return False
        now = _now(s)
        tried = f"attempt {row.attempts} of {policy.max_attempts}"
        if row.cancel_requested:
            row.status, row.error, row.finished_at = "cancelled", "cancelled", now
        elif row.attempts >= policy.max_attempts:
            row.status, row.finished_at = "failed", now
            row.error = f"{why} ({tried}); not retried"
        else:
            row.status = "queued"
            row.progress = canonical({"text": f"requeued: {why} ({tried})"})
        row.lease_until, row.worker = None, None
        return True

    return store.transaction(work)


# --- reaping -------------------------------------------------------------------------------------
def _dead_here(worker: str | None, me: str) -> bool:
    """Whether ``worker`` ran on this host in a process that no longer exists."""
    if not worker or worker == me:
        return False
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    # a bare hostname is an id from before namespaces were named (a rolling upgrade)
    if host not in (here(), socket.gethostname()[:100]) or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, another user's
        return False
    return False


def reap(
    store: Store, policy: QueuePolicy, *, me: str = "", rules_digest: str | None = None
) -> Reaped:
    """Requeue or fail running jobs whose worker stopped renewing its lease (or died on this
    host), finish cancelled leaseless jobs, and fail jobs queued past the queue timeout. A
    read finds the candidates first, so the usual case takes no write lock."""

    def due(row: PlanRow, now: dt.datetime) -> bool:
        if row.status == "queued":
            created = _aware(row.created_at) or now
            return (now - created).total_seconds() > policy.queue_timeout_s
        lease = _aware(row.lease_until)
        return lease is None or lease <= now or _dead_here(row.worker, me)

    altered: list[str] = []
    with store.session() as s:
        now = _now(s)
        candidates = []
        # running jobs (a few per worker) and queued ones old enough to time out: every queued
        # job read one by one made each reap of a queue of 50,000 take 25 s, every 5 s, in
        # every server and worker, holding up the heartbeats of their running jobs (an altered
        # queued row is failed by the claim that meets it first in line)
        cutoff = now - dt.timedelta(seconds=policy.queue_timeout_s)
        active = or_(
            PlanRow.status == "running",
            and_(PlanRow.status == "queued", PlanRow.created_at <= cutoff),
        )
        for plan_id in s.scalars(select(PlanRow.id).where(active)):
            try:  # one row at a time: an altered row must not stop the reaping of the others
                row = s.get(PlanRow, plan_id)
            except AlteredRowError:
                altered.append(plan_id)
                continue
            if row is not None and due(row, now):
                candidates.append(plan_id)
        candidates.sort()
    if not candidates and not altered:
        return Reaped()

    def work(s: Session) -> Reaped:
        out = Reaped()
        now = _now(s)
        for plan_id in altered:
            _fail_altered(s, plan_id, now)
            out.failed.append(plan_id)
        q = select(PlanRow).where(PlanRow.id.in_(candidates)).order_by(PlanRow.id)
        if store.dialect == "postgresql":
            q = q.with_for_update(skip_locked=True)
        for row in s.scalars(q):
            if row.status not in ACTIVE or not due(row, now):
                continue  # another worker got there first, or its lease was renewed
            if row.status == "queued":
                row.status, row.finished_at = "failed", now
                row.error = _unclaimed_reason(row, policy, rules_digest)
                out.failed.append(row.id)
                continue
            who = row.worker or "an earlier server"
            if row.cancel_requested:
                row.status, row.error, row.finished_at = "cancelled", "cancelled", now
                row.lease_until = None
                out.cancelled.append(row.id)
            elif row.attempts >= policy.max_attempts:
                row.status, row.finished_at, row.lease_until = "failed", now, None
                row.error = (
                    f"its worker stopped responding {row.attempts} times (last: {who}); "
                    "the job may crash or exhaust the planner, so it is not retried"
                )
                out.failed.append(row.id)
            else:
                row.status, row.lease_until = "queued", None
                row.progress = canonical(
                    {
                        "text": f"requeued: worker {who} stopped responding (attempt "
                        f"{row.attempts} of {policy.max_attempts})"
                    }
                )
                out.requeued.append(row.id)
        return out

    return store.transaction(work)


def _fail_altered(s: Session, plan_id: str | None, now: dt.datetime) -> None:
    """End a job whose row cannot be read (a time or count no Straits writes): it would stay
    queued or running forever, and, first in line, keep every worker from the jobs behind
    it. Its other columns stay as they are, for whoever looks into the alteration."""
    if plan_id is None:
        return
    s.execute(
        update(PlanRow)
        .where(PlanRow.id == plan_id)
        .values(
            status="failed",
            finished_at=now,
            lease_until=None,
            error="its stored row holds values Straits never writes (the database was altered); "
            "submit the scenario again",
        )
    )


def _unclaimed_reason(row: PlanRow, policy: QueuePolicy, rules_digest: str | None) -> str:
    hours = policy.queue_timeout_s / 3600
    limit = f"{hours:g} h" if hours >= 1 else f"{policy.queue_timeout_s:g} s"
    if row.rules_digest and rules_digest and row.rules_digest != rules_digest:
        return (
            f"no worker with the rules it was submitted under (digest "
            f"{row.rules_digest[:12]}) took it within {limit}"
        )
    return f"no worker took it within {limit}"
