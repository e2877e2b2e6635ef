"""The database of published training runs (``runs.yaml``): what the estimator is fitted on
and judged against, and what ``straits estimate`` shows as the nearest published runs.

Each run's published figure is kept as printed (whole-run chip-hours, a cluster size and days,
or a per-step MFU); chip-hours from days are derived here, never typed in. ``used_for`` splits
the runs into the ones the fitted parameters may see (``fit``) and the ones they are judged on
(``check``) by a fixed rule (:func:`split_rule`), which the tests hold the file to.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from importlib import resources
from typing import Annotated, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from straits.catalog import catalog
from straits.catalog.chips import Confidence
from straits.errors import CatalogError, InputError
from straits.loading import validate_as
from straits.model.scenario import ModelSpec

RUNS_FILE = "runs.yaml"
Metric = Literal["chip_hours", "mfu"]
UsedFor = Literal["fit", "check"]
Scope = Literal["run", "steps", "distillation"]
#: what a published figure counts, from its source:
#: ``run``: the whole pre-training run (restarts, evaluation and idle time included);
#: ``steps``: step time only (iteration time x iterations, or a span planned from the measured
#: throughput), so it is compared with the estimate before goodput and evaluation;
#: ``distillation``: a pruning and distillation pipeline trained on a teacher's outputs, which the
#: estimator does not model: predicted and shown, never fitted on
SCOPES: tuple[str, ...] = ("run", "steps", "distillation")
#: collection rounds so far: 1, the first fit (47 runs); 2, added in the second pass (11); 3,
#: added in the third pass (5); 4, added in the fourth pass (2); 5, added in the ninth pass (4);
#: 6, added in the eleventh pass (4); 7, added in the twelfth pass (2); 8, added in the
#: fourteenth pass (4); 9, added in the fifteenth pass (6)
MAX_ROUND = 9


#: near-replicates: the same team, chip and (nearly) the same model, trained months apart; the
#: estimator sees every difference between the two (shape, sequence length, tokens, cluster), so
#: what is left between their errors is the scatter of the published figures themselves
NEAR_REPLICATES: tuple[tuple[str, str], ...] = (
    ("llama1-7b", "llama2-7b"),
    ("llama1-13b", "llama2-13b"),
    ("llama1-33b", "llama2-34b"),
    ("llama1-65b", "llama2-70b"),
    ("phi-3-mini", "phi-3.5-mini"),
    ("phi-3-mini", "phi-3-mini-june"),
    ("phi-3-medium", "phi-4"),
    ("llama4-scout", "llama4-maverick"),
)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Published(_Strict):
    """What was published about a run's cost: exactly one of the three forms."""

    chip_hours: Annotated[float, Field(gt=0)] | None = None
    days: Annotated[float, Field(gt=0)] | None = None
    mfu: Annotated[float, Field(gt=0, lt=1)] | None = None

    @model_validator(mode="after")
    def _one(self) -> Published:
        given = [k for k in ("chip_hours", "days", "mfu") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of chip_hours, days, mfu")
        return self


class PublishedRun(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9.\-]*$")]
    name: Annotated[str, Field(min_length=1, max_length=120)]
    family: Annotated[str, Field(min_length=1, max_length=40)]
    round: Annotated[int, Field(ge=1, le=MAX_ROUND)] = 1
    """Collection round the run was added in. The split rule works inside a round, so runs added
    later never move an earlier run between fit and check."""
    year: Annotated[int, Field(ge=2018, le=2035)]
    """Year of the training software stack."""
    model: ModelSpec
    tokens: Annotated[float, Field(gt=0)]
    chip: str
    chips: Annotated[int, Field(gt=0)] | None
    """Published cluster size; None when not published."""
    published: Published
    quote: Annotated[str, Field(min_length=1)]
    source: Annotated[str, Field(min_length=1)]
    confidence: Confidence
    used_for: UsedFor
    scope: Scope = "run"
    """What the published figure counts (see :data:`SCOPES`), read from its source."""
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> PublishedRun:
        if self.chip not in catalog():
            raise ValueError(f"chip {self.chip!r} is not in the catalog")
        if self.published.days is not None and self.chips is None:
            raise ValueError("published days need the published cluster size (`chips`)")
        if self.published.mfu is not None and self.chips is None:
            raise ValueError("a published MFU needs the cluster size it was measured on")
        if self.published.mfu is not None and self.scope != "run":
            raise ValueError("a per-step MFU has no scope: leave `scope` out")
        return self

    @property
    def fittable(self) -> bool:
        """Whether the figure measures what the estimator models (a distillation pipeline's
        hours do not)."""
        return self.scope != "distillation"

    @property
    def metric(self) -> Metric:
        return "mfu" if self.published.mfu is not None else "chip_hours"

    @property
    def value(self) -> float:
        """The published figure in the unit of :attr:`metric` (chip-hours derived from days)."""
        p = self.published
        if p.mfu is not None:
            return p.mfu
        if p.chip_hours is not None:
            return p.chip_hours
        assert p.days is not None and self.chips is not None
        return self.chips * p.days * 24.0

    @property
    def compute(self) -> float:
        """Training compute as the split rule orders it: 6 x active parameters x tokens."""
        return 6.0 * self.model.active * self.tokens

    @property
    def derived(self) -> str:
        """How :attr:`value` was obtained, when it is not the printed figure."""
        p = self.published
        if p.days is not None and self.chips is not None:
            return f"{self.chips:,} x {p.days:g} days x 24 = {self.value:,.0f} chip-hours"
        return ""


class RunsFile(_Strict):
    #: where an unknown field's error sends the reader (``loading.validate_as``)
    REFERENCE: ClassVar[str] = "`runs.yaml` in docs/estimator.md (The published runs)"
    runs: Annotated[tuple[PublishedRun, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique(self) -> RunsFile:
        seen: set[str] = set()
        for r in self.runs:
            if r.id in seen:
                raise ValueError(f"run id {r.id!r} appears twice")
            seen.add(r.id)
        return self


def parse_runs(text: str, source: str = RUNS_FILE) -> tuple[PublishedRun, ...]:
    """Validate a runs document; errors name the file and the field path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:  # PyYAML recurses once per nesting level
        raise CatalogError(f"{source}: not valid YAML: nested too deeply") from None
    try:
        return validate_as(RunsFile, data, source=source).runs
    except InputError as exc:
        raise CatalogError(str(exc)) from None


@cache
def published_runs() -> tuple[PublishedRun, ...]:
    """The shipped runs (``straits/estimate/runs.yaml``), validated once."""
    text = resources.files("straits.estimate").joinpath(RUNS_FILE).read_text(encoding="utf-8")
    return parse_runs(text, f"straits/estimate/{RUNS_FILE}")


def split_rule(runs: tuple[PublishedRun, ...] | list[PublishedRun]) -> dict[str, UsedFor]:
    """What ``used_for`` must be: inside each collection round, runs grouped by (family,
    metric), a family with one run of a metric in that round pooled into ``other``; inside a
    group ordered by compute (then id) and alternating fit, check, fit, ... from the smallest.

    Round 1 is exactly the rule the first fit was made under; a later round is split the same
    way among its own runs, so adding runs never reassigns an earlier one."""
    groups: dict[tuple[int, str, str], list[PublishedRun]] = defaultdict(list)
    for r in runs:
        groups[(r.round, r.family, r.metric)].append(r)
    pooled: dict[tuple[int, str, str], list[PublishedRun]] = defaultdict(list)
    for (rnd, family, metric), members in groups.items():
        key = (rnd, family, metric) if len(members) > 1 else (rnd, "other", metric)
        pooled[key].extend(members)
    out: dict[str, UsedFor] = {}
    for members in pooled.values():
        for i, r in enumerate(sorted(members, key=lambda r: (r.compute, r.id))):
            out[r.id] = "fit" if i % 2 == 0 else "check"
    return out


def same_run(a: PublishedRun, b: PublishedRun) -> bool:
    """Whether two entries are one training run published twice: as a per-step MFU and as a
    whole-run (or step-time) figure, on the same chip, cluster and model shape."""
    return (
        a.metric != b.metric
        and a.family == b.family
        and a.chip == b.chip
        and a.chips == b.chips
        and a.model.params == b.model.params
        and a.model.layers == b.model.layers
        and a.model.d_model == b.model.d_model
    )


def fit_runs() -> list[PublishedRun]:
    return [r for r in published_runs() if r.used_for == "fit"]


def check_runs() -> list[PublishedRun]:
    return [r for r in published_runs() if r.used_for == "check"]
