"""Shared field types for the pydantic models: ids, countries, chips, authorizations, and the
range of every number and date a user can give.

Every number a scenario or request carries is finite and inside a documented range, checked by
pydantic before any arithmetic: no ``1e308`` price, ``.inf`` token count or 400-digit chip count
reaches the estimator or the optimizer, where it would overflow. The ranges are generous (10x to
1000x beyond anything real) and listed in docs/robustness.md; ``RANGES`` below is the table a
test checks every model field against.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from straits.catalog import catalog, is_country
from straits.errors import UnknownChipError
from straits.limits import MAX_DATE, MIN_DATE

Id = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", min_length=1, max_length=128),
]


def _not_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("got a YAML boolean: quote country codes such as \"NO\" (Norway)")
    return value


def _country(code: str) -> str:
    code = code.upper()
    if not is_country(code):
        raise ValueError(f"{code!r} is not an ISO 3166-1 alpha-2 country code (e.g. CN, SG, MY)")
    return code


def _chip(chip_id: str) -> str:
    try:
        return catalog().canonical(chip_id)
    except UnknownChipError as exc:
        raise ValueError(exc.detail + "; known chips: " + ", ".join(catalog().ids)) from None


Country = Annotated[
    str,
    BeforeValidator(_not_bool),
    StringConstraints(min_length=2, max_length=2),
    AfterValidator(_country),
]
ChipId = Annotated[str, AfterValidator(_chip)]

Authorization = Literal[
    "bis-license",
    "cac-security-assessment",
    "cac-standard-contract",
    "cac-certification",
    "gdpr-transfer-safeguard",
    "my-strategic-trade-permit",
]
AUTHORIZATIONS: tuple[str, ...] = Authorization.__args__  # type: ignore[attr-defined]

DataClass = Literal["public", "personal", "sensitive_personal", "important"]
Regime = Literal["enacted", "ai-diffusion"]
Objective = Literal["cost", "time", "completion"]
StageKind = Literal["pretrain", "finetune", "serve"]

# --- numbers: finite and in range ----------------------------------------------------------------
def _num(lo: float, hi: float, *, lo_open: bool = False) -> Any:
    if lo_open:
        return Field(gt=lo, le=hi, allow_inf_nan=False)
    return Field(ge=lo, le=hi, allow_inf_nan=False)


#: the largest chip count anywhere (a pool, a window, a stage, a purchase): 10 million
MAX_CHIPS = 10_000_000
#: individuals in a dataset (more than the world's population)
MAX_PEOPLE = 10_000_000_000

ChipCount = Annotated[int, _num(0, MAX_CHIPS)]
"""Chips in a pool or an availability window: 0 to 10 million."""
Chips = Annotated[int, _num(1, MAX_CHIPS)]
"""Chips a stage or an estimate uses, or a tenant may buy: 1 to 10 million."""
People = Annotated[int, _num(0, MAX_PEOPLE)]
"""Individuals whose personal information a dataset or service holds: 0 to 10^10."""
Quantity = Annotated[int, _num(0, 1_000_000_000)]
"""Chips acquired in one `procure` check: 0 to 10^9."""
UsdPerChipHour = Annotated[float, _num(0, 10_000)]
"""Rental price: 0 to 10,000 USD per chip-hour (an H100 rents for about 2-3)."""
UsdPerChip = Annotated[float, _num(0, 100_000_000)]
"""Purchase price of one chip: 0 to 10^8 USD."""
UsdPerGb = Annotated[float, _num(0, 10_000)]
"""Egress price: 0 to 10,000 USD per GB."""
Usd = Annotated[float, _num(0, 1e15, lo_open=True)]
"""A budget: above 0, at most 10^15 USD."""
UsdPerDay = Annotated[float, _num(0, 1e12)]
"""A late penalty: 0 to 10^12 USD per day."""
LeadDays = Annotated[float, _num(0, 3650)]
"""Days until bought chips arrive: 0 to 3,650."""
Days = Annotated[float, _num(0.01, 3650)]
"""A serving period: 0.01 to 3,650 days."""
HorizonDays = Annotated[float, _num(1, 3650)]
"""How far ahead plans are scheduled: 1 to 3,650 days."""
Years = Annotated[float, _num(0.1, 50)]
"""An amortization period: 0.1 to 50 years."""
Gbps = Annotated[float, _num(0.001, 10_000_000)]
"""WAN bandwidth: 0.001 to 10^7 Gbit/s."""
Gigabytes = Annotated[float, _num(0, 1e10)]
"""A dataset's size: 0 to 10^10 GB (10 EB)."""
Tokens = Annotated[float, _num(1, 1e18)]
"""Training tokens: 1 to 10^18 (the largest runs so far use a few times 10^13)."""
BatchTokens = Annotated[float, _num(1, 1e12)]
"""Tokens per optimizer step: 1 to 10^12."""
Params = Annotated[float, _num(1, 1e15)]
"""Model parameters: 1 to 10^15."""
Layers = Annotated[int, _num(1, 10_000)]
DModel = Annotated[int, _num(1, 1_000_000)]
Heads = Annotated[int, _num(1, 100_000)]
SeqLen = Annotated[int, _num(1, 100_000_000)]
"""Tokens of context: 1 to 10^8."""
TopK = Annotated[int, _num(1, 10_000)]
Epochs = Annotated[float, _num(0.001, 10_000)]
TokensPerS = Annotated[float, _num(0.001, 1e12)]
"""Serving throughput: 0.001 to 10^12 tokens per second."""
RequestTokens = Annotated[int, _num(1, 100_000_000)]
"""Prompt or output tokens of one request: 1 to 10^8."""
Weight = Annotated[float, _num(0.001, 1_000_000)]
Pue = Annotated[float, _num(1.0, 3.0)]
"""Power usage effectiveness: 1.0 to 3.0."""
GridIntensity = Annotated[float, _num(0, 5_000)]
"""Grid carbon intensity: 0 to 5,000 gCO2e/kWh (the dirtiest grids are near 1,000)."""
TrainingOps = Annotated[float, _num(0, 1e32)]
"""Operations used to train a model: 0 to 10^32 (the rules' thresholds are near 10^26)."""

# the types a few older modules still import: bounded as the generic quantities they are
NonNegInt = Annotated[int, _num(0, 10**15)]
PosFloat = Annotated[float, _num(0, 1e18, lo_open=True)]
NonNegFloat = Annotated[float, _num(0, 1e18)]


# --- dates and text ------------------------------------------------------------------------------
def _in_window(value: dt.date) -> dt.date:
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"{value.isoformat()} is outside the dates Straits plans for "
                         f"({MIN_DATE.isoformat()} to {MAX_DATE.isoformat()})")
    return value


Date = Annotated[dt.date, AfterValidator(_in_window)]
"""A calendar date from 2000-01-01 to 2100-12-31."""
Text = Annotated[str, StringConstraints(max_length=2000)]
"""Free text (a source, a note): at most 2,000 characters."""
