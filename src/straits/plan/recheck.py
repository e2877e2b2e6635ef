"""Ask the rules again about a finished plan: one placement, or every lawful alternative.

A plan is read back from its JSON contract (what the ledger records), so a plan made months
ago is re-checked exactly as recorded: each assignment's predecessors sit where the plan put
them, and the personal information the tenant exports counts every assignment of the plan (the
CAC thresholds add up per handler and year), as in the optimizer's final check.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any

from straits.model.scenario import Scenario, Stage, Workload
from straits.plan.candidates import Candidates, Verdict
from straits.plan.checks import ExportLedger, Predecessor
from straits.plan.options import Option
from straits.plan.schedule import record_exports
from straits.rules.engine import RuleSet


@dataclass(frozen=True)
class Placement:
    """One assignment of a recorded plan, as its JSON says."""

    workload: str
    stage: str
    site: str
    chip: str
    chips: int
    start: dt.datetime
    end: dt.datetime
    bought: bool
    cost_usd: float
    chip_hours: float
    warnings: tuple[str, ...]
    raw: dict[str, Any]

    @classmethod
    def of(cls, a: dict[str, Any]) -> Placement:
        return cls(
            a["workload"],
            a["stage"],
            a["site"],
            a["chip"],
            int(a["chips"]),
            _instant(a["start"]),
            _instant(a["end"]),
            bool(a.get("bought", False)),
            float(a.get("cost_usd", 0.0)),
            float(a.get("chip_hours", 0.0)),
            tuple(a.get("warnings", ())),
            a,
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.workload, self.stage)

    @property
    def label(self) -> str:
        base = f"{self.site}/{self.chip}"
        return f"{base} (bought)" if self.bought else base


def _instant(text: object) -> dt.datetime:
    """A recorded placement's start or end. A number there (a ledger read with `--no-verify`,
    a hand-edited plan document) was an AttributeError traceback: it is a ValueError, which
    replay lists as an entry it cannot replay."""
    if not isinstance(text, str):
        raise ValueError(f"a placement's time {text!r} is not an ISO 8601 instant")
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def ordered(plan: dict[str, Any], date: dt.date) -> dt.date:
    """The day a recorded plan ordered the chips it buys: its own date. Asked as of an
    earlier day (the console's "had this plan been made then"), that day."""
    try:
        own = dt.date.fromisoformat(str(plan["date"]))
    except (KeyError, ValueError):
        return date
    return min(own, date)


def as_of(cands: Candidates, date: dt.date, *, ordered: dt.date | None = None) -> Candidates:
    """``cands``' options asked of the rules in force on ``date``: the tables, fits and
    estimates are shared (they do not depend on the day), the rule memos are new."""
    out = copy.copy(cands)
    out.date = date
    out.ordered = date if ordered is None else ordered
    out._memo, out._asked, out._parts = {}, {}, {}
    out._procure, out._ship_days, out._ops_keys = {}, {}, {}
    out.memo_hits = out.memo_misses = 0
    return out


class PlanContext:
    """A recorded plan over its scenario, with the rules as of ``date`` under ``regime``. The
    chips it buys are checked for ``procure`` on ``date`` and on each day the rules change
    until they arrive, counted from the plan's own date (:func:`ordered`), as the planner
    checked them."""

    def __init__(
        self,
        sc: Scenario,
        plan: dict[str, Any],
        rules: RuleSet,
        *,
        date: dt.date,
        regime: str,
        cands: Candidates | None = None,
    ) -> None:
        """``cands``: the scenario's options under ``regime`` already built (the planner's),
        asked here as of ``date`` (:func:`as_of`)."""
        self.sc, self.plan = sc, plan
        """the plan JSON as given (not copied: callers compare identity to reuse a context)"""
        self.date, self.regime = date, regime
        self.cands = (
            Candidates(sc, rules, regime=regime, date=date, ordered=ordered(plan, date))
            if cands is None
            else as_of(cands, date, ordered=ordered(plan, date))
        )
        self.placements = {p.key: p for p in map(Placement.of, plan.get("assignments", ()))}
        self._ledger: ExportLedger | None = None
        self._options: dict[tuple[str, str], dict[tuple[str, str, bool], Option]] = {}

    def exports(self) -> ExportLedger:
        """Everything the plan sends abroad, per tenant, origin and year."""
        if self._ledger is None:
            led = ExportLedger()
            for p in self.placements.values():
                w = self.sc.workload(p.workload)
                record_exports(
                    self.sc, w, w.stage(p.stage), self.sc.site(p.site), led, self.date.year
                )
            self._ledger = led
        return self._ledger

    def preds(self, w: Workload, stage: Stage) -> list[Predecessor]:
        out = []
        for p in stage.after:
            placed = self.placements.get((w.id, p))
            if placed is not None:
                out.append(
                    Predecessor(w.stage(p), self.sc.site(placed.site), self.cands.ops[w.id][p])
                )
        return out

    def option(
        self, w: Workload, stage: Stage, site: str, chip: str, bought: bool
    ) -> Option | None:
        key = (w.id, stage.id)
        index = self._options.get(key)
        if index is None:
            index = self._options[key] = {
                (o.site.id, o.chip.id, o.procured): o for o in self.cands.options(w, stage)
            }
        return index.get((site, chip, bought))

    def verdict(self, w: Workload, stage: Stage, option: Option) -> Verdict:
        return self.cands.verdict(w, stage, option, self.preds(w, stage), [self.exports()])

    def recheck(self, p: Placement) -> Verdict | None:
        """The rules' verdict on ``p`` today (``None``: the option no longer exists, e.g. the
        pool was removed from the scenario)."""
        w = self.sc.workload(p.workload)
        stage = w.stage(p.stage)
        o = self.option(w, stage, p.site, p.chip, p.bought)
        return None if o is None else self.verdict(w, stage, o)

    def alternatives(self, p: Placement) -> list[Option]:
        """Rented options that could run ``p`` with the same chip count and that the rules
        allow: the planned one first, then the others by price. Different chips at the same
        count are included (a slower chip takes longer but stays lawful)."""
        w = self.sc.workload(p.workload)
        stage = w.stage(p.stage)
        out = []
        for o in self.cands.options(w, stage):
            if o.problem is not None or o.procured:
                continue
            if not (o.min_chips <= p.chips <= o.pool.count):
                continue
            if self.verdict(w, stage, o).lawful:
                out.append(o)
        planned = (p.site, p.chip)
        out.sort(key=lambda o: ((o.site.id, o.chip.id) != planned, o.price, o.site.id))
        return out
