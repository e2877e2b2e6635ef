"""The choices the CP-SAT optimizer picks from, each of them lawful by construction.

For every stage: its best options (by the objective, on their own), each at every chip count of
its menu, always including the greedy plan's choice so that the greedy plan is a solution.

What a choice may depend on besides its own stage is made safe here or handed to the model:

* **Cumulative export volumes.** A choice that sends a tenant's personal information abroad is
  kept only if it is lawful with every export the tenant could possibly make that year already
  counted (the worst case), so any combination the optimizer picks stays lawful. Where the
  greedy plan relies on a smaller total (an origin where its export would not pass the worst
  case), that origin is held to the greedy plan's exports and checked at the greedy plan's
  total.
* **Weights moving between sites** (the AI Diffusion rule's 4E091): pairs of choices whose
  transfer the rules do not allow are returned for the model to exclude.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import cast

from straits.estimate import Estimate
from straits.model.request import CheckRequest, SiteFacts, TenantFacts, WeightsFacts
from straits.model.scenario import Site, Stage, Workload
from straits.model.types import Regime
from straits.plan.candidates import Candidates, Verdict
from straits.plan.checks import ExportLedger, user_subjects, users_export_id
from straits.plan.objectives import Objective
from straits.plan.options import Option
from straits.plan.schedule import Moves, PlanState, StageKey, rank_rows
from straits.plan.ticks import ticks_up
from straits.plan.transfer import egress_usd, transfer_hours, weights_gb

#: options kept per stage, by portfolio size
OPTIONS_SMALL = 16
OPTIONS_LARGE = 6


@dataclass(frozen=True)
class Choice:
    """One (option, chip count) a stage may take."""

    option: Option
    est: Estimate
    duration: int
    """model ticks (rounded up: the schedule never overlaps what really runs)"""
    release: int
    """model ticks until the stage's datasets have arrived"""
    cost: int
    """USD: compute at the pool's price, moving the datasets, and at most what moving the
    predecessors' weights costs (so budgets hold whatever the predecessors choose)"""
    egress: float
    """moving the datasets"""
    transfer: float
    value: int = 0
    """the objective's additive terms in model units (for cost: ``cost``)"""
    mwh: float = 0.0
    tco2e: float = 0.0


@dataclass
class StageChoices:
    workload: Workload
    stage: Stage
    choices: list[Choice]
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    """option label -> the verdict it was admitted with"""
    hint: int | None = None
    """index of the greedy plan's choice"""
    hint_end: int = 0
    """when the greedy plan ends this stage, in model ticks"""


class Portfolio:
    """Every stage's choices for the CP-SAT model, around a greedy plan ``state``."""

    def __init__(
        self,
        cand: Candidates,
        objective: Objective,
        state: PlanState,
        *,
        only: set[str] | None = None,
    ) -> None:
        """``only``: build the choices of these workloads alone (to explain them)."""
        self.cand = cand
        self.sc = cand.sc
        self.objective = objective.fitted(cand.sc)
        """the objective, its model units fitted to the scenario's weights"""
        self.state = state
        self.moves = Moves(self.sc)
        self.per_stage = OPTIONS_LARGE if cand.large else OPTIONS_SMALL
        self.ledgers = self._ledgers(state)
        self.stages: dict[StageKey, StageChoices] = {}
        for w in self.sc.workloads:
            if only is not None and w.id not in only:
                continue
            for s in w.topological_stages():
                self.stages[(w.id, s.id)] = self._choices(w, s, state)
        self._pair_memo: dict[Hashable, bool] = {}
        self._by_key = {c.option.key: c.option for st in self.stages.values() for c in st.choices}

    def option_of(self, resource: str) -> Option:
        """The option (pool, rented or bought) behind a resource key."""
        return self._by_key[resource]

    # --- export volumes ------------------------------------------------------------------------
    def _exports_of(self, w: Workload, stage: Stage, site: Site) -> set[str]:
        """Origins whose personal information this placement sends abroad."""
        out = {
            self.sc.dataset(d).origin
            for d in stage.datasets
            if self.sc.dataset(d).is_personal and self.sc.dataset(d).origin != site.country
        }
        return out | {c for c in stage.users if c != site.country}

    def _ledgers(self, state: PlanState) -> dict[str, ExportLedger]:
        """Per tenant: the worst-case ledger, with the greedy plan's exports instead for the
        origins where the greedy plan needs a smaller total."""
        year = self.cand.date.year
        worst: dict[str, ExportLedger] = {}
        for w in self.sc.workloads:
            led = worst.setdefault(w.tenant, ExportLedger())
            for s in w.stages:
                for d_id in s.datasets:
                    d = self.sc.dataset(d_id)
                    if d.is_personal:
                        led.add(w.tenant, d.origin, year, d.id, d.subjects, d.sensitive_subjects)
                for c in s.users:
                    led.add(w.tenant, c, year, users_export_id(w, s, c), user_subjects(s), 0)
        self.tight: set[tuple[str, str]] = set()
        for (wid, sid), b in state.placed.items():
            w = self.sc.workload(wid)
            stage = w.stage(sid)
            origins = self._exports_of(w, stage, b.site)
            if not origins:
                continue
            t = self.cand.table(w, stage)
            o = t.option(t.row_of(b.assignment.option_label))
            if not self.cand.verdict(w, stage, o, [], [worst[w.tenant]]).lawful:
                self.tight |= {(w.tenant, x) for x in origins}
        out: dict[str, ExportLedger] = {}
        for tenant, led in worst.items():
            mixed = ExportLedger()
            for key, batch in led.entries.items():
                _, origin, _ = key
                source = (
                    state.exports.entries.get(key, {}) if (tenant, origin) in self.tight else batch
                )
                mixed.entries[key] = dict(source)
            out[tenant] = mixed
        self.greedy_exports = state.exports
        return out

    def admissible(self, w: Workload, stage: Stage, o: Option) -> Verdict | None:
        """The verdict that admits ``o`` into the model, or None."""
        origins = self._exports_of(w, stage, o.site)
        for x in origins:
            if (w.tenant, x) in self.tight:
                allowed = set(
                    self.greedy_exports.entries.get((w.tenant, x, self.cand.date.year), {})
                )
                mine = {
                    d
                    for d in stage.datasets
                    if self.sc.dataset(d).origin == x and self.sc.dataset(d).is_personal
                }
                mine |= {users_export_id(w, stage, x)} if x in stage.users else set()
                if not mine <= allowed:
                    return None
        v = self.cand.verdict(w, stage, o, [], [self.ledgers[w.tenant]] if origins else [])
        return v if v.lawful else None

    # --- choices -------------------------------------------------------------------------------
    def _choices(self, w: Workload, stage: Stage, state: PlanState) -> StageChoices:
        t = self.cand.table(w, stage)
        order, _, _ = rank_rows(self.cand, self.objective, w, stage, t, [])
        gid = self.cand.groups(w, stage, t, [])
        booked = state.placed.get((w.id, stage.id))
        placed = booked.assignment if booked else None
        greedy_label = placed.option_label if placed else None
        greedy_row = t.row_of(greedy_label) if greedy_label else None
        kept: list[tuple[Option, Verdict]] = []
        groups: dict[int, Verdict | None] = {}
        have_greedy = greedy_row is None
        for i in order:
            is_greedy = int(i) == greedy_row
            if len(kept) >= self.per_stage and not is_greedy:
                continue
            g = int(gid[i])
            if g not in groups:
                groups[g] = self.admissible(w, stage, t.option(int(i)))
            v = groups[g]
            if v is not None:
                kept.append((t.option(int(i)), v))
                have_greedy = have_greedy or is_greedy
            if len(kept) >= self.per_stage and have_greedy:
                break
        out = StageChoices(w, stage, [])
        pred_sites = {
            c.option.site.id: c.option.site
            for p in stage.after
            for c in self.stages[(w.id, p)].choices
        }
        size = weights_gb(w.model)
        for o, v in kept:
            out.verdicts[o.label] = v
            ready, transfer, egress = self.moves.ready(w, stage, o.site, [])
            # the predecessors' weights come from one of their sites: count the dearest
            weights = len(stage.after) * max(
                (egress_usd(size, src, o.site) for src in pred_sites.values()), default=0.0
            )
            for est in o.sizes:
                cost = o.cost(est) + egress + weights
                mwh, tco2e = self.cand.index.energy_of(o, est)
                out.choices.append(
                    Choice(
                        o,
                        est,
                        ticks_up(est.hours),
                        ticks_up(ready),
                        math.ceil(cost - 1e-9),
                        egress,
                        transfer,
                        self.objective.model_value(cost, mwh, tco2e),
                        mwh,
                        tco2e,
                    )
                )
                if placed and o.label == greedy_label and est.chips == placed.chips:
                    out.hint = len(out.choices) - 1
                    out.hint_end = ticks_up(placed.end_h)
        return out

    # --- weights between stages ----------------------------------------------------------------
    def weights_ticks(self, w: Workload, a: Choice, b: Choice) -> int:
        """Model ticks the weights take from ``a``'s site to ``b``'s."""
        if a.option.site.id == b.option.site.id:
            return 0
        return ticks_up(transfer_hours(weights_gb(w.model), a.option.site, b.option.site))

    def weights_lawful(self, w: Workload, pred: Stage, a: Choice, b: Choice) -> bool:
        """May the predecessor's weights move from ``a``'s site to ``b``'s? The request is
        made from the tenant, the two sites' facts and the model; it is asked once per
        distinct set of those (the training operations as the rules see them,
        :meth:`Candidates.ops_key`)."""
        src, dst = a.option.site, b.option.site
        if src.id == dst.id:
            return True
        ops = self.cand.ops[w.id][pred.id]
        args = (
            w.tenant,
            src.country,
            dst.country,
            dst.operator_hq,
            w.model.open_weights,
            self.cand.ops_key(ops),
        )
        hit = self._pair_memo.get(args)
        if hit is None:
            t = self.sc.tenant(w.tenant)
            req = CheckRequest.model_construct(
                date=self.cand.date,
                regime=cast(Regime, self.cand.regime),
                action="transfer-weights",
                tenant=TenantFacts.model_construct(
                    hq=t.hq, authorizations=t.authorizations, ciio=t.ciio
                ),
                site=SiteFacts.model_construct(country=dst.country, operator_hq=dst.operator_hq),
                weights=WeightsFacts.model_construct(
                    training_ops=ops, open=w.model.open_weights, from_country=src.country
                ),
            )
            hit = self._pair_memo[args] = self.cand.rules.check(req).lawful
        return hit
