"""One wall-clock budget for a whole command, and where the time went.

``straits plan --time-limit S`` promises an answer within S seconds of wall-clock time, whatever
the machine: loading, rules, estimates, the greedy plan, the search, explanations and output all
draw on one :class:`Deadline`. Each phase asks what is left (:meth:`Deadline.left`), and the
phases that can stop early (the greedy plan, the search, why-not) stop when their share is spent,
keeping back what the phases after them need (:meth:`Deadline.until`). The time is the monotonic
wall clock, not CPU time: a loaded machine gets a plan of lower quality, not a late one.

Every phase's seconds are recorded (:meth:`Deadline.phase`), and counters inside phases (time
spent on estimates and rule checks wherever they happen) with :meth:`Deadline.count`; the plan
JSON carries them as ``timings``.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from straits.model.scenario import Scenario

Clock = Callable[[], float]


class Deadline:
    """A wall-clock budget of ``limit`` seconds from ``start`` (``None``: no limit)."""

    def __init__(
        self, limit: float | None, *, clock: Clock = time.monotonic, start: float | None = None
    ) -> None:
        if limit is not None and not (limit > 0 and math.isfinite(limit)):
            raise ValueError(f"a time limit must be a positive number of seconds, not {limit}")
        self.limit = limit
        self.clock = clock
        self.start = clock() if start is None else start
        self.phases: dict[str, float] = {}
        """phase -> seconds, in the order the phases first ran"""
        self.counters: dict[str, float] = {}
        """work measured across phases (estimates, rule checks) -> seconds, each counted
        once: time in a counter opened inside another goes to the inner one only"""
        self._open: list[list[float]] = []

    @classmethod
    def unlimited(cls) -> Deadline:
        return cls(None)

    @classmethod
    def from_process_start(cls, limit: float | None) -> Deadline:
        """A budget counted from when this process started (a command's limit covers the
        interpreter's start and its imports too); from now where that cannot be read."""
        d = cls(limit)
        ago = process_age()
        if ago is not None:
            d.start -= ago
            d.phases["start"] = ago
        return d

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        """Seconds left (infinite without a limit; never negative)."""
        if self.limit is None:
            return math.inf
        return max(0.0, self.limit - self.elapsed())

    @property
    def expired(self) -> bool:
        return self.left() <= 0.0

    def until(self, reserve: float) -> float:
        """Seconds a phase may use while keeping ``reserve`` seconds back for what follows."""
        return max(0.0, self.left() - reserve)

    def at(self, reserve: float) -> float:
        """The clock reading at which a phase keeping back ``reserve`` seconds must stop."""
        return self.clock() + self.until(reserve) if self.limit is not None else math.inf

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Record the seconds spent in the ``with`` block under ``name`` (added up when a phase
        runs more than once)."""
        t0 = self.clock()
        try:
            yield
        finally:
            self.phases[name] = self.phases.get(name, 0.0) + self.clock() - t0

    @contextmanager
    def count(self, name: str) -> Iterator[None]:
        """Record the seconds of a kind of work that happens inside several phases."""
        t0 = self.clock()
        inner = [0.0]
        self._open.append(inner)
        try:
            yield
        finally:
            self._open.pop()
            spent = self.clock() - t0
            self.counters[name] = self.counters.get(name, 0.0) + spent - inner[0]
            if self._open:
                self._open[-1][0] += spent

    def to_json(self) -> dict[str, Any]:
        return {
            "time_limit_s": self.limit,
            "elapsed_s": round(self.elapsed(), 3),
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            "within": {k: round(v, 3) for k, v in self.counters.items()},
        }


#: seconds kept back for writing each entry of the scenario (a site, pool, availability window,
#: dataset, tenant or workload) that the plan document carries as its ``inputs``: a command
#: cannot stop while it writes, and a scenario of 80,000 datasets and 100 workloads took 7 s to
#: write (10.7 s on a busier machine), past a 25 s `--time-limit` that had kept back 0.25 s for
#: output (its stages' share)
DOCUMENT_ENTRY_S = 0.00012


def document_s(sc: Scenario) -> float:
    """Seconds to keep back for the plan document's copy of ``sc`` (besides its stages')."""
    pools = [p for s in sc.sites for p in s.pools]
    entries = len(sc.sites) + len(pools) + sum(len(p.availability) for p in pools)
    return DOCUMENT_ENTRY_S * (entries + len(sc.datasets) + len(sc.tenants) + len(sc.workloads))


#: a process older than this did more than start a command (a test runner or a server calling
#: the CLI in-process): its budget starts when the command does
MAX_STARTUP_S = 10.0


def process_age() -> float | None:
    """Seconds since this process started (Linux: /proc), or None (not Linux, or a process
    that has lived longer than a command's start takes)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
    except (OSError, ValueError, IndexError):
        return None
    age = uptime - started
    return age if 0.0 <= age < MAX_STARTUP_S else None
