"""The Python API: what every shell (CLI, REST server) calls, returning the public JSON shapes.

Each function takes validated inputs or plain documents and returns exactly the JSON of the
contract it serves (``docs/contracts.md``); the CLI prints it, the server returns it. Nothing
here prints, reads files or touches a database.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from straits.catalog import Chip, catalog, classify_2022, classify_2023, get_chip
from straits.errors import InputError, RequestError
from straits.estimate import (
    Estimate,
    estimate_serving,
    estimate_training,
    nearest_runs,
    typical_chips,
)
from straits.loading import validate_as
from straits.model.request import CheckRequest, EstimateRequest
from straits.model.types import Regime
from straits.rules import Rule, RuleSet
from straits.rules.listing import in_force, rule_regimes


# --- check ---------------------------------------------------------------------------------------
def parse_check_document(data: Any, label: str) -> tuple[list[CheckRequest], bool]:
    """(requests, was_list) from a parsed document: one object or a non-empty list of them."""
    if isinstance(data, dict):
        return [validate_as(CheckRequest, data, source=label, error=RequestError)], False
    if isinstance(data, list) and data:
        out = []
        for i, item in enumerate(data):
            try:
                if not isinstance(item, dict):
                    raise RequestError("each request must be a JSON object", path=f"[{i}]")
                out.append(validate_as(CheckRequest, item, source=label, error=RequestError))
            except InputError as exc:
                path = f"[{i}]" + ("." + exc.path if exc.path and exc.path != f"[{i}]" else "")
                raise RequestError(exc.detail, source=label, path=path,
                                   expected=exc.expected) from None
        return out, True
    raise RequestError("expected a JSON object (one request) or a non-empty list of them",
                       source=label)


def check_json(rules: RuleSet, requests: list[CheckRequest], was_list: bool) -> Any:
    """The ``straits check --json`` answer: one decision object, or a list in request order."""
    answers = [d.to_json() for d in rules.check_many(requests)]
    return answers if was_list else answers[0]


# --- estimate ------------------------------------------------------------------------------------
def run_estimate(req: EstimateRequest, chips: int | None = None) -> Estimate:
    """The request's estimate; a training request without ``chips`` runs on the cluster size
    published runs of its size typically used (see :func:`chips_basis`)."""
    chip = get_chip(req.chip)
    n = chips if chips is not None else req.chips
    if req.kind == "serve":
        assert req.days is not None
        return estimate_serving(req.model, chip, n, req.days, req.usd_per_chip_hour,
                                tokens_per_s=req.tokens_per_s, prompt_tokens=req.prompt_tokens,
                                output_tokens=req.output_tokens)
    assert req.tokens is not None
    if n is None:
        n = typical_chips(req.model, req.tokens, chip, software_year=req.software_year)
    return estimate_training(req.model, req.tokens, chip, n, req.usd_per_chip_hour,
                             software_year=req.software_year)


def chips_basis(req: EstimateRequest, chips: int | None = None) -> str:
    """Where the estimate's cluster size came from: 'given', or 'typical' (training) /
    'target' (serving sized for ``tokens_per_s``) when the request did not say."""
    if chips is not None or req.chips is not None:
        return "given"
    return "typical" if req.kind == "train" else "target"


def estimate_json(req: EstimateRequest, est: Estimate | None = None, *,
                  chips: int | None = None) -> dict[str, Any]:
    """The ``straits estimate --json`` answer (the estimate is computed when not given;
    ``chips`` overrides the request's cluster size, as in ``--sweep chips``)."""
    est = est if est is not None else run_estimate(req, chips)
    out = est.to_json()
    e = est.energy(get_chip(req.chip), pue=req.pue, gco2_per_kwh=req.grid_gco2_per_kwh,
                   country=req.country)
    out["energy"] = e.to_json() if e is not None else None
    out["chips_basis"] = chips_basis(req, chips)
    if req.kind == "train":
        assert req.tokens is not None
        out["nearest_runs"] = [n.to_json() for n in nearest_runs(req.model, req.tokens,
                                                                  get_chip(req.chip))]
    return out


# --- catalog and rules ---------------------------------------------------------------------------
def chip_json(chip: Chip) -> dict[str, Any]:
    figures = {}
    for name in ("bf16_tflops", "fp16_tflops", "fp8_tflops", "int8_tops", "hbm_gb", "hbm_tbps",
                 "scaleup_gbps", "tdp_w", "die_mm2", "rent_usd_per_hour"):
        fig = getattr(chip, name)
        if fig is not None:
            figures[name] = fig.model_dump(exclude_none=True)
    c22, c23 = classify_2022(chip), classify_2023(chip)
    pd = chip.performance_density
    return {
        "id": chip.id, "name": chip.name, "vendor": chip.vendor, "origin": chip.origin,
        "family": chip.family, "datacenter": chip.datacenter, "figures": figures,
        "derived": {
            "tpp": round(chip.tpp, 1), "tpp_upper": round(chip.tpp_upper, 1),
            "performance_density": round(pd, 3) if pd is not None else None,
            "class_2022": c22.cls, "class_2022_basis": c22.basis,
            "class_2023": c23.cls, "class_2023_basis": c23.basis,
            "us_origin": chip.origin == "US", "prc_advanced": chip.is_prc_advanced,
            "midpoints_used": chip.mid_figures,
        },
    }


def chips_json() -> list[dict[str, Any]]:
    """The ``straits chips --json`` answer."""
    return [chip_json(c) for c in catalog()]


def rule_json(r: Rule) -> dict[str, Any]:
    return {"rule": r.id, "pack": r.pack, "file": r.file, "line": r.line, "title": r.title,
            "citation": r.citation, "confidence": r.confidence, "effect": r.effect,
            "requires": r.requires, "presumption": r.presumption,
            "effective_from": r.effective_from.isoformat(),
            "effective_until": r.effective_until.isoformat() if r.effective_until else None,
            "regimes": list(rule_regimes(r)), "reason": r.reason, "reading": r.reading}


def select_rules(rules: RuleSet, date: dt.date | None = None, regime: Regime = "enacted",
                 packs: list[str] | None = None) -> list[Rule]:
    selected = list(rules.rules)
    if date is not None:
        selected = in_force(selected, date, regime)
    if packs:
        selected = [r for r in selected if r.pack in packs]
    return selected


def rules_json(rules: RuleSet, date: dt.date | None = None, regime: Regime = "enacted",
               packs: list[str] | None = None) -> list[dict[str, Any]]:
    """The ``straits rules list --json`` answer."""
    return [rule_json(r) for r in select_rules(rules, date, regime, packs)]


def packs_json(rules: RuleSet) -> list[dict[str, str]]:
    """The loaded packs with their versions and content digests (recorded in the ledger)."""
    return [{"name": p.name, "version": p.version, "digest": p.digest} for p in rules.packs]
