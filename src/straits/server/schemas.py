"""The shapes of the API's 200 answers, for the OpenAPI spec.

These models document the JSON contracts (docs/contracts.md) that the CLI's ``--json`` prints
and the API returns: a check answer's every field; for the others, the main fields every answer
has, with their types (docs/contracts.md lists the rest). They do not build the
answers (the Python API does, so CLI and API cannot drift apart) and they allow extra fields, so
a contract can grow without breaking them. The fuzz test checks every answer against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Reason(_Open):
    """A rule that decided (or warned about) a check."""

    rule: str
    citation: str
    effect: str
    confidence: str
    title: str
    text: str = Field(description="The rule's reason, in one sentence, for this request.")


class CheckAnswer(_Open):
    """One decision, as `straits check --json` prints it."""

    decision: Literal["allow", "conditional", "deny"]
    requires: list[str]
    reasons: list[Reason]
    warnings: list[Reason]
    notes: list[Reason]
    satisfied: list[str] = Field(
        description="Requirements met by an authorization the tenant holds."
    )
    ignored: list[str] | None = Field(
        default=None,
        description="Present only when the request set fields no loaded rule reads for its "
        "action (an order's quantity, prior_tpp or ships_from on train, serve...): they "
        "changed nothing.",
    )


class EstimateAnswer(_Open):
    """What a stage needs on a chip, as `straits estimate --json` prints it."""

    chip: str
    chips: int
    min_chips: int
    flops: float | None = None
    chip_hours: float
    days: float
    mfu: float | None = None
    cost_usd: float | None = None


class Assignment(_Open):
    workload: str
    stage: str
    site: str
    chip: str
    chips: int
    start: str = Field(description="ISO 8601, UTC")
    end: str = Field(description="ISO 8601, UTC")
    chip_hours: float
    cost_usd: float
    decision: str
    requires: list[str]


class PlanDocument(_Open):
    """A plan, as `straits plan --json` prints it."""

    status: Literal["optimal", "feasible", "infeasible"]
    objective: str
    total_cost_usd: float
    makespan_hours: float
    assignments: list[Assignment]
    unplaced: list[dict[str, Any]]
    diagnosis: list[dict[str, Any]]


JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]


class PlanSummary(_Open):
    """A plan job without its plan."""

    id: str
    tenant: str
    status: JobStatus
    created_at: str | None
    started_at: str | None = None
    finished_at: str | None
    options: dict[str, Any]
    attempts: int = Field(0, description="Times a worker has started it.")
    cancel_requested: bool = False
    progress: dict[str, Any] | None = Field(
        description="While running: elapsed_s, best and bound (unplaced stages, score), gap, "
        "text; updated every second."
    )
    ledger_seq: int | None
    error: str | None = Field(description="Why it failed or was cancelled.")


class PlanJob(PlanSummary):
    """A plan job: its state and, once done, the plan."""

    plan: PlanDocument | None


class RuleInfo(_Open):
    rule: str
    pack: str
    title: str
    citation: str
    confidence: str
    effect: str
    effective_from: str
    effective_until: str | None


class ChipInfo(_Open):
    id: str
    name: str
    vendor: str
    figures: dict[str, Any]
    derived: dict[str, Any]


class LedgerEntryInfo(_Open):
    seq: int
    recorded_at: str
    tenant: str
    actor: str
    kind: str


class LedgerVerification(_Open):
    ok: bool
    entries: int | None = None


class Health(_Open):
    status: Literal["ok"]
    version: str
    database: str


class Ready(_Open):
    status: Literal["ready"]
    version: str
    database: str
