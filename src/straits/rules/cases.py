"""Rule test cases, the way policy teams test policy (like `opa test`).

Each pack may ship ``cases/*.yaml``::

    defaults:                       # merged (deeply) into every case's request
      date: 2025-06-01
      action: finetune
      tenant: {hq: CN}
      site: {country: SG, operator_hq: SG}
      chip: H100-SXM
    cases:
      - name: exempt below 100,000 individuals
        request: {data: {origin: CN, classes: [personal], subjects: 99999}}
        expect:
          decision: allow             # required
          requires: []                # exact list; default [] for allow, unchecked otherwise
          rules: [cn-cbdf-2024-exempt]  # must apply (as reason, warning or note)
          not_rules: [cn-cbdf-2024-contract]  # must not apply
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field

from straits.errors import InputError, PackError
from straits.loading import validate_as
from straits.model.request import CheckRequest
from straits.model.scenario import Frozen
from straits.rules.decision import Decision
from straits.rules.engine import RuleSet
from straits.rules.pack_loader import Pack


class Expectation(Frozen):
    decision: str = Field(pattern=r"^(allow|conditional|deny)$")
    requires: tuple[str, ...] | None = None
    rules: tuple[str, ...] = ()
    not_rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Case:
    pack: str
    file: str
    name: str
    request: CheckRequest
    raw_request: dict[str, Any]
    expect: Expectation


@dataclass(frozen=True)
class CaseResult:
    case: Case
    actual: Decision
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"pack": self.case.pack, "file": self.case.file, "name": self.case.name,
                "ok": self.ok, "problems": list(self.problems),
                "request": self.case.raw_request,
                "expected": self.case.expect.model_dump(exclude_none=True),
                "actual": self.actual.to_json()}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_cases(pack: Pack) -> list[Case]:
    cases: list[Case] = []
    case_dir = pack.path / "cases"
    for f in sorted(case_dir.glob("*.yaml")) if case_dir.is_dir() else []:
        cases += _load_file(pack.name, f)
    return cases


def _load_file(pack: str, path: Path) -> list[Case]:
    label = f"{pack}/cases/{path.name}"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PackError(f"not valid YAML: {exc}", source=label) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise PackError("a case file needs a `cases` list", source=label)
    defaults = doc.get("defaults") or {}
    out = []
    for i, raw in enumerate(doc["cases"]):
        where = f"{label}: cases[{i}]"
        if not isinstance(raw, dict) or "name" not in raw or "expect" not in raw:
            raise PackError("a case needs `name`, `request` and `expect`", source=where)
        request = deep_merge(defaults, raw.get("request") or {})
        try:
            req = validate_as(CheckRequest, request, source=f"{where} ({raw['name']})")
            exp = validate_as(Expectation, raw["expect"], source=f"{where}.expect")
        except InputError as exc:
            raise PackError(exc.detail, source=exc.source, path=exc.path) from None
        out.append(Case(pack, label, str(raw["name"]), req, request, exp))
    return out


def evaluate(case: Case, actual: Decision, known_rules: set[str]) -> CaseResult:
    exp = case.expect
    problems = []
    if actual.decision != exp.decision:
        problems.append(f"decision: expected {exp.decision}, got {actual.decision}")
    want = exp.requires if exp.requires is not None else (
        () if exp.decision == "allow" else None)
    if want is not None and sorted(actual.requires) != sorted(want):
        problems.append(f"requires: expected {list(want)}, got {list(actual.requires)}")
    applied = {r.rule for r in (*actual.reasons, *actual.warnings, *actual.notes)}
    for rid in exp.rules:
        if rid not in known_rules:
            problems.append(f"rule {rid!r} does not exist")
        elif rid not in applied:
            problems.append(f"rule {rid} expected to apply, but did not")
    for rid in exp.not_rules:
        if rid in applied:
            problems.append(f"rule {rid} expected not to apply, but did")
    return CaseResult(case, actual, tuple(problems))


def run_cases(rules: RuleSet, packs: list[str] | None = None) -> list[CaseResult]:
    """Run the case tables of ``packs`` (default: every loaded pack)."""
    selected = [p for p in rules.packs if not packs or p.name in packs]
    unknown = set(packs or ()) - {p.name for p in rules.packs}
    if unknown:
        raise InputError(f"unknown pack(s): {', '.join(sorted(unknown))}",
                         expected="one of " + ", ".join(p.name for p in rules.packs))
    cases = [c for p in selected for c in load_cases(p)]
    decisions = rules.check_many([c.request for c in cases], use_cache=False)
    known = {r.id for r in rules.rules}
    return [evaluate(c, d, known) for c, d in zip(cases, decisions, strict=True)]
