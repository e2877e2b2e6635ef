"""What is in force when: rule windows and regimes, read from the policies themselves.

A rule's window is in its condition (``context.date`` against ``datetime`` literals) and repeated
in its ``@effective_from`` / ``@effective_until`` annotations; a rule that tests
``context.regime == "X"`` applies under regime X only (see :mod:`straits.rules.est`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from straits.rules.est import regimes
from straits.rules.pack_loader import Rule


def rule_regimes(rule: Rule) -> tuple[str, ...]:
    return regimes(rule.est)


def in_force(rules: list[Rule], on: dt.date, regime: str) -> list[Rule]:
    return [r for r in rules if r.in_force(on) and regime in rule_regimes(r)]


@dataclass(frozen=True)
class RuleEvent:
    """A day on which the rules in force under a regime change: the rules it adds and removes."""

    date: dt.date
    added: tuple[str, ...]
    removed: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "date": self.date.isoformat(),
            "added": list(self.added),
            "removed": list(self.removed),
        }


def events(rules: Iterable[Rule], regime: str, start: dt.date, end: dt.date) -> list[RuleEvent]:
    """The days in [``start``, ``end``] on which the rules in force under ``regime`` change
    (against the day before), with the rules each adds and removes. The rules in force change
    only on a rule's ``effective_from`` or the day after its ``effective_until``, so only those
    days are compared (the same answer as comparing every day of the span)."""
    mine = [r for r in rules if regime in rule_regimes(r)]
    days: set[dt.date] = set()
    for r in mine:
        days.add(r.effective_from)
        if r.effective_until is not None and r.effective_until < dt.date.max:
            days.add(r.effective_until + dt.timedelta(days=1))
    out: list[RuleEvent] = []
    for day in sorted(d for d in days if start <= d <= end and d > dt.date.min):
        before = dt.date.fromordinal(day.toordinal() - 1)
        added = tuple(r.id for r in mine if r.in_force(day) and not r.in_force(before))
        removed = tuple(r.id for r in mine if r.in_force(before) and not r.in_force(day))
        if added or removed:
            out.append(RuleEvent(day, added, removed))
    return out


@dataclass(frozen=True)
class RuleDiff:
    before: str
    after: str
    added: tuple[Rule, ...]
    removed: tuple[Rule, ...]
    unchanged: int

    def to_json(self) -> dict[str, Any]:
        def brief(r: Rule) -> dict[str, Any]:
            return {
                "rule": r.id,
                "pack": r.pack,
                "effect": r.effect,
                "requires": r.requires,
                "presumption": r.presumption,
                "title": r.title,
                "citation": r.citation,
                "confidence": r.confidence,
            }

        return {
            "before": self.before,
            "after": self.after,
            "added": [brief(r) for r in self.added],
            "removed": [brief(r) for r in self.removed],
            "unchanged": self.unchanged,
        }


def diff(rules: list[Rule], a: tuple[dt.date, str], b: tuple[dt.date, str]) -> RuleDiff:
    """Rules in force at ``b`` and not at ``a`` (added), and the reverse (removed)."""
    first = {r.id: r for r in in_force(rules, *a)}
    second = {r.id: r for r in in_force(rules, *b)}
    return RuleDiff(
        before=f"{a[0]} ({a[1]})",
        after=f"{b[0]} ({b[1]})",
        added=tuple(r for rid, r in second.items() if rid not in first),
        removed=tuple(r for rid, r in first.items() if rid not in second),
        unchanged=len(first.keys() & second.keys()),
    )
