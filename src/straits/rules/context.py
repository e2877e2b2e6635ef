"""Turning a :class:`CheckRequest` into a Cedar request (principal, action, resource, context).

Derived chip figures (TPP, PD, export classes) come from the catalog, computed from specs. Unknown
figures are read conservatively: an unknown I/O bandwidth as very high.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import cache
from typing import Any

from straits.catalog import classify_2022, classify_2023, get_chip
from straits.catalog.chips import Chip
from straits.model.request import CheckRequest
from straits.rules.cedar import entity, extension

NS = "Straits"
#: I/O bandwidth assumed when a chip's is not published (conservative: above every threshold)
UNKNOWN_IO_GBPS = 1_000_000


@cache
def country(code: str) -> dict[str, Any]:
    """A country entity reference (shared: callers must not mutate it)."""
    return entity(f"{NS}::Country", code)


def chip_entity(chip: Chip) -> dict[str, Any]:
    """The Cedar entity of a catalog chip, with the figures the rules read."""
    return {"uid": {"type": f"{NS}::Chip", "id": chip.id}, "attrs": chip_facts(chip), "parents": []}


def chip_facts(chip: Chip) -> dict[str, Any]:
    die = chip.die_mm2_lower
    pd = chip.tpp_upper / die if die is not None else None
    io = chip.io_gbps_upper
    return {
        "id": chip.id,
        "vendor": chip.vendor,
        "us_origin": chip.origin == "US",
        "datacenter": chip.datacenter,
        "tpp": math.ceil(chip.tpp_upper),
        "pd_known": pd is not None,
        "pd": extension("decimal", f"{min(pd or 0.0, 9.2e14):.4f}"),
        "io_gbps": math.ceil(io) if io is not None else UNKNOWN_IO_GBPS,
        "mem_bw_gbps": math.ceil(chip.hbm_tbps.upper * 1000),
        "class_2022": classify_2022(chip).cls,
        "class_2023": classify_2023(chip).cls,
        "prc_advanced": chip.is_prc_advanced,
    }


def date_value(d: dt.date) -> dict[str, Any]:
    return extension("datetime", d.isoformat())


def build_context(req: CheckRequest, date: dt.date | None = None) -> dict[str, Any]:
    """The context record of the schema's ``Facts`` type. ``date`` overrides ``req.date``
    (the cache evaluates a representative date of the request's interval)."""
    ctx: dict[str, Any] = {
        "date": date_value(date or req.date),
        "regime": req.regime,
        "tenant": {
            "hq": country(req.tenant.hq),
            "authorizations": sorted(req.tenant.authorizations),
            "ciio": req.tenant.ciio,
            "entity_listed": req.tenant.entity_listed,
        },
        "site": {
            "country": country(req.site.country),
            "operator_hq": country(req.site.operator_hq),
            "dpf_certified": req.site.dpf_certified,
        },
        "quantity": req.quantity,
        "quantity_tpp": 0,
        "prior_tpp": req.prior_tpp,
    }
    if req.chip is not None:
        chip = get_chip(req.chip)
        ctx["chip"] = entity(f"{NS}::Chip", chip.id)
        ctx["quantity_tpp"] = req.quantity * math.ceil(chip.tpp_upper)
    if req.data is not None:
        d = req.data
        ctx["data"] = {
            "origin": country(d.origin),
            "classes": sorted(set(d.classes)),
            "subjects": d.subjects,
            "sensitive_subjects": d.sensitive_subjects,
            "prior_subjects_ytd": d.prior_subjects_ytd,
            "prior_sensitive_ytd": d.prior_sensitive_ytd,
            "prior_subjects_since_last_year": d.prior_subjects_since_last_year,
            "prior_sensitive_since_last_year": d.prior_sensitive_since_last_year,
        }
    if req.weights is not None:
        w = req.weights
        ctx["weights"] = {
            "training_ops_e18": math.ceil(w.training_ops / 1e18),
            "open": w.open,
            "from_country": country(w.from_country),
        }
    if req.ships_from is not None:
        ctx["ships_from"] = country(req.ships_from)
    return ctx


def build_request(req: CheckRequest, date: dt.date | None = None) -> dict[str, Any]:
    return {
        "principal": {"type": f"{NS}::Tenant", "id": "tenant"},
        "action": {"type": f"{NS}::Action", "id": req.action},
        "resource": {"type": f"{NS}::Site", "id": "site"},
        "context": build_context(req, date),
    }
