"""What the plan-queue tests share (test_jobs, test_queue_turns, test_jobs_altered): the
queue policy they run under, a greedy job's options and the shipped rules' digest."""

from __future__ import annotations

from straits.rules import ruleset
from straits.store.queue import QueuePolicy

POLICY = QueuePolicy(lease_s=30, max_attempts=3, queue_timeout_s=3600)
GREEDY = {"solver": "greedy", "objective": None, "regime": None, "time_limit": 5.0, "seed": 0}


def digest() -> str:
    return ruleset().digest
