"""Requests to the rules (``straits check``) and to the estimator (``straits estimate``)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from straits.model.people import personal_counts
from straits.model.scenario import Frozen, ModelSpec
from straits.model.types import (
    Authorization,
    ChipId,
    Chips,
    Country,
    DataClass,
    Date,
    Days,
    GridIntensity,
    Mfu,
    People,
    Pue,
    Quantity,
    Regime,
    RequestTokens,
    SoftwareYear,
    Tokens,
    TokensPerS,
    Tpp,
    TrainingOps,
    UsdPerChipHour,
)

Action = Literal["train", "finetune", "serve", "procure", "transfer-data", "transfer-weights"]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]
COMPUTE_ACTIONS = ("train", "finetune", "serve")


class TenantFacts(Frozen):
    hq: Country
    authorizations: tuple[Authorization, ...] = ()
    ciio: bool = False
    entity_listed: bool = False


class SiteFacts(Frozen):
    country: Country
    operator_hq: Country
    dpf_certified: bool = False
    """The site's operator, which receives the data processed there, is certified under the
    EU-US Data Privacy Framework (read by the GDPR rules for sites in the United States)."""


class DataFacts(Frozen):
    origin: Country
    classes: tuple[DataClass, ...] = Field(min_length=1)
    subjects: People = 0
    sensitive_subjects: People = 0
    prior_subjects_ytd: People = 0
    """Individuals the handler already exported since 1 January of this year."""
    prior_sensitive_ytd: People = 0
    prior_subjects_since_last_year: People = 0
    """Individuals already exported since 1 January of the previous year (2022 measures)."""
    prior_sensitive_since_last_year: People = 0

    @model_validator(mode="before")
    @classmethod
    def _personal_counts(cls, data: Any) -> Any:
        """Counts not given read conservatively (:func:`personal_counts`): a personal
        dataset of no stated size holds 1,000,000 individuals."""
        return personal_counts(data)[0]

    @model_validator(mode="before")
    @classmethod
    def _windows_nest(cls, data: Any) -> Any:
        """Who was exported since 1 January of this year was exported since 1 January of last
        year too: a since-last-year count not given is at least the this-year count. The 2022
        measures read only the since-last-year counts, so 150,000 people given as exported
        this year alone were read as none, and a transfer over the 100,000 line was answered
        with the standard contract instead of a security assessment (atk68)."""
        if not isinstance(data, dict):
            return data
        for ytd, since in _WINDOWS:
            if since not in data and ytd in data:
                data = {**data, since: data[ytd]}
        return data

    @model_validator(mode="after")
    def _counts_agree(self) -> DataFacts:
        for ytd, since in _WINDOWS:
            if getattr(self, since) < getattr(self, ytd):
                raise ValueError(
                    f"{since} ({getattr(self, since):,}) is below {ytd} "
                    f"({getattr(self, ytd):,}): who was exported since 1 January of this year "
                    "was exported since 1 January of last year too"
                )
        if self.sensitive_subjects and "sensitive_personal" not in self.classes:
            # the count would be read by no rule (the thresholds for sensitive information
            # apply to data classed as such): 20,000 sensitive people in data classed `public`
            # were allowed without a word (atk68)
            raise ValueError("sensitive_subjects > 0 needs 'sensitive_personal' in classes")
        return self


#: (this year's count, the count since 1 January of last year) of people already exported
_WINDOWS = (
    ("prior_subjects_ytd", "prior_subjects_since_last_year"),
    ("prior_sensitive_ytd", "prior_sensitive_since_last_year"),
)


class WeightsFacts(Frozen):
    training_ops: TrainingOps
    open: bool = False
    from_country: Country


class CheckRequest(Frozen):
    """One question to the rules: may ``tenant`` do ``action`` at ``site`` on ``date``?"""

    #: where an unknown field's error sends the reader (``loading.validate_as``)
    REFERENCE: ClassVar[str] = "the request of `straits check --json` in docs/contracts.md"

    date: Date
    regime: Regime = "enacted"
    action: Action
    tenant: TenantFacts
    site: SiteFacts
    chip: ChipId | None = None
    data: DataFacts | None = None
    weights: WeightsFacts | None = None
    quantity: Quantity = 0
    """Chips acquired, for ``procure`` (0: not given, which a rule counting chips reads as
    above its threshold)."""
    prior_tpp: Tpp = 0
    """For ``procure``: the total processing performance of the end user's other orders counted
    with this one (an allowance per end user, such as the AI Diffusion rule's): the planner
    adds every other order it may place for the buyer on the plan date."""
    ships_from: Country | None = None

    @model_validator(mode="after")
    def _action_needs(self) -> CheckRequest:
        if self.action in (*COMPUTE_ACTIONS, "procure") and self.chip is None:
            raise ValueError(f"action {self.action!r} needs `chip`")
        if self.action == "transfer-data" and self.data is None:
            raise ValueError("action 'transfer-data' needs `data`")
        if self.action == "transfer-weights" and self.weights is None:
            raise ValueError("action 'transfer-weights' needs `weights`")
        return self


class EstimateRequest(Frozen):
    REFERENCE: ClassVar[str] = "the request of `straits estimate --json` in docs/contracts.md"
    model: ModelSpec
    tokens: Tokens | None = None
    chip: ChipId
    chips: Chips | None = None
    usd_per_chip_hour: UsdPerChipHour | None = None
    kind: Literal["train", "serve"] = "train"
    days: Days | None = None
    tokens_per_s: TokensPerS | None = None
    prompt_tokens: RequestTokens = 1024
    output_tokens: RequestTokens = 256
    pue: Pue | None = None
    grid_gco2_per_kwh: GridIntensity | None = None
    country: Country | None = None
    """Where it runs, for the grid carbon intensity when `grid_gco2_per_kwh` is not given."""
    software_year: SoftwareYear = 2025
    """Year of the training software stack (fused attention and selective recomputation from
    2023; older stacks run slower); default a current one."""
    mfu: Mfu | None = None
    """The per-step model FLOPs utilization measured on the user's stack (0.01 <= mfu <= 1):
    used instead of the predicted one, with a narrower interval; training only."""

    def ignored_fields(self) -> tuple[str, ...]:
        """Fields the request sets that its kind does not read (a training estimate's
        ``days``: it is not a target the chips are sized for), in the model's order."""
        unread = _UNREAD_BY_TRAINING if self.kind == "train" else _UNREAD_BY_SERVING
        return tuple(
            f for f in type(self).model_fields if f in unread and f in self.model_fields_set
        )

    @model_validator(mode="after")
    def _kind_fields(self) -> EstimateRequest:
        if self.kind == "train" and self.tokens is None:
            raise ValueError("a training estimate needs `tokens` (> 0)")
        if self.kind == "serve" and self.mfu is not None:
            raise ValueError("`mfu` is a training efficiency: a serving estimate takes none")
        if self.kind == "serve" and (
            self.days is None or (self.chips is None and self.tokens_per_s is None)
        ):
            raise ValueError("a serving estimate needs `days`, and `chips` or `tokens_per_s`")
        return self


#: what a training estimate does not read (its length follows from the chips; a serving
#: target or a request's shape is the serving estimate's)
_UNREAD_BY_TRAINING = frozenset({"days", "tokens_per_s", "prompt_tokens", "output_tokens"})
#: what a serving estimate does not read
_UNREAD_BY_SERVING = frozenset({"tokens", "software_year"})
