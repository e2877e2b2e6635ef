"""Shared field types for the pydantic models: ids, countries, chips, authorizations, and the
range of every number and date a user can give.

Every number a scenario or request carries is finite and inside a documented range, checked by
pydantic before any arithmetic: no ``1e308`` price, ``.inf`` token count or 400-digit chip count
reaches the estimator or the optimizer, where it would overflow. The ranges are generous (10x to
1000x beyond anything real); ``RANGES`` below is the table docs/robustness.md shows, and a test
checks that every number field of every model has a finite range.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
)

from straits.catalog import catalog, is_country
from straits.catalog.countries import close_codes
from straits.controls import ANY_CONTROL as ANY_CONTROL
from straits.controls import TERMINAL_CONTROL as TERMINAL_CONTROL
from straits.errors import UnknownChipError, did_you_mean, unknown_name
from straits.limits import MAX_DATE, MIN_DATE

Id = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", min_length=1, max_length=128),
]


def _not_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError('got a YAML boolean: quote country codes such as "NO" (Norway)')
    return value


def _country(code: str) -> str:
    upper = code.upper()
    # as written, and short: it may be any length; ASCII letters only: a dotless i and a d
    # upper-cased are ID (brk32)
    if len(code) != 2 or not code.isascii() or not is_country(upper):
        shown = repr(code) if len(code) <= 24 else f"{code[:24]!r}... ({len(code):,} characters)"
        message = f"{shown} is not an ISO 3166-1 alpha-2 country code (e.g. CN, SG, MY)"
        close = close_codes(code)  # `SGP`, `Singapore`: did you mean 'SG'? (cli65)
        raise unknown_name(message + did_you_mean(close), close)
    return upper


def _chip(chip_id: str) -> str:
    try:
        return catalog().canonical(chip_id)
    except UnknownChipError as exc:  # its suggestions kept as data (problem+json, cli65)
        message = exc.detail + "; known chips: " + ", ".join(catalog().ids)
        raise unknown_name(message, exc.suggestions) from None


Country = Annotated[
    str,
    BeforeValidator(_not_bool),
    # the length is _country's to refuse: as a constraint after the BeforeValidator it was
    # pydantic's "Value should have at most 2 items after validation, not 5" for `hq: China`,
    # naming no country code (user32); the schema still says two characters
    AfterValidator(_country),
    WithJsonSchema({"maxLength": 2, "minLength": 2, "type": "string"}),
]
ChipId = Annotated[str, AfterValidator(_chip)]

Authorization = Literal[
    "bis-license",
    "cac-security-assessment",
    "cac-standard-contract",
    "cac-certification",
    "gdpr-transfer-safeguard",
    "my-strategic-trade-permit",
    # a legal basis for a transfer of Chinese personal information under PIPL Art. 38, declared
    # for transfers made before the CAC's mechanisms existed (assessment: 2022-09-01; standard
    # contract: 2023-06-01); any later CAC mechanism also satisfies the requirement
    "pipl-art38-basis",
    # a UK GDPR Art. 46 safeguard (the International Data Transfer Agreement, the UK Addendum to
    # the EU's SCCs, BCRs approved in the UK) for personal data from the United Kingdom
    "uk-transfer-safeguard",
]
AUTHORIZATIONS: tuple[str, ...] = Authorization.__args__  # type: ignore[attr-defined]

DataClass = Literal["public", "personal", "sensitive_personal", "important"]
Regime = Literal["enacted", "ai-diffusion"]
Objective = Literal["cost", "time", "completion"]
_WEIGHT = r"(?:[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?\s*\*\s*)?"
_NAME = r"[A-Za-z][A-Za-z0-9_-]*"
_OBJECTIVE = re.compile(rf"^\s*{_WEIGHT}{_NAME}(?:\s*\+\s*{_WEIGHT}{_NAME})*\s*$")


def _objective_form(text: str, info: ValidationInfo) -> str:
    if len(text) > 200 or not _OBJECTIVE.match(text):
        raise ValueError(
            "expected an objective name such as cost, time, completion, energy "
            "or carbon, or a weighted sum such as cost+80*carbon"
        )
    # the planner's own parser (no OR-Tools, no numpy), so that a name or weight it refuses is
    # refused with the scenario's file and line (a 400 at submission), not when planning. Not
    # a stored scenario (``parse_scenario(stored=True)``): a plan recorded before this check
    # (made with --objective over a scenario whose own objective the planner refuses) must
    # still read for plan --show, report, impact and the console (rev51)
    if isinstance(info.context, dict) and info.context.get("stored"):
        return text
    from straits.errors import InputError
    from straits.plan.objectives import objective

    try:
        objective(text)
    except InputError as err:
        raise ValueError(
            f"{err.detail} (expected {err.expected})" if err.expected else err.detail
        ) from None
    return text


#: an objective as written in a scenario: a name or a weighted sum such as ``cost+80*carbon``.
#: The planner's parser (straits.plan.objectives) checks the names and weights when the scenario
#: is read, so a refusal names the scenario's file and line; a stored one is read as recorded.
ObjectiveSpec = Annotated[str, AfterValidator(_objective_form)]
StageKind = Literal["pretrain", "finetune", "serve"]


# --- numbers: finite and in range ----------------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """The accepted values of one kind of number."""

    kind: str
    """``int`` or ``number``"""
    lo: float
    hi: float
    lo_open: bool
    meaning: str

    def text(self, ge: str = "≥", le: str = "≤") -> str:
        def num(v: float) -> str:
            if v == 0 or 0.001 <= abs(v) < 1e7:
                return f"{v:,g}" if v != int(v) else f"{int(v):,}"
            exponent = round(math.log10(abs(v)))
            return f"10^{exponent}" if v == 10.0**exponent else f"{v:.3g}"

        return f"{'>' if self.lo_open else ge} {num(self.lo)}, {le} {num(self.hi)}"

    def expected(self) -> str:
        """What a refused value's problem says was expected: ``an integer >= 1, <= 10^7``, in
        the words of pydantic's bounds (``errors.validation_expected``)."""
        return f"{'an integer' if self.kind == 'int' else 'a number'} {self.text('>=', '<=')}"


#: every range a field of a scenario or request can have, by name (docs/robustness.md lists it)
RANGES: dict[str, Range] = {}


def _range(
    name: str, base: type, lo: float, hi: float, meaning: str, *, lo_open: bool = False
) -> Any:
    """The pydantic constraint of a finite range, registered in RANGES under ``name``."""
    RANGES[name] = Range("int" if base is int else "number", lo, hi, lo_open, meaning)
    if lo_open:
        field = Field(gt=lo, le=hi, allow_inf_nan=False)
    else:
        field = Field(ge=lo, le=hi, allow_inf_nan=False)
    # after the bounds, so the JSON schema keeps its minimum and maximum
    said = RANGES[name].expected()
    field.metadata.append(BeforeValidator(partial(_number_not_bool, expected=said)))
    field.metadata.append(AfterValidator(_plus_zero))
    return field


def _plus_zero(value: object) -> object:
    """-0.0 is 0.0: it passed ``>= 0`` and came back as a cost of ``-0.0`` (``$-0``)."""
    return value + 0.0 if isinstance(value, float) else value


#: a number written as text, as JSON or YAML writes one: ASCII digits, a sign, a fraction, an
#: exponent; nothing else. No leading zero before another digit: JSON has none, YAML 1.1 reads
#: ``0755`` as octal and ``0758`` as text, YAML 1.2 both as decimal (``count: 0758`` was a pool
#: of 758 chips; a hostile-input review)
_NUMBER_TEXT = re.compile(
    r"[-+]?(?:(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|inf|infinity|nan)",
    re.ASCII | re.IGNORECASE,  # infinities and NaN: refused after, as not finite
)


def _number_not_bool(value: object, expected: str = "a number") -> object:
    """A boolean is not a number: pydantic read ``mfu: true`` as 100% MFU, ``chips: yes`` (a
    YAML boolean) as 1 chip and ``tokens: true`` as one token.

    A number written as text (``"50000"``, as the contract allows) must be written as JSON or
    YAML writes a number: pydantic's lax mode also read ``"3_000_000"`` (Python's digit
    grouping, which JSON refuses) as 3,000,000, ``" 5 "`` as 5 and bytes ``b"5"`` as 5, while
    ``"3,000,000"`` was refused; one spelling of a number, not several (pyapi30).

    Each refusal ends ``(expected <the range>)``, which the problem's ``expected`` and the
    CLI's line carry (``errors.validation_expected``)."""
    tail = f" (expected {expected})"
    if isinstance(value, bool):
        raise ValueError(f"got a boolean ({str(value).lower()}), not a number{tail}")
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueError(f"got bytes, not a number{tail}")
    if isinstance(value, str) and not _NUMBER_TEXT.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise ValueError(
            f"got the text {shown!r}, not a number: write a decimal number as JSON does "
            f"(digits 0-9, no leading zeros, underscores, separators or spaces){tail}"
        )
    return value


#: the largest chip count anywhere (a pool, a window, a stage, a purchase): 10 million
MAX_CHIPS = 10_000_000
#: individuals in a dataset (more than the world's population)
MAX_PEOPLE = 10_000_000_000

ChipCount = Annotated[
    int, _range("ChipCount", int, 0, MAX_CHIPS, "chips in a pool or availability window")
]
Chips = Annotated[
    int,
    _range("Chips", int, 1, MAX_CHIPS, "chips a stage or estimate uses; chips a tenant may buy"),
]
People = Annotated[
    int,
    _range(
        "People",
        int,
        0,
        MAX_PEOPLE,
        "individuals whose personal information a dataset or service "
        "holds (more than the world's population)",
    ),
]
Quantity = Annotated[int, _range("Quantity", int, 0, 1e9, "chips acquired in one `procure` check")]
Tpp = Annotated[
    int,
    _range("Tpp", int, 0, 1e15, "total processing performance (TPP) of other orders"),
]
UsdPerChipHour = Annotated[
    float,
    _range(
        "UsdPerChipHour",
        float,
        0,
        10_000,
        "rental price, USD per chip-hour (an H100 rents for about 2-3)",
    ),
]
UsdPerChip = Annotated[
    float, _range("UsdPerChip", float, 0, 1e8, "purchase price of one chip, USD")
]
UsdPerGb = Annotated[float, _range("UsdPerGb", float, 0, 10_000, "egress price, USD per GB")]
Usd = Annotated[float, _range("Usd", float, 0, 1e15, "a budget, USD", lo_open=True)]
UsdPerDay = Annotated[float, _range("UsdPerDay", float, 0, 1e12, "a late penalty, USD per day")]
LeadDays = Annotated[float, _range("LeadDays", float, 0, 3650, "days until bought chips arrive")]
Days = Annotated[
    float, _range("Days", float, 0.001, 3650, "a serving period, days (0.001 is 86 s)")
]
HorizonDays = Annotated[
    float, _range("HorizonDays", float, 1, 3650, "how far ahead plans are scheduled, days")
]
Years = Annotated[float, _range("Years", float, 0.1, 50, "an amortization period, years")]
Gbps = Annotated[float, _range("Gbps", float, 0.001, 1e7, "WAN bandwidth, Gbit/s")]
Gigabytes = Annotated[
    float, _range("Gigabytes", float, 0, 1e10, "a dataset's size, GB (10 EB at most)")
]
Tokens = Annotated[
    float,
    _range(
        "Tokens", float, 1, 1e18, "training tokens (the largest runs so far use a few times 10^13)"
    ),
]
BatchTokens = Annotated[float, _range("BatchTokens", float, 1, 1e12, "tokens per optimizer step")]
Params = Annotated[float, _range("Params", float, 1, 1e15, "model parameters, total or active")]
Layers = Annotated[int, _range("Layers", int, 1, 10_000, "transformer layers")]
DModel = Annotated[int, _range("DModel", int, 1, 1_000_000, "hidden size")]
Heads = Annotated[int, _range("Heads", int, 1, 100_000, "attention heads, or key/value heads")]
SeqLen = Annotated[int, _range("SeqLen", int, 1, 1e8, "tokens of context")]
SoftwareYear = Annotated[
    int,
    _range(
        "SoftwareYear", int, 2018, 2035, "year of the training software stack (estimate requests)"
    ),
]
#: the lowest measured MFU Straits takes: published runs stand between about 10% and 60%; below
#: 1% is a unit slip (4e-3 for 0.4) that would plan for a thousand times the hours
MIN_MFU = 0.01
Mfu = Annotated[
    float,
    _range("Mfu", float, MIN_MFU, 1, "a measured per-step model FLOPs utilization (0.4 for 40%)"),
]
TopK = Annotated[int, _range("TopK", int, 1, 10_000, "experts each token is routed to")]
Epochs = Annotated[float, _range("Epochs", float, 0.001, 10_000, "passes over a stage's datasets")]
TokensPerS = Annotated[
    float, _range("TokensPerS", float, 0.001, 1e12, "serving throughput, tokens per second")
]
RequestTokens = Annotated[
    int, _range("RequestTokens", int, 1, 1e8, "prompt or output tokens of one request")
]


def _thousandths(value: float) -> float:
    """A workload's weight is a whole number of thousandths: the planner's model counts weights
    in thousandths, and a finer one (0.0004 was 0 there, 0.0015 would be 0.002) would be
    planned for other than it reads."""
    units = value * 1000
    if abs(units - round(units)) > 1e-6 + 1e-12 * units:
        raise ValueError(
            f"{value:g} is not a whole number of thousandths: expected a number from 0.001 to "
            "1,000,000 in steps of 0.001 (the planner counts weights in thousandths)"
        )
    return value


Weight = Annotated[
    float,
    _range(
        "Weight", float, 0.001, 1_000_000, "a workload's weight under `completion`, in 0.001 steps"
    ),
    AfterValidator(_thousandths),
]
Pue = Annotated[float, _range("Pue", float, 1.0, 3.0, "power usage effectiveness")]
GridIntensity = Annotated[
    float,
    _range(
        "GridIntensity",
        float,
        0,
        5_000,
        "grid carbon intensity, gCO2e/kWh (the dirtiest grids are near 1,000)",
    ),
]
TrainingOps = Annotated[
    float,
    _range(
        "TrainingOps",
        float,
        0,
        1e32,
        "operations used to train a model (the rules' thresholds are near 10^26)",
    ),
]

NodeGpus = Annotated[int, _range("NodeGpus", int, 1, 64, "GPUs (or NPUs) per node of a Slurm site")]
SlurmJobs = Annotated[
    int, _range("SlurmJobs", int, 1, 10_000_000, "jobs a Slurm cluster holds at once (MaxJobCount)")
]


def ranges_markdown() -> str:
    """The table of ``RANGES`` as docs/robustness.md shows it."""
    rows = ["| range | kind | accepted | for |", "|---|---|---|---|"]
    rows += [f"| `{name}` | {r.kind} | {r.text()} | {r.meaning} |" for name, r in RANGES.items()]
    return "\n".join(rows)


# the types a few older modules still import: bounded as the generic quantities they are
NonNegInt = Annotated[int, _range("NonNegInt", int, 0, 1e15, "a count (older fields)")]
PosFloat = Annotated[
    float, _range("PosFloat", float, 0, 1e18, "a positive quantity (older fields)", lo_open=True)
]
NonNegFloat = Annotated[float, _range("NonNegFloat", float, 0, 1e18, "a quantity (older fields)")]


# --- dates and text ------------------------------------------------------------------------------
def _in_window(value: dt.date) -> dt.date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(
            f"{value.isoformat()} is outside the dates Straits plans for "
            f"({MIN_DATE.isoformat()} to {MAX_DATE.isoformat()})"
        )
    return value


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: what may follow the day: a zero time, in UTC if a zone is given (``T00:00:00Z``); another
#: zone is another day's instant (``2025-04-09T00:00:00+14:00`` is 8 April in UTC)
_ZERO_TIME = re.compile(r"(?:[T ]00:00(?::00(?:\.0+)?)?(?:Z|[+-]00(?::?00)?)?)?", re.IGNORECASE)


def _written_as_a_day(value: object) -> object:
    """A date is written ``YYYY-MM-DD`` (a YAML date, or one with a zero time, too). Pydantic
    read a number, or text of digits, as seconds since 1970: ``"date": 1744156800`` was
    decided as 2025-04-09 without a word."""
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and not _ISO_DAY.match(value.strip())
    ):
        raise ValueError(f"{str(value)[:40]!r} is not a date written YYYY-MM-DD")
    zoned = isinstance(value, dt.datetime) and value.utcoffset() not in (None, dt.timedelta(0))
    if zoned or (isinstance(value, str) and not _ZERO_TIME.fullmatch(value.strip()[10:])):
        # pydantic read any zero time in any zone as its local day (atk71)
        raise ValueError(
            f"{str(value)[:40]!r} is not a date written YYYY-MM-DD "
            "(a time, if any, is 00:00 UTC: a day in another zone is another instant)"
        )
    return value


Date = Annotated[dt.date, BeforeValidator(_written_as_a_day), AfterValidator(_in_window)]
"""A calendar date from 2000-01-01 to 2100-12-31, written YYYY-MM-DD."""
_CONTROL = TERMINAL_CONTROL  # tab and newline are text (straits/controls.py)


def refuse_control(text: str, pattern: re.Pattern[str], why: str) -> str:
    """``text``, refused (ValueError naming the character and its position, then ``why``)
    when ``pattern`` finds a character in it."""
    m = pattern.search(text)
    if m:
        raise ValueError(f"holds the control character {m.group()!r} at position {m.start()}{why}")
    return text


def printable(text: str) -> str:
    """``text``, refused when it holds a control character a terminal would act on."""
    return refuse_control(text, _CONTROL, " (a terminal would act on it)")


Text = Annotated[str, StringConstraints(max_length=2000), AfterValidator(printable)]
"""Free text (a source, a note): at most 2,000 characters."""


def _command(text: str) -> str:
    if not text.strip():
        # `bash -c "   "` exits 0: the stage would be done without running anything, and the
        # stages after it start (`--run ' '` was refused already; a fresh-eye attack)
        raise ValueError("a command of only white space, which would run nothing and succeed")
    return text


Command = Annotated[
    str,
    Field(min_length=1, max_length=16384, pattern=r"^[^\x00]*$"),
    AfterValidator(_command),
]
"""A stage's shell command: up to 16,384 characters, no NUL, not blank."""
