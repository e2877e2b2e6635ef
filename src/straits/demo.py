"""The story of DESIGN.md, told by the program: one scenario planned under two regimes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import Plan, StageDiagnosis, make_plan
from straits.rules.decision import Reason
from straits.rules.engine import RuleSet, ruleset

REGIMES = ("enacted", "ai-diffusion")


def demo_scenario_path() -> Path:
    return Path(str(resources.files("straits.examples").joinpath("offshore-2025.yaml")))


@dataclass(frozen=True)
class StageDifference:
    workload: str
    stage: str
    placements: dict[str, str]
    """regime -> 'site/chip' or 'unplaced'"""
    rules: tuple[tuple[str, Reason, int], ...]
    """(regime where it blocked, the rule, options it blocked) for rules that blocked options
    under one regime only."""

    def to_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "stage": self.stage,
            "placements": self.placements,
            "rules": [
                {"regime": reg, "options_blocked": n, **r.to_json()} for reg, r, n in self.rules
            ],
        }


def _blocked(d: StageDiagnosis) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rej in d.rejections:
        for rule in set(rej.rules):
            counts[rule] = counts.get(rule, 0) + 1
    return counts


def differences(plans: dict[str, Plan]) -> list[StageDifference]:
    """Per stage: where it went under each regime and which rules made the difference."""
    a, b = (plans[r] for r in REGIMES)
    out = []
    for da, db in zip(a.diagnosis, b.diagnosis, strict=True):
        ba, bb = _blocked(da), _blocked(db)
        cites = {c.rule: c for c in (*da.citations, *db.citations)}
        # an option's rejection lists every rule that blocks it, but cites only the first: a
        # rule never cited blocked nothing the cited one did not (the console's comparison of
        # a large portfolio was a 500, KeyError, on such a rule)
        rules = [(REGIMES[1], cites[r], n) for r, n in bb.items() if r not in ba and r in cites]
        rules += [(REGIMES[0], cites[r], n) for r, n in ba.items() if r not in bb and r in cites]
        out.append(
            StageDifference(
                da.workload,
                da.stage,
                {REGIMES[0]: da.chosen or "unplaced", REGIMES[1]: db.chosen or "unplaced"},
                tuple(rules),
            )
        )
    return out


@dataclass(frozen=True)
class RuleDifference:
    """A rule that blocked options under one regime only, with the stages it moved."""

    regime: str
    reason: Reason
    options_blocked: int
    moved: tuple[StageDifference, ...]
    """stages placed differently under the two regimes whose options it blocked"""
    unmoved: tuple[str, ...]
    """stages whose options it blocked that run in the same place under both regimes"""

    def to_json(self) -> dict[str, Any]:
        return {
            "regime": self.regime,
            "options_blocked": self.options_blocked,
            "moved": [
                {"workload": d.workload, "stage": d.stage, "placements": d.placements}
                for d in self.moved
            ],
            "unmoved": list(self.unmoved),
            **self.reason.to_json(),
        }


def rule_differences(diffs: list[StageDifference]) -> list[RuleDifference]:
    """:func:`differences` turned around: each rule once, with the stages it moved."""
    grouped: dict[tuple[str, str], RuleDifference] = {}
    for d in diffs:
        moved = len(set(d.placements.values())) > 1
        for regime, reason, n in d.rules:
            g = grouped.get((regime, reason.rule)) or RuleDifference(regime, reason, 0, (), ())
            grouped[(regime, reason.rule)] = replace(
                g,
                options_blocked=g.options_blocked + n,
                moved=(*g.moved, d) if moved else g.moved,
                unmoved=g.unmoved if moved else (*g.unmoved, f"{d.workload}/{d.stage}"),
            )
    return sorted(grouped.values(), key=lambda r: (-len(r.moved), r.regime, r.reason.rule))


def run_demo(
    scenario: Scenario | None = None, rules: RuleSet | None = None
) -> tuple[Scenario, dict[str, Plan], list[StageDifference]]:
    sc = scenario or load_scenario(demo_scenario_path())
    rs = rules or ruleset()
    plans = {r: make_plan(sc, regime=r, rules=rs) for r in REGIMES}
    return sc, plans, differences(plans)


# --- drift: what rule changes did to plans made the day before ------------------------------
@dataclass(frozen=True)
class DriftCase:
    title: str
    story: str
    example: str
    checked: dt.date
    plan_date: dt.date | None = None
    plan_regime: str | None = None
    check_regime: str | None = None
    plan_rules: str | None = None
    """packs under straits.examples the plan was made with (a deployment's rules that day),
    in place of the shipped ones of the same name; the check uses the rules given"""

    def rules(self, shipped: RuleSet) -> RuleSet:
        if self.plan_rules is None:
            return shipped
        return ruleset((Path(str(resources.files("straits.examples").joinpath(self.plan_rules))),))

    def scenario(self) -> Scenario:
        sc = load_scenario(Path(str(resources.files("straits.examples").joinpath(self.example))))
        update: dict[str, Any] = {}
        if self.plan_date is not None:
            update["date"] = self.plan_date
        if self.plan_regime is not None:
            update["regime"] = self.plan_regime
        return sc.model_copy(update=update) if update else sc


DRIFT_CASES = (
    DriftCase(
        "the H20 licence requirement (2025-04-09)",
        "On 2025-04-08 a plan buys H20s to serve Chinese users at home, with the rules known "
        "that day; the next day the US required a licence to ship them to China, with none "
        "being issued, and the chips had not shipped.",
        "h20-2025.yaml",
        dt.date(2025, 4, 10),
        # with the shipped packs, which have the letter, the plan would not buy them: they
        # ship after 2025-04-09
        plan_rules="rule-packs/h20-letter/before",
    ),
    DriftCase(
        "the AI Diffusion rule's rescission (2025-05-13)",
        "On 2025-05-12 the AI Diffusion rule was on the books with compliance due 2025-05-15, "
        "so a plan for runs from that date kept the international serving stage out of "
        "Johor and Singapore; the rule was rescinded on 2025-05-13.",
        "offshore-2025.yaml",
        dt.date(2025, 5, 13),
        plan_date=dt.date(2025, 5, 15),
        plan_regime="ai-diffusion",
        check_regime="enacted",
    ),
)


def drift_plans(
    rules: RuleSet, time_limit: float = 10.0
) -> list[tuple[DriftCase, Scenario, Plan, RuleSet]]:
    """The plans of :data:`DRIFT_CASES`, made as of their day, with the rules they were made
    with (:attr:`DriftCase.plan_rules`, else ``rules``)."""
    out = []
    for case in DRIFT_CASES:
        sc = case.scenario()
        rs = case.rules(rules)
        out.append((case, sc, make_plan(sc, rules=rs, time_limit=time_limit), rs))
    return out
