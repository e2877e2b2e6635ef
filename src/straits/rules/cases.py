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
    boundaries:                     # one request on the day before, the day of and the day after
      - name: the 2024 provisions   # the date a rule starts (or stops) applying
        rules: [cn-cbdf-2024-exempt, cn-sa-2022-volume]
        date: 2024-03-22
        request: {data: {origin: CN, classes: [personal], subjects: 50000}}
        before: {decision: conditional, requires: [cac-standard-contract]}
        after: {decision: allow}    # the day of and the day after

A boundary expands into three cases; whether each of its rules applies on each day follows from
the rule's window (it must start on ``date``, or stop applying on it) and is checked too.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from straits.errors import InputError, PackError, unknown_names
from straits.jsonout import json_types
from straits.loading import validate_as
from straits.model.request import CheckRequest
from straits.model.scenario import Frozen
from straits.model.types import Date, Text
from straits.rules.decision import Decision
from straits.rules.engine import RuleSet
from straits.rules.listing import rule_regimes
from straits.rules.pack_files import load_yaml
from straits.rules.pack_loader import Pack, file_label
from straits.rules.pack_meta import one_line


class Expectation(Frozen):
    #: where an unknown field's error sends the reader (``loading.validate_as``)
    REFERENCE: ClassVar[str] = "a case's `expect:` in docs/rule-packs.md (Test cases)"
    decision: str = Field(pattern=r"^(allow|conditional|deny)$")
    requires: tuple[str, ...] | None = None
    rules: tuple[str, ...] = ()
    not_rules: tuple[str, ...] = ()


class Boundary(Frozen):
    """A rule's change date, tried on the day before, the day of and the day after."""

    REFERENCE: ClassVar[str] = "`Boundary tables` in docs/rule-packs.md"

    name: Text
    rules: tuple[str, ...] = Field(min_length=1)
    """rules that start or stop applying on ``date``"""
    date: Date
    """within the dates Straits plans for: the day before 0001-01-01 was an OverflowError"""
    request: dict[str, Any] = Field(default_factory=dict)
    before: Expectation
    after: Expectation


@dataclass(frozen=True)
class Case:
    pack: str
    file: str
    name: str
    request: CheckRequest
    raw_request: dict[str, Any]
    expect: Expectation
    boundary: tuple[tuple[str, ...], dt.date] | None = None
    """(rules, change date) when the case is one of a boundary's three days"""


@dataclass(frozen=True)
class CaseResult:
    case: Case
    actual: Decision
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "pack": self.case.pack,
            "file": self.case.file,
            "name": self.case.name,
            "ok": self.ok,
            "problems": list(self.problems),
            "request": json_types(self.case.raw_request),  # as read: YAML dates are dates
            "expected": self.case.expect.model_dump(mode="json", exclude_none=True),
            "actual": self.actual.to_json(),
        }


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
    seen: dict[str, Case] = {}
    for c in cases:
        # a case copied and edited under the same name: `rules test` named a failure that
        # could be either one
        if c.name in seen:
            raise PackError(
                f"case {c.name!r} is named twice (also in {seen[c.name].file})",
                source=c.file,
                expected="one name per case of a pack",
            )
        seen[c.name] = c
    return cases


def _load_file(pack: str, path: Path) -> list[Case]:
    label = file_label(path)  # its path: a pack's `name` need not be its folder's
    doc = load_yaml(path, label) or {}
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise PackError("a case file needs a `cases` list", source=label)
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise PackError("`defaults` must be a mapping of request fields", source=label)
    out = []
    for i, raw in enumerate(doc["cases"]):
        where = f"{label}: cases[{i}]"
        if not isinstance(raw, dict) or "name" not in raw or "expect" not in raw:
            raise PackError("a case needs `name`, `request` and `expect`", source=where)
        # printed by `rules test` and its errors (an escape sequence in it reached the terminal)
        name = one_line(raw["name"], where, "name", lines=True)
        over = raw.get("request") or {}
        if not isinstance(over, dict):  # a list or a string was an AttributeError traceback
            raise PackError(
                f"`request` is {type(over).__name__} {str(over)[:80]!r}",
                source=f"{where} ({name})",
                expected="a mapping of request fields, merged over `defaults`",
            )
        request = deep_merge(defaults, over)
        try:
            req = validate_as(CheckRequest, request, source=f"{where} ({name})")
            exp = validate_as(Expectation, raw["expect"], source=f"{where}.expect")
        except InputError as exc:
            raise PackError(exc.detail, source=exc.source, path=exc.path) from None
        out.append(Case(pack, label, name, req, request, exp))
    bounds = doc.get("boundaries")
    bounds = [] if bounds is None else bounds
    if not isinstance(bounds, list):
        raise PackError("`boundaries` must be a list", source=label)
    for i, raw in enumerate(bounds):
        out += _boundary_cases(pack, label, f"{label}: boundaries[{i}]", defaults, raw)
    return out


#: the three days of a boundary: (label, offset in days, whether it is on or after the date)
DAYS = (("day before", -1, False), ("day of", 0, True), ("day after", 1, True))


def _boundary_cases(
    pack: str, label: str, where: str, defaults: dict[str, Any], raw: Any
) -> list[Case]:
    if not isinstance(raw, dict):
        raise PackError(
            "a boundary needs `name`, `rules`, `date`, `before` and `after`", source=where
        )
    try:
        b = validate_as(Boundary, raw, source=where)
    except InputError as exc:
        raise PackError(exc.detail, source=exc.source, path=exc.path) from None
    out = []
    for day, offset, on_or_after in DAYS:
        when = b.date + dt.timedelta(days=offset)
        request = deep_merge(defaults, {**b.request, "date": when.isoformat()})
        exp = b.after if on_or_after else b.before
        name = f"{b.name}: {day} ({when})"
        try:
            req = validate_as(CheckRequest, request, source=f"{where} ({name})")
        except InputError as exc:
            raise PackError(exc.detail, source=exc.source, path=exc.path) from None
        out.append(Case(pack, label, name, req, request, exp, (b.rules, b.date)))
    return out


def boundary_problems(case: Case, rules: RuleSet, applied: set[str]) -> list[str]:
    """A boundary case must name rules that change on its date, and each must apply on exactly
    the days its window says."""
    if case.boundary is None:
        return []
    rids, date = case.boundary
    known = {r.id for r in rules.rules}
    out = []
    for rid in rids:
        if rid not in known:
            out.append(f"boundary rule {rid!r} does not exist")
            continue
        rule = rules.rule(rid)
        until = rule.effective_until
        # @effective_until("9999-12-31") has no day after (an OverflowError traceback)
        ends = until + dt.timedelta(days=1) if until and until < dt.date.max else None
        if date not in (rule.effective_from, ends):
            out.append(
                f"{rid} neither starts nor stops applying on {date} (its window: "
                f"{rule.effective_from} .. {rule.effective_until or ''})"
            )
            continue
        on = case.request.date
        should = rule.in_force(on) and case.request.regime in rule_regimes(rule)
        if should and rid not in applied:
            out.append(f"rule {rid} should apply on {on} (in force), but did not")
        elif not should and rid in applied:
            out.append(f"rule {rid} should not apply on {on} (not in force), but did")
    return out


def evaluate(case: Case, actual: Decision, rules: RuleSet) -> CaseResult:
    exp = case.expect
    known_rules = {r.id for r in rules.rules}
    problems = []
    if actual.decision != exp.decision:
        problems.append(f"decision: expected {exp.decision}, got {actual.decision}")
    want = exp.requires if exp.requires is not None else (() if exp.decision == "allow" else None)
    if want is not None and sorted(actual.requires) != sorted(want):
        problems.append(f"requires: expected {list(want)}, got {list(actual.requires)}")
    applied = {r.rule for r in (*actual.reasons, *actual.warnings, *actual.notes)}
    for rid in exp.rules:
        if rid not in known_rules:
            problems.append(f"rule {rid!r} does not exist")
        elif rid not in applied:
            problems.append(f"rule {rid} expected to apply, but did not")
    for rid in exp.not_rules:
        if rid not in known_rules:  # a misspelt id never applies: the case passed vacuously
            problems.append(f"rule {rid!r} does not exist")
        elif rid in applied:
            problems.append(f"rule {rid} expected not to apply, but did")
    problems += boundary_problems(case, rules, applied)
    return CaseResult(case, actual, tuple(problems))


def run_cases(rules: RuleSet, packs: list[str] | None = None) -> list[CaseResult]:
    """Run the case tables of ``packs`` (default: every loaded pack)."""
    selected = [p for p in rules.packs if not packs or p.name in packs]
    unknown = set(packs or ()) - {p.name for p in rules.packs}
    if unknown:  # each with the known names closest to it (cli65)
        known = [p.name for p in rules.packs]
        raise unknown_names(
            "pack(s)", sorted(unknown), known, expected="one of " + ", ".join(known)
        )
    cases = [c for p in selected for c in load_cases(p)]
    decisions = rules.check_many([c.request for c in cases], use_cache=False)
    return [evaluate(c, d, rules) for c, d in zip(cases, decisions, strict=True)]
