"""From the rules Cedar found applicable to one decision, with reasons.

Cedar evaluates the law's conditions: every policy is a ``permit`` whose condition says when the
rule applies, and Cedar returns the complete set of applicable policies (its "determining
policies"). This module applies one fixed, documented algebra to that set:

* a ``deny`` rule makes the decision ``deny``;
* a ``requires`` rule adds its authorization to what is needed. An authorization the tenant holds
  satisfies it (a certification or a security assessment also satisfies
  ``cac-standard-contract``: PIPL Art. 38 asks for any one mechanism). An unmet
  requirement whose licence is reviewed with a *presumption of denial* makes the decision
  ``deny``; any other unmet requirement makes it ``conditional``;
* ``warn`` rules are warnings and ``note`` rules are explanations: neither changes the decision.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from typing import Any, Literal

from straits.catalog import classify_2022, classify_2023, country_name, get_chip
from straits.model.request import CheckRequest
from straits.rules.pack_loader import Rule

DecisionKind = Literal["allow", "conditional", "deny"]

#: requirement -> authorizations that satisfy it. PIPL Art. 38 lets personal information leave
#: China under any one of its mechanisms, so a passed security assessment or a certification
#: also covers a transfer for which the standard contract would do. Before those mechanisms
#: existed, Art. 38 still asked for a legal basis (``pipl-art38-basis``), which any of them
#: also provides.
SATISFIED_BY: dict[str, tuple[str, ...]] = {
    "cac-standard-contract": (
        "cac-standard-contract",
        "cac-certification",
        "cac-security-assessment",
    ),
    "pipl-art38-basis": (
        "pipl-art38-basis",
        "cac-standard-contract",
        "cac-certification",
        "cac-security-assessment",
    ),
}


def satisfier(requirement: str, held: Iterable[str]) -> str | None:
    """The held authorization that satisfies ``requirement``, if any."""
    held = set(held)
    for auth in SATISFIED_BY.get(requirement, (requirement,)):
        if auth in held:
            return auth
    return None


@dataclass(frozen=True)
class Reason:
    rule: str
    title: str
    citation: str
    effect: str
    confidence: str
    template: str
    """the rule's ``@reason``; :attr:`text` fills it from the request's values on first use"""
    values: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    requires: str | None = None
    presumption: str | None = None
    outcome: str = ""
    """For requirements: ``satisfied`` (by an authorization held), ``conditional`` or ``deny``."""
    satisfied_by: str | None = None
    reading: str | None = None

    @cached_property
    def text(self) -> str:
        """The one-sentence plain-language reason, for this request."""
        return render(self.template, self.values)

    @property
    def label(self) -> str:
        """Short label used to group rejections: 'PIPL cross-border (cac-security-assessment)'."""
        return f"{self.title} ({self.requires})" if self.requires else self.title

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "citation": self.citation,
            "effect": self.effect,
            "confidence": self.confidence,
            "title": self.title,
            "text": self.text,
        }
        if self.requires:
            out["requires"] = self.requires
            out["outcome"] = self.outcome
            if self.presumption:
                out["presumption"] = self.presumption
            if self.satisfied_by:
                out["satisfied_by"] = self.satisfied_by
        if self.reading:
            out["reading"] = self.reading
        return out


@dataclass(frozen=True)
class Decision:
    decision: DecisionKind
    requires: tuple[str, ...]
    reasons: tuple[Reason, ...]
    warnings: tuple[Reason, ...] = ()
    notes: tuple[Reason, ...] = ()
    satisfied: tuple[str, ...] = ()

    @property
    def lawful(self) -> bool:
        return self.decision == "allow"

    @property
    def blocking(self) -> tuple[Reason, ...]:
        """The reasons that keep the decision from ``allow``."""
        return tuple(r for r in self.reasons if r.outcome in ("deny", "conditional"))

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "requires": list(self.requires),
            "reasons": [r.to_json() for r in self.reasons],
            "warnings": [w.to_json() for w in self.warnings],
            "notes": [n.to_json() for n in self.notes],
            "satisfied": list(self.satisfied),
        }


def _shortest(x: float) -> str:
    """``x`` in as few significant digits as read back as ``x`` (at least two): 1.00000001e26
    read ``1e+26`` in a reason that said it was above 1e26 (atk71)."""
    for digits in range(2, 18):
        text = f"{x:.{digits}g}"
        if float(text) == x:
            return text
    return repr(x)


def _count(n: int) -> str:
    return f"{n:,}"


@cache
def _country(code: str) -> str:
    return f"{country_name(code)} ({code})"


@cache
def _chip_values(chip_id: str) -> dict[str, str]:
    chip = get_chip(chip_id)
    return {
        "chip": chip.id,
        "chip_class_2023": classify_2023(chip).cls,
        "chip_basis_2022": classify_2022(chip).basis,
        "chip_tpp": f"{chip.tpp_upper:,.0f}",
        "chip_mem_bw": f"{chip.hbm_tbps.upper * 1000:,.0f}",
    }


class TemplateValues(dict[str, str]):
    """Values the ``@reason`` templates may use, formatted for people, computed on first use
    (most requests render few or no reasons). Unknown names render as '?'."""

    def __init__(self, req: CheckRequest) -> None:
        super().__init__()
        self.req = req

    def __missing__(self, key: str) -> str:
        value = self._compute(key)
        self[key] = value
        return value

    def _compute(self, key: str) -> str:
        r = self.req
        if key.startswith("chip"):
            return _chip_values(r.chip).get(key, "?") if r.chip else "?"
        if key == "quantity_tpp" and r.chip:
            return f"{r.quantity * math.ceil(get_chip(r.chip).tpp_upper):,}"
        simple = {
            "tenant_hq": lambda: _country(r.tenant.hq),
            "site_country": lambda: _country(r.site.country),
            "site_operator_hq": lambda: _country(r.site.operator_hq),
            "site": lambda: f"the site in {country_name(r.site.country)}",
            "date": lambda: r.date.isoformat(),
            "quantity": lambda: _count(r.quantity),
            "prior_tpp": lambda: _count(r.prior_tpp),
        }
        if key in simple:
            return simple[key]()
        d = r.data
        if key.startswith("data_") and d is not None:
            data = {
                "data_origin": lambda: _country(d.origin),
                "data_subjects": lambda: _count(d.subjects),
                "data_total_ytd": lambda: _count(d.subjects + d.prior_subjects_ytd),
                "data_sensitive_ytd": lambda: _count(d.sensitive_subjects + d.prior_sensitive_ytd),
                "data_total_since_last_year": lambda: _count(
                    d.subjects + d.prior_subjects_since_last_year
                ),
                "data_sensitive_since_last_year": lambda: _count(
                    d.sensitive_subjects + d.prior_sensitive_since_last_year
                ),
            }
            return data[key]() if key in data else "?"
        if key == "training_ops" and r.weights is not None:
            return _shortest(r.weights.training_ops)
        return "?"


def template_values(req: CheckRequest) -> Mapping[str, str]:
    """Values the ``@reason`` templates may use (see docs/rule-packs.md for the names)."""
    return TemplateValues(req)


def render(template: str, values: Mapping[str, str]) -> str:
    return string.Formatter().vformat(template, (), values)


def combine(
    rules: Iterable[Rule], req: CheckRequest, values: Mapping[str, str] | None = None
) -> Decision:
    """Apply the decision algebra to the applicable ``rules`` of ``req``."""
    values = values if values is not None else template_values(req)
    held = req.tenant.authorizations
    reasons: list[Reason] = []
    warnings: list[Reason] = []
    notes: list[Reason] = []
    unmet: list[str] = []
    satisfied: list[str] = []
    denied = False
    for rule in rules:
        base = Reason(
            rule=rule.id,
            title=rule.title,
            citation=rule.citation,
            effect=rule.effect,
            confidence=rule.confidence,
            template=rule.reason,
            values=values,
            reading=rule.reading,
        )
        if rule.effect == "warn":
            warnings.append(base)
        elif rule.effect == "note":
            notes.append(base)
        elif rule.effect == "deny":
            denied = True
            reasons.append(replace(base, outcome="deny"))
        else:
            assert rule.requires is not None
            by = satisfier(rule.requires, held)
            if by is not None:
                outcome = "satisfied"
                if rule.requires not in satisfied:
                    satisfied.append(rule.requires)
            elif rule.presumption == "denial":
                outcome = "deny"
                denied = True
            else:
                outcome = "conditional"
            if outcome != "satisfied" and rule.requires not in unmet:
                unmet.append(rule.requires)
            reasons.append(
                replace(
                    base,
                    requires=rule.requires,
                    presumption=rule.presumption,
                    outcome=outcome,
                    satisfied_by=by,
                )
            )
    kind: DecisionKind = "deny" if denied else ("conditional" if unmet else "allow")
    return Decision(
        decision=kind,
        requires=tuple(unmet),
        reasons=tuple(reasons),
        warnings=tuple(warnings),
        notes=tuple(notes),
        satisfied=tuple(satisfied),
    )


def worst(decisions: Sequence[Decision]) -> Decision:
    """One decision for one question asked on several days (a purchase, on each day its chips
    may ship): ``deny`` if any day's is, else ``conditional`` if any is, else ``allow``; the
    requirements, reasons, warnings, notes and satisfied authorizations of every day, each
    once, as on the first day that gives it (its text quotes that day's request)."""
    if len(decisions) == 1:
        return decisions[0]
    kinds = {d.decision for d in decisions}
    kind: DecisionKind = (
        "deny" if "deny" in kinds else "conditional" if "conditional" in kinds else "allow"
    )

    def once(field: str) -> tuple[Reason, ...]:
        seen: dict[str, Reason] = {}
        for d in decisions:
            for r in getattr(d, field):
                seen.setdefault(r.rule, r)
        return tuple(seen.values())

    return Decision(
        decision=kind,
        requires=tuple(dict.fromkeys(a for d in decisions for a in d.requires)),
        reasons=once("reasons"),
        warnings=once("warnings"),
        notes=once("notes"),
        satisfied=tuple(dict.fromkeys(a for d in decisions for a in d.satisfied)),
    )
