"""How well a pack's case tables exercise its policies, like ``opa test --coverage``.

**Per policy**: the cases of the policy's own pack in which it applied. A policy no case of its
pack makes apply is a rule nobody has shown to work; ``straits rules test`` fails on it.

**Per condition**: Cedar reports which policies applied, not how each condition evaluated, so
Straits splits every policy into its conditions, in Cedar's evaluation order: the scope (when
the head constrains the principal, action or resource), each top-level ``&&`` operand of
``when``, then each ``unless``. It asks Cedar about probe policies built from them (the policy's
JSON form): condition *i* **passed** in a case when conditions 1..i all let the rule through, and
**stopped** the rule when conditions 1..i-1 did and *i* did not. A condition is covered when the
cases show both: it can let the rule through, and it is what stops the rule in some case. A
``has`` test is a guard the type checker asks for: it is covered once it passes, as the request
model may make its absence impossible (a procure request always names a chip).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from straits.errors import PackError
from straits.rules.cases import CaseResult
from straits.rules.cedar import CedarSyntaxError, Evaluator
from straits.rules.context import build_request
from straits.rules.engine import RuleSet
from straits.rules.est import balanced, conjoin, conjuncts, expr_text, negate
from straits.rules.pack_loader import Rule

Kind = Literal["scope", "when", "unless"]


@dataclass(frozen=True)
class Condition:
    index: int
    kind: Kind
    text: str
    guard: bool
    passed: int
    """cases in which this condition and every one before it let the rule through"""
    stopped: int
    """cases in which every condition before it let the rule through and this one did not"""

    @property
    def covered(self) -> bool:
        return self.passed > 0 and (self.guard or self.stopped > 0)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "text": self.text,
            "guard": self.guard,
            "passed": self.passed,
            "stopped": self.stopped,
            "covered": self.covered,
        }


@dataclass(frozen=True)
class PolicyCoverage:
    rule: Rule
    cases: int
    """cases of the rule's pack that were run"""
    applied: int
    """of those, the cases in which the rule applied"""
    conditions: tuple[Condition, ...]

    @property
    def covered(self) -> bool:
        return self.applied > 0

    @property
    def conditions_covered(self) -> int:
        return sum(c.covered for c in self.conditions)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule.id,
            "file": self.rule.file,
            "line": self.rule.line,
            "cases": self.cases,
            "applied": self.applied,
            "covered": self.covered,
            "conditions_covered": self.conditions_covered,
            "conditions": [c.to_json() for c in self.conditions],
        }


def _pct(part: int, whole: int) -> float:
    """``part`` of ``whole`` in percent, to 0.1, never 100 while something is uncovered nor 0
    while something is covered: round() printed 1,999 policies of 2,000 as '100%'."""
    if whole == 0:
        return 100.0
    pct = round(100.0 * part / whole, 1)
    if part < whole:
        pct = min(pct, 99.9)
    return max(pct, 0.1) if part > 0 else pct


@dataclass(frozen=True)
class PackCoverage:
    pack: str
    version: str
    policies: tuple[PolicyCoverage, ...]

    @property
    def policy_pct(self) -> float:
        return _pct(sum(p.covered for p in self.policies), len(self.policies))

    @property
    def condition_pct(self) -> float:
        return _pct(
            sum(p.conditions_covered for p in self.policies),
            sum(len(p.conditions) for p in self.policies),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "version": self.version,
            "policy_coverage": self.policy_pct,
            "condition_coverage": self.condition_pct,
            "policies": [p.to_json() for p in self.policies],
        }


@dataclass(frozen=True)
class CoverageReport:
    packs: tuple[PackCoverage, ...]

    @property
    def policies(self) -> list[PolicyCoverage]:
        return [p for pack in self.packs for p in pack.policies]

    @property
    def policy_pct(self) -> float:
        ps = self.policies
        return _pct(sum(p.covered for p in ps), len(ps))

    @property
    def condition_pct(self) -> float:
        ps = self.policies
        return _pct(sum(p.conditions_covered for p in ps), sum(len(p.conditions) for p in ps))

    def conditions_below(self, pct: float) -> bool:
        """Whether the conditions covered are fewer than ``pct`` percent, counted exactly (not
        from the rounded figure: 1,999 of 2,000 met --min-condition-coverage 100)."""
        ps = self.policies
        covered = sum(p.conditions_covered for p in ps)
        return covered * 100.0 < pct * sum(len(p.conditions) for p in ps)

    @property
    def uncovered(self) -> list[PolicyCoverage]:
        return [p for p in self.policies if not p.covered]

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_coverage": self.policy_pct,
            "condition_coverage": self.condition_pct,
            "uncovered_policies": [p.rule.id for p in self.uncovered],
            "packs": [p.to_json() for p in self.packs],
        }


# --- probes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Cond:
    kind: Kind
    passes: Any
    """the expression that holds when this condition lets the rule through"""
    text: str
    guard: bool


def _conditions(est: dict[str, Any]) -> list[_Cond]:
    out: list[_Cond] = []
    head = [est.get(k, {}).get("op") for k in ("principal", "action", "resource")]
    if any(op not in (None, "All") for op in head):
        scope = {k: est[k] for k in ("principal", "action", "resource")}
        out.append(_Cond("scope", {"Value": True}, _scope_text(scope), False))
    for cond in est.get("conditions", []):
        if cond.get("kind") == "when":
            for c in conjuncts(cond["body"]):
                out.append(_Cond("when", c, expr_text(c), isinstance(c, dict) and "has" in c))
        else:
            body = cond["body"]
            out.append(_Cond("unless", negate(body), f"unless {{ {expr_text(body)} }}", False))
    return out


def _scope_text(scope: dict[str, Any]) -> str:
    parts = []
    for var, c in scope.items():
        op = c.get("op")
        if op in (None, "All"):
            continue
        if op == "is" and "entity_type" in c:  # `principal is T [in E]` was shown as `...`
            text = f"{var} is {c['entity_type']}"
            inside = c.get("in", {}).get("entity") if isinstance(c.get("in"), dict) else None
            if inside:
                text += f' in {inside["type"]}::"{inside["id"]}"'
            parts.append(text)
        elif "entity" in c:
            e = c["entity"]
            parts.append(f'{var} {op} {e["type"]}::"{e["id"]}"')
        elif "entities" in c:
            es = ", ".join(f'{e["type"]}::"{e["id"]}"' for e in c["entities"])
            parts.append(f"{var} {op} [{es}]")
        else:
            parts.append(f"{var} {op} ...")
    return ", ".join(parts)


def _probe(est: dict[str, Any], exprs: list[Any]) -> dict[str, Any]:
    """The policy's head (scope) with ``when { exprs... }`` and no annotations."""
    return {
        "effect": "permit",
        **{k: copy.deepcopy(est[k]) for k in ("principal", "action", "resource")},
        "conditions": [{"kind": "when", "body": balanced(conjoin(exprs))}],
    }


def _probes(rule_index: int, est: dict[str, Any], conds: list[_Cond]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    passes = [c.passes for c in conds]
    for i, c in enumerate(conds):
        out[f"r{rule_index}c{i}pass"] = _probe(est, passes[: i + 1])
        if c.kind != "scope":
            out[f"r{rule_index}c{i}stop"] = _probe(est, [*passes[:i], negate(passes[i])])
    return out


def coverage(
    rules: RuleSet, results: list[CaseResult], packs: list[str] | None = None
) -> CoverageReport:
    """Coverage of the policies of ``packs`` (default: the packs of ``results``) by the cases of
    their own pack in ``results``."""
    names = packs or sorted({r.case.pack for r in results})
    out = []
    for pack in rules.packs:
        if pack.name not in names:
            continue
        mine = [r for r in results if r.case.pack == pack.name]
        requests = [build_request(r.case.request) for r in mine]
        plans = [(i, rule, _conditions(rule.est)) for i, rule in enumerate(pack.rules)]
        probes: dict[str, dict[str, Any]] = {}
        for i, rule, conds in plans:
            probes.update(_probes(i, rule.est, conds))
        hits: dict[str, int] = dict.fromkeys(probes, 0)
        if requests and probes:
            try:
                evaluator = Evaluator("", rules.entities, rules.schema, est=probes)
            except CedarSyntaxError as exc:  # balanced, a condition may still nest too deeply
                raise PackError(
                    f"cannot measure the coverage of its conditions: {exc}",
                    source=str(pack.path),
                    expected="conditions Cedar's JSON form can hold (at most 128 levels deep)",
                ) from None
            for satisfied, _failed in evaluator.applying(requests):
                for pid in satisfied:
                    hits[pid] += 1
        policies = []
        for i, rule, conds in plans:
            times = sum(rule.id in _applied(r) for r in mine)
            policies.append(
                PolicyCoverage(
                    rule,
                    len(mine),
                    times,
                    tuple(
                        Condition(
                            j,
                            c.kind,
                            c.text,
                            c.guard,
                            hits[f"r{i}c{j}pass"],
                            # the scope is first: it stops every case it does not let through
                            len(mine) - hits[f"r{i}c{j}pass"]
                            if c.kind == "scope"
                            else hits[f"r{i}c{j}stop"],
                        )
                        for j, c in enumerate(conds)
                    ),
                )
            )
        out.append(PackCoverage(pack.name, pack.version, tuple(policies)))
    return CoverageReport(tuple(out))


def _applied(result: CaseResult) -> set[str]:
    d = result.actual
    return {r.rule for r in (*d.reasons, *d.warnings, *d.notes)}
