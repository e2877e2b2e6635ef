"""The fields of a plan document that `export`, `impact`, `report` and `plan --show|--recheck`
read, with their types and ranges (``plandoc.read_document`` validates a document against
:class:`PlanInput`).

A plan document is user input: a file anyone may edit (deleting ``id`` and ``digest`` makes an
edited plan a new one). Every field a shell formats, sums or sorts is checked here, so a cost
given as a string, a diagnosis given as a number or an assignment ending before it starts is
exit 2 naming the field, never a traceback halfway through writing a report. Fields a plan of an
older version may lack stay optional; fields this version does not know are carried as they are.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from straits.limits import MAX_DATE, MIN_DATE, as_utc
from straits.model.types import printable

#: the largest figure a plan document may carry (dollars, hours, kWh...): beyond any plan a
#: valid scenario makes (10^18 was not: workloads due in 2000, planned in 2100 at a late
#: penalty of $10^12 a day, passed it, and plan printed a document the others refused),
#: small enough that sums and formatting never overflow
MAX_FIGURE = 1e30


def _instant(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


#: what an instant may hold: Python reads any one character between the date and the time
#: (a newline, a NUL, a bidi control), and the text is written as it is into sbatch comments,
#: where a newline ended the comment and bash ran the rest of the line as a command
_INSTANT_CHARS = re.compile(r"[0-9A-Za-z:.,+ -]{1,64}")


def _iso_instant(text: str) -> str:
    if not _INSTANT_CHARS.fullmatch(text):
        raise ValueError(
            f"{text[:64]!r} is not an ISO-8601 time such as 2025-06-01T00:00:00Z (digits, "
            "letters, ':', '.', ',', '+', '-' or a space)"
        )
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time such as 2025-06-01T00:00:00Z") from None
    if t.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (expected UTC, such as 2025-06-01T00:00:00Z)")
    # up to the end of the last day: the planner lets a stage end at 2101-01-01T00:00:00Z (the
    # end of 2100-12-31), and its plan, written so, was refused on reading back; a time whose
    # offset takes it out of Python's years (0001-01-01T00:00:00+01:00) is outside them too
    try:
        utc = as_utc(t)
    except ValueError:
        utc = None
    if utc is None or utc.date() < MIN_DATE or utc > _CALENDAR_END:
        raise ValueError(f"{text!r} is outside the dates Straits plans ({MIN_DATE} to {MAX_DATE})")
    return text


_CALENDAR_END = dt.datetime.combine(MAX_DATE + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)


def _iso_date(text: str) -> str:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise ValueError(f"{text!r} is outside the dates Straits plans ({MIN_DATE} to {MAX_DATE})")
    return text


Instant = Annotated[StrictStr, AfterValidator(_iso_instant)]
Day = Annotated[StrictStr, AfterValidator(_iso_date)]
Figure = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=-MAX_FIGURE, le=MAX_FIGURE)]
Count = Annotated[StrictInt, Field(ge=0, le=10**12)]
#: a figure no plan writes below 0 (dollars, hours): an edited `cost_usd: -5` was a report's
#: "$-5"
Amount = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0.0, le=MAX_FIGURE)]
Text = Annotated[StrictStr, AfterValidator(printable)]

#: the longest ``layout`` read: the estimator writes about 45 characters
#: (``TP8 PP4 DP16 EP8 ZeRO-1 recompute=selective``)
MAX_LAYOUT = 256
_LAYOUT_CHARS = re.compile(rf"[ -~]{{0,{MAX_LAYOUT}}}")


def _layout(text: str) -> str:
    """A layout as the estimator writes it: printable ASCII on one line, at most
    :data:`MAX_LAYOUT` characters. Every export passes it as ``STRAITS_LAYOUT`` (atk93: 200,000
    characters were exported as they were, and Linux starts no program whose one variable is
    over 128 KiB, so no process of the job started)."""
    if not _LAYOUT_CHARS.fullmatch(text):
        raise ValueError(
            f"not a parallel layout such as 'TP4 PP1 DP512 ZeRO-3' (printable ASCII on one "
            f"line, at most {MAX_LAYOUT} characters)"
        )
    return text


Layout = Annotated[StrictStr, AfterValidator(_layout)]

#: the parts of a layout the exports read (``estimate.layout.Layout.describe``); a part of
#: another name (``TPUv5``) is kept in ``STRAITS_LAYOUT`` alone, as a newer plan may write one
_PART = re.compile(r"(?:TP|PP|DP|EP)[0-9].*|ZeRO-.*|recompute=.*", re.S)
_DEGREE = re.compile(r"(TP|PP|DP|EP)([1-9][0-9]{0,8})")
_OTHER = re.compile(r"ZeRO-[0-3]|recompute=(?:none|selective|full)")


def layout_fits(layout: str, chips: int) -> str:
    """``layout`` when its parts are the estimator's and say ``chips``: each degree from 1 to
    ``chips`` without a leading zero (bash reads ``08`` as bad octal), each once, ZeRO 0 to 3,
    recompute none, selective or full; the degrees given multiply to a divisor of ``chips``
    (to ``chips`` when TP, PP and DP are all given, as the estimator writes them), and EP
    divides DP (expert parallelism runs inside the data-parallel replicas). An edited plan's
    ``TP3 PP7 DP5 EP0 ZeRO-9`` on 2,048 chips was exported as STRAITS_TP=3 ... (a fresh-eye
    attack)."""
    degrees: dict[str, int] = {}
    for part in layout.split():
        if not _PART.fullmatch(part):
            continue
        m = _DEGREE.fullmatch(part)
        if m is None and not _OTHER.fullmatch(part):
            raise ValueError(
                f"{part!r} is no layout part: TPn, PPn, DPn, EPn (n from 1, no leading zero), "
                "ZeRO-0..3 or recompute=none|selective|full"
            )
        if m is None:
            continue
        if m[1] in degrees:
            raise ValueError(f"{m[1]} given twice")
        degrees[m[1]] = int(m[2])
        if degrees[m[1]] > chips:
            raise ValueError(f"{part!r}: a degree from 1 to the stage's {chips:,} chips")
    product = 1
    for kind in ("TP", "PP", "DP"):
        product *= degrees.get(kind, 1)
    if {"TP", "PP", "DP"} <= degrees.keys() and product != chips:
        raise ValueError(f"TP x PP x DP is {product:,}, not the stage's {chips:,} chips")
    if chips % product:
        raise ValueError(f"the degrees multiply to {product:,}, no divisor of {chips:,} chips")
    if "EP" in degrees and "DP" in degrees and degrees["DP"] % degrees["EP"]:
        raise ValueError(f"EP{degrees['EP']} does not divide DP{degrees['DP']}")
    return layout


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class _Assignment(_Open):
    workload: Text
    stage: Text
    site: Text
    chip: Text
    chips: Annotated[StrictInt, Field(ge=1, le=10_000_000)]
    start: Instant
    end: Instant
    # figures every plan writes as numbers: a plan of an older version may lack them, but a
    # null is no figure (the report, --show, --recheck and export summed it: a TypeError)
    hours: Amount = 0.0
    chip_hours: Amount = 0.0
    cost_usd: Amount = 0.0
    compute_usd: Amount = 0.0
    egress_usd: Amount = 0.0
    capex_usd: Amount = 0.0
    penalty_usd: Amount = 0.0
    transfer_hours: Amount = 0.0
    late_hours: Amount = 0.0
    mfu: Figure = 0.0
    bought: StrictBool = False
    # null where they do not apply (no grid intensity; a serving stage has no interval)
    energy_kwh: Figure | None = None
    tco2e: Figure | None = None
    chip_hours_low: Figure | None = None
    chip_hours_high: Figure | None = None
    # a placed stage is lawful: its conditions are in `requires` (a plan edited to say `deny`
    # or anything else was exported and re-checked as it was; a hostile-input review)
    decision: Literal["allow"] | None = None
    layout: Layout | None = None
    requires: list[Text] = []
    warnings: list[Text] = []

    @field_validator("layout")
    @classmethod
    def _layout_fits(cls, layout: str | None, info: ValidationInfo) -> str | None:
        chips = info.data.get("chips")
        if layout is None or not isinstance(chips, int):
            return layout
        return layout_fits(layout, chips)

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> _Assignment:
        if _instant(self.end) < _instant(self.start):
            raise ValueError(f"ends ({self.end}) before it starts ({self.start})")
        return self


class _Unplaced(_Open):
    workload: Text
    stage: Text
    lost: dict[Text, Count] = {}
    lost_codes: dict[Text, Count] = {}
    summary: Text | None = None


class _Cited(_Open):
    rule: Text
    title: Text | None = None
    citation: Text | None = None
    confidence: Text | None = None
    effect: Text | None = None
    text: Text | None = None
    requires: Text | None = None


class _Rejection(_Open):
    reason: Text
    site: Text | None = None
    chip: Text | None = None
    code: Text | None = None
    detail: Text | None = None
    options: Count | None = None
    rules: list[Text] = []

    @model_validator(mode="after")
    def _an_option_or_a_count(self) -> _Rejection:
        if self.options is None and (self.site is None or self.chip is None):
            raise ValueError(
                "names no option: expected `site` and `chip`, or `options` (a count of options)"
            )
        return self


class _Diagnosis(_Open):
    workload: Text
    stage: Text
    options: Count = 0
    lawful_and_free: Count = 0
    chosen: Text | None = None
    lost: dict[Text, Count] = {}
    lost_codes: dict[Text, Count] = {}
    summary: Text | None = None
    rules: list[_Cited] = []
    rejections: list[_Rejection] = []


class _Warning(_Open):
    rule: Text
    title: Text | None = None
    citation: Text | None = None
    confidence: Text | None = None
    effect: Text | None = None
    text: Text | None = None
    stages: list[Text] = []


class _WhyNot(_Open):
    workload: Text
    stage: Text
    constraints: list[Text] = []
    requires: list[Text] = []
    text: Text | None = None


class _Timings(_Open):
    time_limit_s: Figure | None = None
    elapsed_s: Figure | None = None
    phases: dict[Text, Figure] = {}
    within: dict[Text, Figure] = {}


class PlanInput(_Open):
    """The plan fields the shells read (the rest is carried as it is)."""

    date: Day
    regime: Literal["enacted", "ai-diffusion"]
    status: Literal["optimal", "feasible", "infeasible"]
    assignments: list[_Assignment]
    unplaced: list[_Unplaced] = []
    scenario: Text | None = None
    objective: Text | None = None
    solver: Text | None = None
    risk: Literal["p50", "p90"] | None = None
    rules_digest: Text | None = None
    objective_unit: Text | None = None
    total_cost_usd: Amount | None = None
    penalty_usd: Amount | None = None
    makespan_hours: Figure | None = None
    energy_mwh: Figure | None = None
    tco2e: Figure | None = None
    bound_usd: Figure | None = None
    gap: Figure | None = None
    baseline_usd: Figure | None = None
    objective_value: Figure | None = None
    bound_value: Figure | None = None
    baseline_value: Figure | None = None
    total_cost_usd_high: Amount | None = None
    bound_unplaced: Count | None = None
    baseline_unplaced: Count | None = None
    diagnosis: list[_Diagnosis] = []
    warnings: list[_Warning] = []
    why_not: list[_WhyNot] = []
    notes: list[Text] = []
    search: dict[str, object] | None = None
    timings: _Timings | None = None
