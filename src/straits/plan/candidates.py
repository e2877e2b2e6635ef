"""Every stage's options with the rules' verdict on each, shared by every solver.

A placement's verdict is a function of its rule questions (:mod:`straits.plan.checks`), so the
memo key is made of the questions themselves: every field of every request, exactly, except
the model's training operations, which the loaded policies read only through comparisons with
literals and which are replaced by where they fall among those literals
(:meth:`straits.rules.engine.RuleSet.position`, from :class:`~straits.rules.cache_key.KeyPlan`).
A fact added to the requests is therefore in the key the day it is added, and two placements
share a memo entry only when the rules cannot tell them apart. The memo holds Cedar's answer
(the applicable rules); each verdict is combined from it with the placement's own requests, so
authorizations and the figures quoted in reasons are always the placement's own.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Hashable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from straits.model.request import CheckRequest, DataFacts, SiteFacts, TenantFacts, WeightsFacts
from straits.model.scenario import Pool, Scenario, Site, Stage, Workload
from straits.plan.checks import ExportLedger, Predecessor, Question, placement_questions
from straits.plan.deadline import Deadline
from straits.plan.options import MENU_SIZES, MENU_SIZES_LARGE, Option
from straits.plan.reasons import ReasonCode, rule_code
from straits.plan.result import Assignment
from straits.plan.table import FitMemo, Index, StageTable, build_table
from straits.rules.context import build_context
from straits.rules.decision import Decision, Reason, combine, template_values, worst
from straits.rules.engine import RuleSet
from straits.rules.listing import events
from straits.rules.pack_loader import Rule
from straits.rules.partition import roots

#: stages beyond which a portfolio counts as large
LARGE_PORTFOLIO_STAGES = 400
#: the context path through which the policies see a model's training operations
OPS_PATH = ("weights", "training_ops_e18")


@dataclass(frozen=True)
class Verdict:
    """The rules' answer for one option: lawful, or the reason that blocks it and its code."""

    decisions: tuple[Decision, ...]
    blocking: Reason | None
    code: ReasonCode | None = None
    """what kind of rule blocks it (None when lawful)"""

    @property
    def lawful(self) -> bool:
        return self.blocking is None

    @property
    def label(self) -> str:
        return self.blocking.label if self.blocking is not None else ""

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(r.rule for d in self.decisions for r in d.blocking)


Placed = Predecessor
"""A predecessor as the rules see it (kept for callers of the old name)."""


class Candidates:
    """Options, estimates and memoized rule verdicts for every stage of a scenario."""

    def __init__(
        self,
        sc: Scenario,
        rules: RuleSet,
        *,
        regime: str,
        date: dt.date,
        deadline: Deadline | None = None,
        ordered: dt.date | None = None,
    ) -> None:
        self.sc = sc
        self.rules = rules
        self.regime = regime
        self.date = date
        self.ordered = date if ordered is None else ordered
        """the day the plan orders the chips it buys: ``date`` when planning; a recorded
        plan's own date when it is re-checked later (:class:`straits.plan.recheck.PlanContext`)"""
        self.deadline = deadline
        """where the time spent on estimates and rule checks is counted"""
        self.index = Index.of(sc)
        #: a large portfolio tries fewer chip counts and schedules fewer options per stage
        self.large = sum(len(w.stages) for w in sc.workloads) > LARGE_PORTFOLIO_STAGES
        self._tables: dict[tuple[str, str], StageTable] = {}
        self._fits: FitMemo = {}  # shared by stages of equal FitSpec (table_fits)
        self.ops = _TrainingOps(self)
        """workload id -> stage id -> the model's training FLOPs through that stage (computed
        for a workload when first asked: re-checking one stage of a large plan needs only
        its own workload's tables)"""
        self._memo: dict[Hashable, list[list[Rule]]] = {}
        self._asked: dict[Hashable, list[Rule]] = {}
        self._parts: dict[int, tuple[BaseModel, Hashable]] = {}
        """id of a shared request part -> (the part, kept alive so its id stays its own; its
        image in memo keys)"""
        """one request's key -> the rules that apply to it"""
        self._procure: dict[tuple[str, str, str, tuple[dt.date, ...]], Decision] = {}
        self._ship_days: dict[dt.date, tuple[dt.date, ...]] = {}
        """arrival day -> :meth:`procure_dates` (asked for every verdict on a bought option)"""
        self._moves: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._codes: dict[tuple[str, str], ReasonCode] = {}
        self._coarse_ops = _ops_reach_context()
        self._ops_keys: dict[float, Hashable] = {}
        self.memo_hits = 0
        self.memo_misses = 0

    @property
    def menu(self) -> int:
        return MENU_SIZES_LARGE if self.large else MENU_SIZES

    def _count(self, what: str) -> AbstractContextManager[None]:
        return self.deadline.count(what) if self.deadline is not None else nullcontext()

    def table(self, w: Workload, stage: Stage) -> StageTable:
        """Every option of ``stage``, built on first use."""
        key = (w.id, stage.id)
        t = self._tables.get(key)
        if t is None:
            with self._count("estimates"):
                t = self._tables[key] = build_table(
                    self.sc, self.index, w, stage, self.menu, self._fits
                )
        return t

    def energy_of(self, a: Assignment) -> tuple[float, float]:
        """(MWh, tCO2e) of an assignment at its pool's rates (:meth:`Index.rates`), as the
        objectives count them."""
        stage = self.sc.workload(a.workload).stage(a.stage)
        mwh, t = self.index.rates("serve" if stage.kind == "serve" else "train")
        i = self.index.res_index[(a.site, a.chip)]
        return a.chip_hours * float(mwh[i]), a.chip_hours * float(t[i])

    def options(self, w: Workload, stage: Stage) -> list[Option]:
        return self.table(w, stage).options()

    def data_moves(self, stage: Stage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ready hours, egress USD, longest transfer hours) per site for the stage's datasets,
        which start moving at the plan start."""
        hit = self._moves.get(stage.datasets)
        if hit is None:
            n = len(self.index.site_ids)
            ready, egress = np.zeros(n), np.zeros(n)
            for d_id in stage.datasets:
                d = self.sc.dataset(d_id)
                src = self.index.site_of[d.located_at]
                ready = np.maximum(ready, self.index.transfer_hours_from(src, d.size_gb))
                egress += self.index.egress_from(src, d.size_gb)
            hit = self._moves[stage.datasets] = (ready, egress, ready)
        return hit

    def groups(self, w: Workload, stage: Stage, t: StageTable, pred_sites: list[int]) -> np.ndarray:
        """A number per row: rows with the same number ask the rules the same questions.

        A placement's questions read a site only through its facts (country, operator's
        headquarters: the site class), whether each dataset is stored there and whether each
        predecessor ran there; and the chip, and whether the chips are bought. Every dataset
        and predecessor is a column of its own, however many there are."""
        cols = [t.cls, t.chip, t.bought.astype(np.int64)]
        for d_id in stage.datasets:
            home = self.index.site_of[self.sc.dataset(d_id).located_at]
            cols.append((t.site == home).astype(np.int64))
        cols += [(t.site == s).astype(np.int64) for s in pred_sites]
        sizes = [int(c.max()) + 1 if len(c) else 1 for c in cols]
        # the product in Python's integers: numpy's float product overflows past 1,024
        # columns and warned on stderr (``-q`` or not) before the unique rows below
        if math.prod(sizes) < 2**62:
            # the columns as the digits of one number (mixed radix): unique in one dimension
            key = np.zeros(len(t), dtype=np.int64)
            for c, n in zip(cols, sizes, strict=True):
                key = key * n + c
            _, inverse = np.unique(key, return_inverse=True)
        else:  # more columns than one number holds: unique rows
            _, inverse = np.unique(np.stack(cols, axis=1), axis=0, return_inverse=True)
        out: np.ndarray = inverse.reshape(-1)
        return out

    def _training_ops(self, w: Workload) -> dict[str, float]:
        """Cumulative training FLOPs of the model through each stage: its own and each
        ancestor's once (adding the ancestors' totals counted a shared one again: 2^n on a
        chain of n stages)."""
        own = {
            s.id: max((f.most_flops for f in self.table(w, s).fits), default=0.0) for s in w.stages
        }
        seen = all_ancestors(w)
        return {s.id: own[s.id] + sum(own[p] for p in seen[s.id]) for s in w.stages}

    # --- verdicts ------------------------------------------------------------------------------
    def questions(
        self,
        w: Workload,
        stage: Stage,
        site: Site,
        chip: str,
        preds: list[Predecessor],
        exports: list[ExportLedger],
    ) -> list[Question]:
        return placement_questions(
            self.sc,
            w,
            stage,
            site,
            chip,
            date=self.date,
            regime=self.regime,
            training_ops=self.ops[w.id][stage.id],
            preds=preds,
            exports=exports,
            year=self.date.year,
        )

    def ops_key(self, training_ops: float) -> Hashable:
        """What the policies can tell about training operations: their position among the
        literals they are compared with (exact when the context no longer carries them the
        way this module expects: slower, never stale)."""
        hit = self._ops_keys.get(training_ops)
        if hit is None:
            hit = self._ops_keys[training_ops] = (
                self.rules.position(OPS_PATH, math.ceil(training_ops / 1e18))
                if self._coarse_ops
                else training_ops
            )
        return hit

    def request_key(self, req: CheckRequest) -> Hashable:
        """Everything in ``req`` the rules and the decision algebra read: every field exactly,
        the training operations as :meth:`ops_key`."""
        return _image(req, self)

    def verdict(
        self,
        w: Workload,
        stage: Stage,
        option: Option,
        preds: list[Predecessor],
        exports: list[ExportLedger],
    ) -> Verdict:
        """The verdict on placing ``stage`` on ``option`` after ``preds``, with the volumes in
        ``exports`` already sent abroad by the tenant this year. A bought option also needs
        ``procure`` to be lawful for the buyer on each of :meth:`procure_dates`."""
        with self._count("rule checks"):
            qs = self.questions(w, stage, option.site, option.chip.id, preds, exports)
            requests = [q.request for q in qs]
            keys = [self.request_key(r) for r in requests]
            key = tuple(keys)
            applicable = self._memo.get(key)
            if applicable is None:
                self.memo_misses += 1
                applicable = self._memo[key] = self._applicable(requests, keys)
            else:
                self.memo_hits += 1
            hit = self.combine(
                [
                    combine(rules, r, template_values(r))
                    for rules, r in zip(applicable, requests, strict=True)
                ],
                [r.action for r in requests],
            )
            if option.procured and hit.lawful:
                buy = self.procurement(w.tenant, option.site, option.pool)
                return self.combine(
                    [*hit.decisions, buy], [*(r.action for r in requests), "procure"]
                )
            return hit

    def _applicable(self, requests: list[CheckRequest], keys: list[Hashable]) -> list[list[Rule]]:
        """The rules that apply to each request, memoised per request (a placement's questions
        recur one by one in other placements' far more often than all together): only the
        requests never asked before go to Cedar, in one batch. Exact: the rules answer each
        request of a batch on its own."""
        todo = {k: r for k, r in zip(keys, requests, strict=True) if k not in self._asked}
        if todo:
            answers = self.rules.applicable(list(todo.values()))
            self._asked.update(zip(todo, answers, strict=True))
        return [self._asked[k] for k in keys]

    def verdict_uncached(
        self,
        w: Workload,
        stage: Stage,
        option: Option,
        preds: list[Predecessor],
        exports: list[ExportLedger],
    ) -> Verdict:
        """The verdict straight from Cedar, with no memo anywhere (the property tests' oracle)."""
        qs = self.questions(w, stage, option.site, option.chip.id, preds, exports)
        decisions = [self.rules.check(q.request, use_cache=False) for q in qs]
        actions: list[str] = [q.request.action for q in qs]
        if option.procured and self.combine(decisions, actions).lawful:
            buys = [
                self._procure_request(w.tenant, option.site, option.pool, day)
                for day in self.procure_dates(option.pool)
            ]
            decisions.append(worst(self.rules.check_many(buys, use_cache=False)))
            actions.append("procure")
        return self.combine(decisions, actions)

    def combine(self, decisions: list[Decision], actions: Sequence[str]) -> Verdict:
        """Lawful when every decision is ``allow``; else the most severe blocking reason,
        with its code."""
        worst: tuple[Reason, str] | None = None
        for d, action in zip(decisions, actions, strict=True):
            for r in d.blocking:
                if worst is None or (r.outcome == "deny" and worst[0].outcome != "deny"):
                    worst = (r, action)
        if worst is None:
            return Verdict(tuple(decisions), None)
        return Verdict(tuple(decisions), worst[0], self.rule_code(worst[0].rule, worst[1]))

    def rule_code(self, rule_id: str, action: str) -> ReasonCode:
        key = (rule_id, action)
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = rule_code(roots(self.rules.rule(rule_id)), action)
        return code

    def static_verdict(self, w: Workload, stage: Stage, option: Option) -> Verdict:
        """The verdict with no predecessor placed elsewhere and nothing else exported: the
        weakest condition any placement of ``option`` must meet (requirements only grow with
        volume)."""
        return self.verdict(w, stage, option, [], [])

    def arrival_day(self, pool: Pool) -> dt.date:
        """The day chips bought from ``pool`` arrive (the order date plus ``lead_days``): the
        last day they may still be shipping."""
        assert pool.procurable is not None
        ordered = dt.datetime.combine(self.ordered, dt.time(0))
        return (ordered + dt.timedelta(days=pool.procurable.lead_days)).date()

    def procure_dates(self, pool: Pool) -> tuple[dt.date, ...]:
        """The days a purchase of ``pool``'s chips is asked of the rules: ``date`` (the order
        date, or the day of a re-check) and every later day until the chips arrive on which
        the rules in force change (:func:`straits.rules.listing.events`). Export controls apply
        when the chips are exported, which may be any day until they arrive: an order placed
        the day before a licence requirement and shipped after it needs the licence."""
        arrives = self.arrival_day(pool)
        hit = self._ship_days.get(arrives)
        if hit is None:
            start = self.date + dt.timedelta(days=1)
            later = events(self.rules.rules, self.regime, start, arrives)
            hit = self._ship_days[arrives] = (self.date, *(e.date for e in later))
        return hit

    def _procure_request(
        self, tenant_id: str, site: Site, pool: Pool, day: dt.date
    ) -> CheckRequest:
        assert pool.procurable is not None
        t = self.sc.tenant(tenant_id)
        return CheckRequest(
            date=day,
            regime=self.regime,
            action="procure",
            tenant=TenantFacts(hq=t.hq, authorizations=t.authorizations, ciio=t.ciio),
            site=SiteFacts(country=site.country, operator_hq=site.operator_hq),
            chip=pool.chip,
            quantity=pool.procurable.max,
            prior_tpp=self._other_orders_tpp(tenant_id, site, pool),
            ships_from=pool.procurable.ships_from,
        )

    def _other_orders_tpp(self, tenant_id: str, site: Site, pool: Pool) -> int:
        """The TPP of every other order of US-origin 3A090.a/.b chips (the items the AI
        Diffusion allowance counts, as the catalog classifies them) the plan may place for
        ``tenant_id`` on its date, each at its pool's most chips, in any country: an allowance
        per end user counts them with this one, so a purchase split across sites is not judged
        piece by piece (atk71). Chips the allowance does not count (H20, Ascend) are left out:
        counted, they made a plan of 512 H100 buy H20 at 11x the cost (atk76)."""
        from straits.catalog import get_chip
        from straits.catalog.export_class import classify_2023

        total = 0
        for other_site in self.sc.sites:
            for other in other_site.pools:
                buy = other.procurable
                if buy is None or (other_site.id, other.chip) == (site.id, pool.chip):
                    continue
                if buy.buyer is not None and buy.buyer != tenant_id:
                    continue
                chip = get_chip(other.chip)
                if chip.origin == "US" and classify_2023(chip).cls in ("3A090.a", "3A090.b"):
                    total += buy.max * math.ceil(chip.tpp_upper)
        return total

    def procurement(self, tenant_id: str, site: Site, pool: Pool) -> Decision:
        """May ``tenant`` buy the pool's procurable chips: the worst of the rules' decisions
        on each of :meth:`procure_dates` (the order date and each day the rules change before
        the chips arrive), which are part of the memo key."""
        days = self.procure_dates(pool)
        key = (tenant_id, site.id, pool.chip, days)
        hit = self._procure.get(key)
        if hit is None:
            asked = [self._procure_request(tenant_id, site, pool, day) for day in days]
            hit = self._procure[key] = worst(self.rules.check_many(asked))
        return hit


#: requests and their parts the planner makes once per distinct value and shares
#: (:mod:`straits.plan.checks`), so their image is kept by object (any other object is
#: flattened again each time)
SHARED_PARTS = (CheckRequest, TenantFacts, SiteFacts, DataFacts, WeightsFacts)


def _image(v: BaseModel, cand: Candidates) -> Hashable:
    """:func:`_flat`, kept by object for the shared ones."""
    if not isinstance(v, SHARED_PARTS):
        return _flat(v, cand)
    hit = cand._parts.get(id(v))
    if hit is None:
        hit = cand._parts[id(v)] = (v, _flat(v, cand))
    return hit[1]


def _flat(v: BaseModel, cand: Candidates) -> Hashable:
    """A hashable image of a request: the model's type and every field, in order; nested
    models the same way, containers as tuples."""
    out: list[Hashable] = [type(v)]
    weights = isinstance(v, WeightsFacts)
    for k, x in v.__dict__.items():
        if weights and k == "training_ops":
            out.append(cand.ops_key(x))
        elif isinstance(x, BaseModel):
            out.append(_image(x, cand))
        elif isinstance(x, list | set | frozenset | dict):
            out.append(_freeze(x))
        else:
            out.append(x)
    return tuple(out)


def _freeze(x: Any) -> Hashable:
    if isinstance(x, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in x.items()))
    if isinstance(x, set | frozenset):
        return tuple(sorted(x))
    if isinstance(x, list | tuple):
        return tuple(_freeze(v) for v in x)
    return x  # type: ignore[no-any-return]


def _ops_reach_context() -> bool:
    """Whether the Cedar context carries training operations as ``OPS_PATH`` =
    ceil(ops / 1e18), the only form :meth:`Candidates.ops_key` coarsens; otherwise they are
    kept exactly."""
    probe = CheckRequest.model_construct(
        date=dt.date(2025, 1, 1),
        regime="enacted",
        action="train",
        tenant=TenantFacts.model_construct(
            hq="US", authorizations=(), ciio=False, entity_listed=False
        ),
        site=SiteFacts.model_construct(country="US", operator_hq="US"),
        chip=None,
        data=None,
        weights=WeightsFacts.model_construct(training_ops=2.5e18, open=False, from_country="US"),
        quantity=1,
        ships_from=None,
    )
    try:
        ctx = build_context(probe)
    except Exception:
        return False
    weights = ctx.get("weights", {})
    return bool(
        weights.get(OPS_PATH[1]) == 3 and set(weights) <= {OPS_PATH[1], "open", "from_country"}
    )


class _TrainingOps(dict[str, dict[str, float]]):
    def __init__(self, cand: Candidates) -> None:
        super().__init__()
        self._cand = cand

    def __missing__(self, workload_id: str) -> dict[str, float]:
        value = self[workload_id] = self._cand._training_ops(self._cand.sc.workload(workload_id))
        return value


def all_ancestors(w: Workload) -> dict[str, frozenset[str]]:
    """Every stage's ancestors, built in dependency order from its predecessors' sets (a walk
    per stage that looked each predecessor up by a scan took 9 s on a chain of 1,000 stages,
    cubic, past any --time-limit)."""
    out: dict[str, frozenset[str]] = {}
    for s in w.topological_stages():
        out[s.id] = frozenset(s.after).union(*(out[p] for p in s.after))
    return out
