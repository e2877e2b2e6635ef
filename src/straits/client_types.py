"""The typed answers of the Straits REST API that :class:`straits.client.Client` returns.

Kept apart from the client's transport so a caller can type its own code against the answers
(``PlanJob``, ``PlanSummary``, ``LedgerEntry``) without the HTTP machinery; ``straits.client``
re-exports every name here.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

ArchiveFormat = Literal["tar.gz", "zip", "tar"]
JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
#: the states a plan job ends in: :meth:`Client.wait` returns on these
FINAL_STATES = ("done", "failed", "cancelled")


class PlanJob(TypedDict):
    """A submitted plan's state (``GET /v1/plans/{id}``)."""

    id: str
    tenant: str
    status: Literal["queued", "running", "done", "failed", "cancelled"]
    created_at: str | None
    finished_at: str | None
    options: dict[str, Any]
    progress: dict[str, Any] | None
    ledger_seq: int | None
    error: str | None


class PlanSummary(PlanJob):
    """An item of ``GET /v1/plans``: the job with its scenario's name."""

    scenario: str
    scenario_digest: str


class LedgerEntry(TypedDict):
    """A ledger entry: every stored field (``body`` is the canonical JSON the hash covers)
    and ``content``, the same body as an object."""

    seq: int
    recorded_at: str
    tenant: str
    actor: str
    kind: str
    body: str
    prev_hash: str
    hash: str
    content: dict[str, Any]
