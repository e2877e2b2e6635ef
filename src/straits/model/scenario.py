"""The scenario: tenants, sites and their chip pools, datasets and multi-stage workloads.

Models are immutable (frozen, tuples) and validated on construction: field types and ranges by
pydantic, cross references and the stage DAG by :func:`Scenario._check_references`, which raises
:class:`~straits.errors.ScenarioError` naming the field path
(``workloads[0].stages[1].after``).
"""

from __future__ import annotations

import datetime as dt
from graphlib import CycleError, TopologicalSorter
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    field_serializer,
    model_validator,
)

from straits.controls import shorten
from straits.errors import ScenarioError, close_names, did_you_mean
from straits.model.people import personal_counts
from straits.model.targets import PoolTargets, SiteTargets, one_place_each
from straits.model.types import (
    Authorization,
    BatchTokens,
    ChipCount,
    ChipId,
    Chips,
    Command,
    Country,
    DataClass,
    Date,
    Days,
    DModel,
    Epochs,
    Gbps,
    Gigabytes,
    GridIntensity,
    Heads,
    HorizonDays,
    Id,
    Layers,
    LeadDays,
    Mfu,
    ObjectiveSpec,
    Params,
    People,
    Pue,
    Regime,
    RequestTokens,
    SeqLen,
    StageKind,
    Text,
    Tokens,
    TokensPerS,
    TopK,
    Usd,
    UsdPerChip,
    UsdPerChipHour,
    UsdPerDay,
    UsdPerGb,
    Weight,
    Years,
)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Tenant(Frozen):
    id: Id
    hq: Country
    authorizations: tuple[Authorization, ...] = ()
    ciio: bool = False
    """A critical information infrastructure operator under China's rules."""


class Procurable(Frozen):
    """Capacity a tenant may add by buying chips. The order date is the scenario date; the chips
    arrive ``lead_days`` later and may ship any day until then, so the purchase is lawful only
    if `procure` is lawful for the buyer on the order date and on every day until they arrive
    (that day included) on which the rules in force change (export controls apply when the
    chips are exported: :meth:`straits.plan.candidates.Candidates.procure_dates`). Bought chips
    serve only the buyer's workloads, run at the pool's hourly price, and cost their capex
    amortized over ``amortize_years`` for the part of the plan horizon after they arrive."""

    max: Chips
    usd_per_chip: UsdPerChip
    lead_days: LeadDays = 60
    amortize_years: Years = 4
    ships_from: Country | None = None
    """Country the chips ship from, when it is not the site's (e.g. MY for transhipment)."""
    buyer: Id | None = None
    """The tenant that may buy; default: every tenant of the scenario may."""


class Window(Frozen):
    """A pool's chip count from ``start`` (inclusive) until ``end`` (exclusive; open-ended if
    omitted)."""

    start: Date
    end: Date | None = None
    count: ChipCount

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end is not None and self.end <= self.start:
            raise ValueError("`end` must be after `start`")
        return self


class Pool(Frozen):
    chip: ChipId
    count: ChipCount
    usd_per_chip_hour: UsdPerChipHour
    procurable: Procurable | None = None
    availability: tuple[Window, ...] = ()
    """Chip counts over time (maintenance, arrivals); outside every window the pool has
    ``count`` chips."""
    source: Text | None = None
    """Where the price and count come from (shipped examples always say)."""
    confidence: Literal["V", "V2", "D", "M"] | None = None
    targets: PoolTargets | None = None
    """How the schedulers name this chip at this site (see `straits export`)."""


class Site(Frozen):
    id: Id
    country: Country
    operator_hq: Country
    wan_gbps: Gbps = 10.0
    egress_usd_per_gb: UsdPerGb = 0.0
    pools: tuple[Pool, ...] = ()
    pue: Pue | None = None
    grid_gco2_per_kwh: GridIntensity | None = None
    source: Text | None = None
    dpf_certified: bool = False
    """The operator is certified under the EU-US Data Privacy Framework (2023): personal data
    from the EEA may reach a site of it in the United States without other safeguards."""
    targets: SiteTargets | None = None
    """Where the site lives in SkyPilot, Kubernetes/Karmada and Slurm (see `straits export`)."""


class Dataset(Frozen):
    id: Id
    tokens: Tokens
    size_gb: Gigabytes
    located_at: Id
    origin: Country
    classes: tuple[DataClass, ...] = Field(min_length=1)
    subjects: People = 0
    sensitive_subjects: People = 0
    uri: (
        Annotated[
            str,
            Field(min_length=1, max_length=2048, pattern=r"^[^\s\x00-\x1f\x7f-\x9f\"`\\<>{}|^]+$"),
        ]
        | None
    ) = None
    """Where the data is stored (s3://..., gs://...): exports mount it at /data/<id>."""

    @property
    def is_personal(self) -> bool:
        return bool({"personal", "sensitive_personal"} & set(self.classes))

    _subjects_assumed: bool = PrivateAttr(default=False)

    @property
    def subjects_assumed(self) -> bool:
        """Whether ``subjects`` was not given and is read as :data:`UNKNOWN_SUBJECTS`."""
        return self._subjects_assumed

    @model_validator(mode="wrap")
    @classmethod
    def _personal_counts(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Dataset:
        data, assumed = personal_counts(data)
        out = cast(Dataset, handler(data))
        out._subjects_assumed = assumed
        return out

    @field_serializer("subjects")
    def _subjects_as_given(self, subjects: int) -> int:
        """An assumed count is written as none given, so that a scenario read back from its
        document (the API's stored one, a plan's ``inputs``) still says it was assumed: the
        API's plans lost the note asking for the count, which the CLI's plan of the file had."""
        return 0 if self._subjects_assumed else subjects

    @model_validator(mode="after")
    def _subjects_match_classes(self) -> Dataset:
        if self.sensitive_subjects and "sensitive_personal" not in self.classes:
            raise ValueError("sensitive_subjects > 0 needs 'sensitive_personal' in classes")
        return self


#: (active) parameters per ``layers x d_model^2`` a model may have. A transformer layer's
#: attention and MLP hold about 12 d^2 (GPT-3 12.1, Llama-2-7B 12.5, DeepSeek-V3's active 11.8)
#: and small models with large vocabularies a few tens (Gemma-2B 33); the bounds lie far outside
#: those, so they refuse only shapes that cannot exist (7e9 parameters in 32 layers of width 1,
#: which the estimator turned into 5,678 days at 0.01% MFU without a word)
SHAPE_RATIO = (0.05, 1e6)


class ModelSpec(Frozen):
    params: Params
    active_params: Params | None = None
    """Parameters active per token (mixture of experts); default: all."""
    layers: Layers
    d_model: DModel
    heads: Heads
    seq_len: SeqLen = 4096
    open_weights: bool = False
    precision: Literal["bf16", "fp8"] = "bf16"
    """Precision of the matrix multiplications in training (FP32 master weights either way)."""
    top_k: TopK | None = None
    """Experts each token is routed to (MoE); default from the total/active ratio."""
    kv_heads: Heads | None = None
    """Key/value heads (grouped-query attention), for the serving KV cache; default: heads."""
    global_batch_tokens: BatchTokens | None = None
    """Tokens per optimizer step; default grows with the training tokens (see estimate/)."""

    @model_validator(mode="after")
    def _active_le_total(self) -> ModelSpec:
        if self.active_params is not None and self.active_params > self.params:
            raise ValueError(
                f"active_params ({self.active_params:g}) must not exceed params ({self.params:g})"
            )
        if self.kv_heads is not None and self.kv_heads > self.heads:
            raise ValueError(f"kv_heads ({self.kv_heads}) must not exceed heads ({self.heads})")
        if self.heads > self.d_model:
            raise ValueError(
                f"heads ({self.heads}) must not exceed d_model ({self.d_model}): "
                "a head narrower than one dimension"
            )
        lo, hi = SHAPE_RATIO
        per = self.layers * float(self.d_model) ** 2
        if not lo * per <= self.active <= hi * per:
            what = "active parameters" if self.is_moe else "parameters"
            raise ValueError(
                f"{self.active:g} {what} cannot fill {self.layers} layers of width "
                f"{self.d_model}: a transformer layer holds about 12 x d_model^2 parameters "
                f"({12 * per:g} for this shape); Straits accepts {lo:g} to {hi:g} x layers x "
                "d_model^2"
            )
        return self

    @property
    def active(self) -> float:
        return self.active_params if self.active_params is not None else self.params

    @property
    def is_moe(self) -> bool:
        return self.active < self.params

    @property
    def experts_per_token(self) -> int:
        """``top_k``, or a default from how sparse the model is: 8 when at most a tenth of the
        parameters are active (DeepSeek-V3, Qwen3), 4 down to a fifth (DBRX), else 2
        (Mixtral)."""
        if self.top_k is not None:
            return self.top_k
        ratio = self.params / self.active
        return 8 if ratio >= 10 else 4 if ratio >= 5 else 2

    @property
    def head_dim(self) -> float:
        return self.d_model / self.heads


class Stage(Frozen):
    id: Id
    kind: StageKind
    after: tuple[Id, ...] = ()
    datasets: tuple[Id, ...] = ()
    tokens: Tokens | None = None
    """Training tokens; defaults to the sum of the stage's datasets' tokens x epochs."""
    epochs: Epochs = 1.0
    chips: Chips | None = None
    days: Days | None = None
    tokens_per_s: TokensPerS | None = None
    """Serving: output tokens per second to sustain (instead of a fixed `chips`)."""
    mfu: Mfu | None = None
    """Training: the per-step model FLOPs utilization measured on the team's stack (0.01 <=
    mfu <= 1), used on every chip the planner tries instead of the predicted one."""
    prompt_tokens: RequestTokens = 1024
    output_tokens: RequestTokens = 256
    users: tuple[Country, ...] = ()
    """Countries whose users a serving stage answers."""
    user_subjects: People | None = None
    """Individuals whose personal information serving processes (None: unknown)."""
    locations: tuple[Country, ...] = ()
    """Countries the stage may run in for reasons of its own (latency, contracts); empty: any."""
    command: Command | None = None
    """The shell command `straits export` writes for this stage (a `--run` that names the stage
    or its kind overrides it; a plain `--run` does not)."""

    def ignored_fields(self) -> tuple[str, ...]:
        """Serving's fields set on a training stage, which nothing reads there (a fine-tune's
        ``days`` is no duration the planner holds it to: its length follows from its chips)."""
        if self.kind == "serve":
            return ()
        # a field at its default is none given: a scenario read back from its stored or
        # planned document (defaults written out, every field "set") noted all four on every
        # training stage of every API plan, where the CLI's plan of the same file noted none
        fields = type(self).model_fields
        return tuple(
            f
            for f in fields
            if f in _SERVING_ONLY
            and f in self.model_fields_set
            and getattr(self, f) != fields[f].default
        )

    @model_validator(mode="after")
    def _kind_fields(self) -> Stage:
        if self.kind == "serve":
            if self.days is None or (self.chips is None and self.tokens_per_s is None):
                raise ValueError("a serve stage needs `days`, and `chips` or `tokens_per_s`")
            if self.mfu is not None:
                raise ValueError("`mfu` is a training efficiency: a serve stage takes none")
        elif not self.datasets and self.tokens is None:
            raise ValueError(f"a {self.kind} stage needs `datasets` or `tokens`")
        return self


#: a stage's fields only serving reads
_SERVING_ONLY = frozenset({"days", "tokens_per_s", "prompt_tokens", "output_tokens"})


class Workload(Frozen):
    id: Id
    tenant: Id
    model: ModelSpec
    deadline: Date | None = None
    deadline_policy: Literal["hard", "soft"] = "hard"
    """hard: a stage that cannot end by the deadline is not placed; soft: it may end late, at
    ``late_penalty_usd_per_day`` a day."""
    late_penalty_usd_per_day: UsdPerDay = 0.0
    budget_usd: Usd | None = None
    """Hard: the workload's stages may not cost more in total."""
    weight: Weight = 1.0
    """Weight of this workload's completion time under the `completion` objective (weighted
    hours: weight times the hours to its last end), in steps of 0.001."""
    stages: tuple[Stage, ...] = Field(min_length=1)

    def stage(self, stage_id: str) -> Stage:
        for s in self.stages:
            if s.id == stage_id:
                return s
        raise KeyError(stage_id)

    def topological_stages(self) -> list[Stage]:
        # one index, not a scan per stage: a chain of 50,000 stages took more than 5 minutes
        # to validate (no cache on the model: private attributes take part in equality)
        by_id = {s.id: s for s in self.stages}
        order = TopologicalSorter({s.id: set(s.after) for s in self.stages}).static_order()
        return [by_id[sid] for sid in order]


class Scenario(Frozen):
    straits: Literal[1] = 1
    name: Id
    date: Date
    regime: Regime = "enacted"
    objective: ObjectiveSpec = "cost"
    """cost | time | completion | energy | carbon, or a weighted sum in dollars such as
    cost+80*carbon (the planner checks the names)"""
    horizon_days: HorizonDays = 730
    _index: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = PrivateAttr(default_factory=dict)
    """How far ahead the optimizer schedules; also the accounting window for procured chips."""
    risk: Literal["p50", "p90"] = "p50"
    """Which training estimate plans budget and schedule on: p50 the central estimate; p90 the
    high end of its calibrated 80% interval (hard deadlines and budgets)."""
    tenants: tuple[Tenant, ...] = Field(min_length=1)
    sites: tuple[Site, ...] = Field(min_length=1)
    datasets: tuple[Dataset, ...] = ()
    workloads: tuple[Workload, ...] = ()

    @model_validator(mode="after")
    def _check_references(self) -> Scenario:
        _unique("tenants", [t.id for t in self.tenants])
        _unique("sites", [s.id for s in self.sites])
        _unique("datasets", [d.id for d in self.datasets])
        _unique("workloads", [w.id for w in self.workloads])
        one_place_each([(s.id, s.targets) for s in self.sites])
        sites = {s.id for s in self.sites}
        datasets = {d.id for d in self.datasets}
        tenants = {t.id for t in self.tenants}
        for i, site in enumerate(self.sites):
            _unique(f"sites[{i}].pools", [p.chip for p in site.pools], what="chip")
            for j, pool in enumerate(site.pools):
                buyer = pool.procurable.buyer if pool.procurable else None
                if buyer is not None and buyer not in tenants:
                    raise _ref(f"sites[{i}].pools[{j}].procurable.buyer", buyer, "tenant", tenants)
        for i, d in enumerate(self.datasets):
            if d.located_at not in sites:
                raise _ref(f"datasets[{i}].located_at", d.located_at, "site", sites)
        for w_i, w in enumerate(self.workloads):
            base = f"workloads[{w_i}]"
            if w.tenant not in tenants:
                raise _ref(f"{base}.tenant", w.tenant, "tenant", tenants)
            stage_ids = [s.id for s in w.stages]
            _unique(f"{base}.stages", stage_ids)
            known = set(stage_ids)  # a set: `in` on the list was quadratic in the stages
            for s_i, s in enumerate(w.stages):
                # a stage named twice counted twice: its weights' move (after), its tokens,
                # egress and exported volume (datasets)
                _unique(f"{base}.stages[{s_i}].after", list(s.after), what="stage")
                _unique(f"{base}.stages[{s_i}].datasets", list(s.datasets), what="dataset")
                for a_i, dep in enumerate(s.after):
                    if dep == s.id:  # known, so not "unknown stage", as it was called
                        raise ScenarioError(
                            f"stage {dep!r} runs after itself",
                            path=f"{base}.stages[{s_i}].after[{a_i}]",
                            expected="another stage of the workload",
                        )
                    if dep not in known:
                        others = set(stage_ids) - {s.id}
                        raise _ref(f"{base}.stages[{s_i}].after[{a_i}]", dep, "stage", others)
                for d_i, ds in enumerate(s.datasets):
                    if ds not in datasets:
                        raise _ref(f"{base}.stages[{s_i}].datasets[{d_i}]", ds, "dataset", datasets)
            try:
                w.topological_stages()
            except CycleError as exc:
                cycle = " -> ".join(exc.args[1])
                raise ScenarioError(
                    f"stage dependencies form a cycle: {cycle}",
                    path=f"{base}.stages",
                    expected="an acyclic `after` graph",
                ) from None
        return self

    # --- lookups -------------------------------------------------------------------------------
    def _lookup(self, kind: str, items: tuple[Any, ...], item_id: str) -> Any:
        # keyed by the tuple itself: a model_copy(update=...) shares this cache but not the tuple
        index = self.__pydantic_private__["_index"]  # type: ignore[index]
        cached = index.get(kind)
        if cached is None or cached[0] is not items:
            cached = index[kind] = (items, {x.id: x for x in items})
        return cached[1][item_id]

    def site(self, site_id: str) -> Site:
        return cast(Site, self._lookup("sites", self.sites, site_id))

    def tenant(self, tenant_id: str) -> Tenant:
        return cast(Tenant, self._lookup("tenants", self.tenants, tenant_id))

    def dataset(self, dataset_id: str) -> Dataset:
        return cast(Dataset, self._lookup("datasets", self.datasets, dataset_id))

    def workload(self, workload_id: str) -> Workload:
        return cast(Workload, self._lookup("workloads", self.workloads, workload_id))

    @property
    def start(self) -> dt.datetime:
        """The instant plans start: the scenario date at 00:00 UTC."""
        return dt.datetime.combine(self.date, dt.time(0), tzinfo=dt.UTC)


def _unique(path: str, ids: list[str], what: str = "id") -> None:
    seen: set[str] = set()
    for i, x in enumerate(ids):
        if x in seen:
            raise ScenarioError(
                f"duplicate {what} {x!r}", path=f"{path}[{i}]", expected=f"each {what} once"
            )
        seen.add(x)


def _ref(path: str, value: str, kind: str, known: set[str]) -> ScenarioError:
    listing = ", ".join(sorted(known)) if known else "none defined"
    close = close_names(value, sorted(known))  # `sg-01` for `sg-1`: did you mean? (cli65)
    return ScenarioError(
        f"unknown {kind} {shorten(value)!r}{did_you_mean(close)}",
        path=path,
        expected=f"a {kind} id: {listing}",
        suggestions=close,
    )
