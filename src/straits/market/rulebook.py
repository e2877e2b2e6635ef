"""Every lawful / unlawful choice of the simulation, asked of Straits' own rules.

A month is cut into the stretches of days the loaded policies cannot tell apart (the date's
position among every date the policies compare it with, :meth:`RuleSet.position`), so a rule that
takes effect on 2025-04-09 governs 22 of April's 30 days and nothing else. Each question is asked
once per stretch-position and actor type, and memoised: 1,000 firms of five types over sixty
months ask a few thousand questions, not millions.

The *access share* of a choice in a month is the share of its days on which the decision is
``allow``, plus, on days it is ``conditional``, the market's uptake of the missing authorizations
(the share of demand that obtains them: a parameter, 0 when the file gives none). ``deny`` is 0.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from straits.catalog import get_chip
from straits.model.request import CheckRequest, DataFacts, SiteFacts, TenantFacts
from straits.rules.decision import Decision
from straits.rules.engine import RuleSet
from straits.rules.listing import RuleEvent, events

#: uptake key of requirements whose rule gives no review presumption
NO_PRESUMPTION = "none"
#: answers shared by every simulation in the process (a sweep runs many with the same rules):
#: (rule set, regime, question key) -> (decision, unmet requirements, (requirement, presumption)
#: of each conditional reason). The uptake, which varies between runs, is applied afterwards.
_SHARED: dict[Hashable, tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]] = {}
_SHARED_MAX = 500_000

#: the largest order a rule check takes (``CheckRequest.quantity``); a simulated order beyond it
#: (demand compounding at a high growth for decades) is asked as this many chips, which every
#: quantity threshold of the rules counts the same way
MAX_QUANTITY = 10**9


@dataclass(frozen=True)
class Actor:
    """The facts the rules read about a firm type or an operator."""

    hq: str
    authorizations: tuple[str, ...] = ()
    ciio: bool = False

    @cached_property
    def tenant(self) -> TenantFacts:
        return TenantFacts(
            hq=self.hq, authorizations=tuple(sorted(self.authorizations)), ciio=self.ciio
        )


@dataclass(frozen=True, eq=False)
class Question:
    actor: Actor
    action: str
    country: str
    operator_hq: str
    chip: str
    data: DataFacts | None = None
    quantity: int = 0
    ships_from: str | None = None
    """where a procured chip ships from (the 2026 case-by-case band covers exports from the
    United States only); None: not declared, read by the rules as not from there"""

    @cached_property
    def ident(self) -> tuple[Hashable, ...]:
        """What the question is, as a cheap hashable value."""
        d = self.data
        data = (
            None
            if d is None
            else (
                d.origin,
                d.classes,
                d.subjects,
                d.sensitive_subjects,
                d.prior_subjects_ytd,
                d.prior_sensitive_ytd,
                d.prior_subjects_since_last_year,
                d.prior_sensitive_since_last_year,
            )
        )
        a = self.actor
        return (
            a.hq,
            a.authorizations,
            a.ciio,
            self.action,
            self.country,
            self.operator_hq,
            self.chip,
            data,
            self.ships_from,
            self.quantity,
        )


@dataclass(frozen=True)
class Verdict:
    """What the rules say about one question over one month."""

    share: float
    """access share: lawful days (and obtained authorizations) over the month's days"""
    decisions: tuple[tuple[dt.date, float, str, tuple[str, ...]], ...]
    """(first day, share of the month, decision, unmet requirements) per stretch"""


def _missing(d: Decision) -> tuple[tuple[str, str], ...]:
    return tuple(
        (r.requires, r.presumption or NO_PRESUMPTION)
        for r in d.reasons
        if r.outcome == "conditional" and r.requires is not None
    )


class Rulebook:
    """Memoised rule questions for one regime."""

    def __init__(self, rules: RuleSet, regime: str, uptake: Mapping[str, Mapping[str, float]]):
        self.rules = rules
        self.regime = regime
        self.uptake = uptake
        self._segments: dict[str, tuple[tuple[dt.date, float, Hashable], ...]] = {}
        self._memo: dict[Hashable, tuple[str, tuple[str, ...], float]] = {}
        self._scope = (id(rules), rules.digest, regime)
        self._verdicts: dict[tuple[Hashable, str], Verdict] = {}
        self._keys: dict[Hashable, Hashable] = {}
        self.asked = 0

    def segments(self, month: str) -> tuple[tuple[dt.date, float, Hashable], ...]:
        """(first day, share of the month, date position) of each stretch of ``month``."""
        got = self._segments.get(month)
        if got is not None:
            return got
        y, m = (int(x) for x in month.split("-"))
        days = calendar.monthrange(y, m)[1]
        out: list[tuple[dt.date, float, Hashable]] = []
        prev: Hashable = None
        for d in range(1, days + 1):
            day = dt.date(y, m, d)
            pos = self.rules.position(("date",), day)
            if out and pos == prev:
                first, share, _ = out[-1]
                out[-1] = (first, share + 1.0 / days, pos)
            else:
                out.append((day, 1.0 / days, pos))
            prev = pos
        got = tuple(out)
        self._segments[month] = got
        return got

    def _uptake(self, missing: tuple[tuple[str, str], ...]) -> float:
        """Share of demand that obtains every authorization a conditional decision lacks."""
        share = 1.0
        for requires, presumption in missing:
            share *= self.uptake.get(requires, {}).get(presumption, 0.0)
        return share

    def _factor(self, decision: str, missing: tuple[tuple[str, str], ...]) -> float:
        if decision == "allow":
            return 1.0
        return self._uptake(missing) if decision == "conditional" else 0.0

    def _tpp_position(self, q: Question) -> Hashable:
        if q.action != "procure" or q.quantity == 0:
            return None
        return self.rules.position(
            ("quantity_tpp",), q.quantity * math.ceil(get_chip(q.chip).tpp_upper)
        )

    def _base(self, q: Question) -> Hashable:
        """The question as the policies can tell it apart (the quantity, and the TPP it buys,
        by their positions among the thresholds the policies compare them with: keyed by the
        TPP alone, an order of 100,000 chips got the answer of one of 10 under a policy
        testing `context.quantity`)."""
        got = self._keys.get(q.ident)
        if got is None:
            size = self.rules.position(("quantity",), min(q.quantity, MAX_QUANTITY))
            got = (*q.ident[:-1], self._tpp_position(q), size)
            self._keys[q.ident] = got
        return got

    def verdict(self, q: Question, month: str) -> Verdict:
        return self.verdicts([q], month)[0]

    def verdicts(self, questions: list[Question], month: str) -> list[Verdict]:
        """The verdicts of ``questions`` in ``month``; what the memo lacks is asked of the rules
        in one batch (Cedar evaluates a batch far faster than the same requests one by one)."""
        segs = self.segments(month)
        todo: dict[Hashable, CheckRequest] = {}
        for q in questions:
            if (q.ident, month) in self._verdicts:
                continue
            base = self._base(q)
            for first, _, pos in segs:
                key: Hashable = (base, pos)
                if key in self._memo or key in todo:
                    continue
                shared = _SHARED.get((self._scope, key))
                if shared is not None:
                    self._memo[key] = (shared[0], shared[1], self._factor(shared[0], shared[2]))
                else:
                    todo[key] = self._request(q, first)
        if todo:
            decisions = self.rules.check_many(list(todo.values()))
            self.asked += len(decisions)
            if len(_SHARED) > _SHARED_MAX:
                _SHARED.clear()
            for key, d in zip(todo, decisions, strict=True):
                missing = _missing(d)
                _SHARED[(self._scope, key)] = (d.decision, d.requires, missing)
                self._memo[key] = (d.decision, d.requires, self._factor(d.decision, missing))
        out = []
        for q in questions:
            v = self._verdicts.get((q.ident, month))
            if v is None:
                share = 0.0
                parts = []
                base = self._base(q)
                for first, weight, pos in segs:
                    decision, requires, factor = self._memo[(base, pos)]
                    share += weight * factor
                    parts.append((first, weight, decision, requires))
                v = Verdict(share=min(1.0, share), decisions=tuple(parts))
                self._verdicts[(q.ident, month)] = v
            out.append(v)
        return out

    def _request(self, q: Question, day: dt.date) -> CheckRequest:
        fields: dict[str, Any] = {
            "date": day,
            "regime": self.regime,
            "action": q.action,
            "tenant": q.actor.tenant,
            "site": SiteFacts(country=q.country, operator_hq=q.operator_hq),
            "chip": q.chip,
            "data": q.data,
            "quantity": min(q.quantity, MAX_QUANTITY),
            "ships_from": q.ships_from,
        }
        return CheckRequest(**fields)

    def events(self, start: dt.date, end: dt.date) -> list[RuleEvent]:
        """The dates in [start, end] on which the rules in force under this regime change,
        with the rules each one adds and removes (read from the packs)."""
        return events(self.rules.rules, self.regime, start, end)
