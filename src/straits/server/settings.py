"""Server settings, from arguments or the environment."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


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
    """plans solved at once (each uses the CP-SAT workers of one search)"""
    policy_date: dt.date | None = None
    """the date launches are checked as of (STRAITS_POLICY_DATE; default: today, UTC)"""

    @classmethod
    def from_env(cls) -> Settings:
        return cls(max_body_bytes=_env_int("STRAITS_MAX_BODY_BYTES", cls.max_body_bytes),
                   plan_workers=_env_int("STRAITS_PLAN_WORKERS", cls.plan_workers),
                   policy_date=(dt.date.fromisoformat(os.environ["STRAITS_POLICY_DATE"])
                                if os.environ.get("STRAITS_POLICY_DATE") else None))
