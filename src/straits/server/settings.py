"""Server settings, from arguments or the environment."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass

from straits.errors import InputError
from straits.limits import LEASE_RANGE_S, MAX_DATE, MAX_MAX_INPUT_BYTES, MIN_DATE, env_number
from straits.store.audit import PER_MINUTE
from straits.store.queue import QueuePolicy


def _env_int(name: str, default: int, lo: int, hi: int) -> int:
    return int(env_number(name, default, lo, hi, integer=True))


def _env_float(name: str, default: float, lo: float = 0.001, hi: float = 1e9) -> float:
    return env_number(name, default, lo, hi, unit="seconds")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _env_date(name: str) -> dt.date | None:
    """A date as every other date is given (``YYYY-MM-DD``, 2000-01-01 to 2100-12-31):
    ``date.fromisoformat`` also took ``20250601``, ``2025-W23-1`` and year 1, for which the
    SkyPilot hook checked every launch against no rules at all (date51)."""
    value = os.environ.get(name)
    if not value:
        return None
    expected = f"YYYY-MM-DD, {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}"
    try:
        day = dt.date.fromisoformat(value) if _ISO_DATE.fullmatch(value) else None
    except ValueError as exc:  # 2025-02-30 was "not a date Straits plans for", as the CLI's
        # --date was said not to match its form (user64): the day is named as one not there
        raise InputError(
            f"{value!r} is no day of the calendar ({exc})", path=name, expected=expected
        ) from None
    if day is None or not MIN_DATE <= day <= MAX_DATE:
        raise InputError(
            f"{value[:40]!r} is not a date Straits plans for", path=name, expected=expected
        )
    return day


@dataclass(frozen=True)
class Settings:
    max_body_bytes: int = 2 * 1024 * 1024
    """request bodies above this are refused with 413 (STRAITS_MAX_BODY_BYTES)"""
    max_check_requests: int = 1000
    """questions in one /v1/check list"""
    max_workloads: int = 2000
    """workloads in one submitted scenario"""
    max_time_limit: float = 300.0
    """the most seconds a submitted plan may search"""
    plan_workers: int = 1
    """plans solved at once in the server's process; 0: only `straits worker` processes plan
    (STRAITS_PLAN_WORKERS)"""
    policy_date: dt.date | None = None
    """the date launches are checked as of (STRAITS_POLICY_DATE; default: today, UTC)"""
    body_timeout_s: float = 30.0
    """a request body must arrive within this many seconds, else 408
    (STRAITS_BODY_TIMEOUT_S)"""
    write_timeout_s: float = 30.0
    """a client must take some of an answer's waiting bytes within this many seconds, else
    its connection is dropped (STRAITS_WRITE_TIMEOUT_S; server/protocol.py)"""
    write_min_rate: float = 1024.0
    """bytes a second a client must take an answer's waiting bytes at, on average over the time
    they waited, else its connection is dropped; 0: no floor (STRAITS_WRITE_MIN_RATE)"""
    lease_s: float = 30.0
    """a plan's worker renews its lease this often at the latest; a job whose lease runs out
    is resumed by another worker (STRAITS_PLAN_LEASE_S)"""
    max_attempts: int = 3
    """a plan whose worker dies this many times is failed (STRAITS_PLAN_ATTEMPTS)"""
    queue_timeout_s: float = 24 * 3600.0
    """a plan no worker has taken within this many seconds is failed
    (STRAITS_QUEUE_TIMEOUT_S)"""
    audit_per_minute: int = PER_MINUTE
    """refusals of one client kept one by one a minute; the rest are counted in one summary
    row (STRAITS_AUDIT_PER_MINUTE; store/audit.py)"""
    plan_page_cache: int = 32
    """console plan pages of finished plans kept in memory, least recently used dropped
    first; 0: none (STRAITS_PLAN_PAGE_CACHE; web/plan_cache.py)"""
    plan_page_cache_bytes: int = 256 * 1024 * 1024
    """the bytes those pages are made from, at most (STRAITS_PLAN_PAGE_CACHE_BYTES)"""

    @classmethod
    def from_env(cls) -> Settings:
        # the same bounds as the flags (`serve --plan-workers`, `worker --attempts`); a body
        # cap of 0 refused every request, 10^20 workers or attempts overflowed later
        return cls(
            max_body_bytes=_env_int(
                "STRAITS_MAX_BODY_BYTES", cls.max_body_bytes, 1024, MAX_MAX_INPUT_BYTES
            ),
            plan_workers=_env_int("STRAITS_PLAN_WORKERS", cls.plan_workers, 0, 64),
            policy_date=_env_date("STRAITS_POLICY_DATE"),
            body_timeout_s=_env_float("STRAITS_BODY_TIMEOUT_S", cls.body_timeout_s),
            write_timeout_s=_env_float("STRAITS_WRITE_TIMEOUT_S", cls.write_timeout_s),
            write_min_rate=env_number(
                "STRAITS_WRITE_MIN_RATE", cls.write_min_rate, 0, 1 << 30, unit="bytes a second"
            ),
            # as `worker --lease`: a lease shorter than the keeper's beat (1 s) ran out under
            # a live worker, which reaped its own running job and planned it again
            lease_s=_env_float("STRAITS_PLAN_LEASE_S", cls.lease_s, *LEASE_RANGE_S),
            max_attempts=_env_int("STRAITS_PLAN_ATTEMPTS", cls.max_attempts, 1, 100),
            queue_timeout_s=_env_float("STRAITS_QUEUE_TIMEOUT_S", cls.queue_timeout_s),
            audit_per_minute=_env_int(
                "STRAITS_AUDIT_PER_MINUTE", cls.audit_per_minute, 1, 1_000_000_000
            ),
            plan_page_cache=_env_int("STRAITS_PLAN_PAGE_CACHE", cls.plan_page_cache, 0, 100_000),
            plan_page_cache_bytes=_env_int(
                "STRAITS_PLAN_PAGE_CACHE_BYTES", cls.plan_page_cache_bytes, 0, 1 << 40
            ),
        )

    def queue_policy(self) -> QueuePolicy:
        return QueuePolicy(
            lease_s=self.lease_s,
            max_attempts=self.max_attempts,
            queue_timeout_s=self.queue_timeout_s,
        )
