"""Shared field types for the pydantic models: ids, countries, chips, authorizations."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from straits.catalog import catalog, is_country
from straits.errors import UnknownChipError

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
_WEIGHT = r"(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?\s*\*\s*)?"
_NAME = r"[A-Za-z][A-Za-z0-9_-]*"
_OBJECTIVE = re.compile(rf"^\s*{_WEIGHT}{_NAME}(?:\s*\+\s*{_WEIGHT}{_NAME})*\s*$")


def _objective_form(text: str) -> str:
    if len(text) > 200 or not _OBJECTIVE.match(text):
        raise ValueError("expected an objective name such as cost, time, completion, energy "
                         "or carbon, or a weighted sum such as cost+80*carbon")
    return text


#: an objective as written in a scenario: a name or a weighted sum such as ``cost+80*carbon``.
#: Only the form is checked here; the planner knows the names (straits.plan.objectives) and
#: rejects an unknown one with the field's path.
ObjectiveSpec = Annotated[str, AfterValidator(_objective_form)]
StageKind = Literal["pretrain", "finetune", "serve"]

NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
