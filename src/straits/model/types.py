"""Shared field types for the pydantic models: ids, countries, chips, authorizations."""

from __future__ import annotations

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
    # a legal basis for a transfer of Chinese personal information under PIPL Art. 38, declared
    # for transfers made before the CAC's mechanisms existed (assessment: 2022-09-01; standard
    # contract: 2023-06-01); any later CAC mechanism also satisfies the requirement
    "pipl-art38-basis",
]
AUTHORIZATIONS: tuple[str, ...] = Authorization.__args__  # type: ignore[attr-defined]

DataClass = Literal["public", "personal", "sensitive_personal", "important"]
Regime = Literal["enacted", "ai-diffusion"]
Objective = Literal["cost", "time", "completion"]
StageKind = Literal["pretrain", "finetune", "serve"]

NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
