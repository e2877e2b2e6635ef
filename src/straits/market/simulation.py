"""The monthly simulation: demand, the rules, own chips, rentals, purchases, prices.

Each month, in order: chips ordered earlier arrive; the rules are asked (memoised) what each firm
type may use, rent and buy and what operators may buy; home firms use what they own
(:func:`~straits.market.choices.use_own`); what is left goes abroad as far as the firm is ready
to move it and the pools have room (:func:`~straits.market.choices.clear_rentals`); the rest is
unmet; firms and operators order chips for the months ahead; prices follow utilisation into the
next month. Every unit of demand is served at home, served abroad or reported unmet.
"""

from __future__ import annotations

import calendar
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from straits.catalog import get_chip
from straits.market.accounting import record, trace_usage
from straits.market.choices import Offer, asked_chip_hours, clear_rentals, logit_split, use_own
from straits.market.efficiency import efficiency, unfit_notes
from straits.market.firms import Firms, make_firms
from straits.market.loading import MarketError
from straits.market.operators import arriving, place, start_fleet_notes
from straits.market.params import (
    ACTION_OF,
    KINDS,
    SOURCE_FIELDS,
    Market,
    month_index,
    month_start,
)
from straits.market.purchases import Pipeline, deliver, orders
from straits.market.result import MarketResult, MonthRecord, Usage
from straits.market.rulebook import Actor, Question, Rulebook
from straits.market.supply import (
    lead,
    markup,
    month_hours,
    mw_per_chip,
    pool_targets,
    relative_price,
    series_at,
)
from straits.model.request import DataFacts
from straits.rules.engine import RuleSet, ruleset
from straits.rules.est import REGIMES

HOURS_PER_YEAR = 8760.0
#: share (in log terms) of the gap to the utilisation markup a price closes in a month
PRICE_STEP = 0.25


@dataclass
class Setup:
    m: Market
    firms: Firms
    regime: str
    own_chips: list[str]
    domestic: np.ndarray
    eff: np.ndarray
    """eff[k, c] for own chips"""
    eff_pool: np.ndarray
    """eff[k, p] for pools' chips"""
    actors: list[Actor]
    operators: list[Actor]
    months: list[int]
    rulebook: Rulebook
    mw_chip_pool: np.ndarray
    rel_price: np.ndarray
    facts: list[dict[str, DataFacts | None]]
    """per firm type, the data each kind reads (as the rules see it)"""
    trace: bool = False
    usage: list[Usage] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    answers: dict[Hashable, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )
    slots: list[tuple[str, int, int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _setup(
    m: Market, rules: RuleSet, regime: str, seed: int, firms: int | None, trace: bool
) -> Setup:
    buy = [h.chip for h in m.home_chips]
    own = list(dict.fromkeys([*m.installed, *buy]))
    pool_chips = [p.chip for p in m.supply.pools]
    chips = list(dict.fromkeys([*own, *pool_chips, m.prices.base_chip]))
    models = {str(k): v for k, v in m.models.items()}
    table = efficiency(models, chips)
    eff = np.array([[table[k][c] for c in own] for k in KINDS])
    eff_pool = np.array([[table[k][c] for c in pool_chips] for k in KINDS])
    base_eff = np.array([table[k][m.prices.base_chip] for k in KINDS]).mean()
    uptake: dict[str, dict[str, float]] = {
        req: {str(pres): p.mid for pres, p in by.items()} for req, by in m.uptake.items()
    }
    return Setup(
        m=m,
        firms=make_firms(m, seed, firms),
        regime=regime,
        own_chips=own,
        domestic=np.array([get_chip(c).origin == m.home for c in own]),
        eff=eff,
        eff_pool=eff_pool,
        actors=[Actor(t.hq, tuple(t.authorizations), t.ciio) for t in m.firm_types],
        operators=[Actor(p.operator_hq, tuple(p.authorizations)) for p in m.supply.pools],
        months=[month_index(x) for x in m.months],
        rulebook=Rulebook(rules, regime, uptake),
        notes=unfit_notes(models, chips),
        mw_chip_pool=np.array([mw_per_chip(m, c) for c in pool_chips]),
        rel_price=np.array(
            [
                relative_price(m, c, eff_pool[:, i].mean() / base_eff)
                for i, c in enumerate(pool_chips)
            ]
        ),
        facts=[
            {
                k: None
                if (d := t.datasets.get(k)) is None
                else DataFacts.model_validate(d.model_dump(exclude=SOURCE_FIELDS))
                for k in KINDS
            }
            for t in m.firm_types
        ],
        trace=trace,
    )


def simulate(
    m: Market,
    *,
    regime: str | None = None,
    seed: int | None = None,
    firms: int | None = None,
    rules: RuleSet | None = None,
    trace: bool = False,
) -> MarketResult:
    """Run the market month by month; deterministic for a given market, regime and seed."""
    regime = regime or m.regime
    seed = m.seed if seed is None else seed
    # a library call gets the errors the CLI gives (atk75: a pydantic ValidationError, a
    # ValueError, a TypeError), not whatever the first use of the value raises
    if regime not in REGIMES:
        raise MarketError(
            f"unknown regime {regime!r}", path="regime", expected=" or ".join(REGIMES)
        )
    for name, value in (("seed", seed), ("firms", firms)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise MarketError(
                f"{name} {value!r} is not an integer", path=name, expected="an integer"
            )
    if not 0 <= seed <= 2**63 - 1:
        raise MarketError(f"seed {seed} is out of range", path="seed", expected="0 to 2^63-1")
    s = _setup(m, rules or ruleset(), regime, seed, firms, trace)
    return _run(s, seed)


def _ask(s: Setup, month: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The month's rule questions, asked in one batch: for each firm type and kind, the access
    share of using each owned chip at home and of renting in each pool (with and without the
    kind's data, to tell what data residency alone keeps at home)."""
    m, f, rb = s.m, s.firms, s.rulebook
    n_t, n_k, n_c, n_p = len(f.types), len(KINDS), len(s.own_chips), len(m.supply.pools)
    if not s.questions:
        s.questions, s.slots = _questions(s)
    # months the policies cannot tell apart (same stretches, same date positions) get the
    # same answers: ask once per such signature
    signature = tuple((round(w, 12), pos) for _, w, pos in rb.segments(month))
    cached = s.answers.get(signature)
    if cached is not None:
        return cached
    a_home = np.zeros((n_t, n_k, n_c))
    a_off = np.zeros((n_t, n_k, n_p))
    a_nodata = np.full((n_t, n_k, n_p), np.nan)
    full = np.zeros((n_t, n_k, n_p), dtype=bool)
    for (what, ti, k, i), v in zip(s.slots, rb.verdicts(s.questions, month), strict=True):
        if what == "home":
            a_home[ti, k, i] = v.share
        elif what == "off":
            a_off[ti, k, i] = v.share
            full[ti, k, i] = all(d[2] == "allow" for d in v.decisions)
        else:
            a_nodata[ti, k, i] = v.share
    a_nodata = np.where(np.isnan(a_nodata), a_off, a_nodata)
    for arr in (a_home, a_off, a_nodata, full):
        arr.flags.writeable = False
    s.answers[signature] = (a_home, a_off, a_nodata, full)
    return s.answers[signature]


def _questions(s: Setup) -> tuple[list[Question], list[tuple[str, int, int, int]]]:
    m, f = s.m, s.firms
    qs: list[Question] = []
    slots: list[tuple[str, int, int, int]] = []
    for ti, ft in enumerate(f.types):
        actor = s.actors[ti]
        for k, kind in enumerate(KINDS):
            facts = s.facts[ti][kind]
            action = ACTION_OF[kind]
            if ft.hq == m.home:
                for c, chip in enumerate(s.own_chips):
                    qs.append(Question(actor, action, m.home, ft.hq, chip, facts))
                    slots.append(("home", ti, k, c))
            for p, pool in enumerate(m.supply.pools):
                qs.append(Question(actor, action, pool.country, pool.operator_hq, pool.chip, facts))
                slots.append(("off", ti, k, p))
                if facts is not None:
                    qs.append(
                        Question(actor, action, pool.country, pool.operator_hq, pool.chip, None)
                    )
                    slots.append(("nodata", ti, k, p))
    return qs, slots


def _tiers(a_off: np.ndarray) -> list[list[int]]:
    """Kinds grouped by their best offshore access share (``a_off[k, p]``), least first: what
    may not leave is placed on own chips before what may; kinds equally free share a group."""
    best = [round(float(a_off[k].max()), 9) for k in range(a_off.shape[0])]
    return [[k for k in range(len(best)) if best[k] == level] for level in sorted(set(best))]


def _mix(m: Market, t: float) -> np.ndarray:
    a = np.array([m.demand.mix_start[k].mid for k in KINDS])
    b = np.array([m.demand.mix_end[k].mid for k in KINDS])
    mix = np.maximum(a + (b - a) * t, 0.0)
    return mix / mix.sum() if mix.sum() > 0 else np.full(len(KINDS), 1.0 / len(KINDS))


def _run(s: Setup, seed: int) -> MarketResult:
    m, f, rb = s.m, s.firms, s.rulebook
    months = s.months
    t0, n_t = months[0], len(months)
    n_f, n_k, n_c, n_p = f.n, len(KINDS), len(s.own_chips), len(m.supply.pools)
    avail = m.supply.availability.mid
    horizon = n_t + 24
    # --- state ------------------------------------------------------------------------------
    own = np.zeros((n_f, n_c))
    installed_units = np.array(
        [m.installed[c].mid if c in m.installed else 0.0 for c in s.own_chips]
    )
    home_w = np.where(f.home, f.weight, 0.0)
    own += home_w[:, None] * installed_units[None, :]
    buy_lead = np.array([lead(h.lead_months.mid) for h in m.home_chips])
    type_members = [np.flatnonzero(f.type_of == i) for i in range(len(f.types))]
    # chips on order, by month of arrival modulo the longest lead (a ring, so memory does not
    # grow with the period: firms x chips x (longest lead + 1))
    pipe = Pipeline.empty(int(buy_lead.max()) + 1, n_f, n_c, len(f.types), len(m.home_chips))
    pool_chips = pool_targets(m, t0)
    first_fleet = pool_chips
    pool_arrivals = np.zeros((horizon, n_p))
    # each operator order's size and access share on its order month, asked again on arrival
    pool_order = np.zeros((horizon, n_p, 2))
    readiness = np.where(f.home, np.minimum(m.demand.initial_readiness.mid * f.readiness, 1.0), 1.0)
    mark = np.ones(n_p)
    # --- demand scale -----------------------------------------------------------------------
    mix0 = _mix(m, 0.0)
    h0 = month_hours(t0)
    home_base = (
        m.demand.initial_utilisation.mid * h0 * avail * float(installed_units @ (mix0 @ s.eff))
    )
    off_base = (
        m.demand.offshore_initial_utilisation.mid
        * h0
        * avail
        * float(pool_chips @ (mix0 @ s.eff_pool))
    )
    g_home, g_off = m.demand.growth_per_year.mid, m.demand.offshore_growth_per_year.mid
    buy_chips = [h.chip for h in m.home_chips]
    buy_idx = np.array([s.own_chips.index(c) for c in buy_chips])
    usd = np.array([h.usd_per_chip.mid for h in m.home_chips])
    op_lead = lead(m.supply.lead_months.mid)
    sharp = m.demand.buy_sharpness.mid
    wtp = m.demand.wtp_usd_per_h100e_hour.mid
    speed = m.demand.shift_speed.mid
    firm_wtp = wtp * f.wtp
    amort_hours = m.demand.amortize_years.mid * HOURS_PER_YEAR * avail
    records: list[MonthRecord] = []

    def demand_at(t: int) -> np.ndarray:
        frac = (t - t0) / max(1, n_t - 1)
        mix = _mix(m, min(max(frac, 0.0), 1.0))
        years = (t - t0) / 12.0
        total = np.where(f.home, home_base * g_home**years, off_base * g_off**years)
        out: np.ndarray = (f.weight * total)[:, None] * mix[None, :]
        return out

    for step, t in enumerate(months):
        month = m.months[step]
        hours = month_hours(t)
        slot = step % pipe.ring
        delivered, cancelled = deliver(s, pipe, slot, month, buy_idx, type_members)
        own += pipe.units[slot]
        pipe.units[slot] = 0.0
        pool_chips = pool_chips + arriving(s, pool_arrivals[step], pool_order[step], month)
        price = series_at(m.prices.base, t) * s.rel_price * mark
        # --- the rules, per firm type ---------------------------------------------------------
        a_home, a_off, a_off_nodata, full_off = _ask(s, month)
        # --- demand and own chips ---------------------------------------------------------------
        need = demand_at(t)
        demand_total = need.copy()
        cap = own * hours * avail
        used_own = np.zeros((n_f, n_k, n_c))
        for ti, idx in enumerate(type_members):
            if f.types[ti].hq != m.home or idx.size == 0:
                continue
            sub_need, sub_cap = need[idx], cap[idx]
            used_own[idx] = use_own(sub_need, sub_cap, s.eff, a_home[ti], _tiers(a_off[ti]))
            need[idx], cap[idx] = sub_need, sub_cap
        # --- rentals ----------------------------------------------------------------------------
        offers: list[Offer] = []
        willing = need * readiness[:, None]
        for ti, idx in enumerate(type_members):
            if idx.size == 0:
                continue
            for k in range(n_k):
                cost = price / np.maximum(s.eff_pool[k], 1e-12)
                ok = (a_off[ti, k] > 0) & (cost <= firm_wtp[idx].max())
                weights = logit_split(cost, ok, sharp)
                # a linear demand curve: the share of the work worth renting at the expected
                # price falls from 1 (free) to 0 (at what the work is worth to the firm)
                expected = float(weights @ cost) if ok.any() else np.inf
                willing[idx, k] *= np.maximum(0.0, 1.0 - expected / firm_wtp[idx])
                work = float(willing[idx, k].sum())
                offers.append(
                    Offer(ti, k, work, weights * a_off[ti, k], weights, full_off[ti, k] & ok)
                )
        pool_cap = pool_chips * hours * avail
        served_share, pool_used, pressure = clear_rentals(offers, s.eff_pool, pool_cap)
        asked = asked_chip_hours(offers, s.eff_pool, len(f.types))
        off_work = np.zeros((n_f, n_k))
        rent_ch = np.zeros((len(f.types), n_k, n_p))
        for (ti, k), share in served_share.items():
            idx = type_members[ti]
            off_work[idx, k] = willing[idx, k] * share.sum()
            rent_ch[ti, k] = float(willing[idx, k].sum()) * share / np.maximum(s.eff_pool[k], 1e-12)
        unmet = np.maximum(need - off_work, 0.0)
        # --- purchases (home firms) and operators -----------------------------------------------
        bought = orders(
            s,
            step,
            t,
            own,
            pipe,
            a_off,
            price,
            demand_at,
            buy_idx,
            buy_lead,
            usd,
            amort_hours,
            sharp,
            wtp,
            type_members,
            month,
            avail,
        )
        targets = pool_targets(m, t + op_lead)
        placed = place(s, step, month, targets, pool_chips, pool_arrivals, pool_order, op_lead)
        if step == 0:  # the note asks the orders the market placed (mkt65), not the fleet
            s.notes += start_fleet_notes(s, first_fleet, placed, month)
        # --- readiness, prices -------------------------------------------------------------------
        lawful_any = np.array([a_off[ti].max() > 0 for ti in range(len(f.types))])[f.type_of]
        short = need.sum(axis=1) > 1e-9
        readiness = np.where(
            f.home & short & lawful_any, readiness + speed * (1 - readiness), readiness
        )
        readiness = np.where(f.home & ~lawful_any, readiness * (1 - speed), readiness)
        # prices move a quarter of the way (in log terms) each month towards the markup of what
        # was asked of each pool (asked chip-hours over rentable chip-hours: above 1 when firms
        # were turned away); a faster move makes tenants hop between countries month by month
        mark = mark ** (1.0 - PRICE_STEP) * markup(m, pressure) ** PRICE_STEP
        records.append(
            record(
                s,
                month,
                t,
                hours,
                demand_total,
                used_own,
                rent_ch,
                pool_used,
                pool_cap,
                pool_chips,
                price,
                unmet,
                off_work,
                a_off,
                a_off_nodata,
                bought,
                asked,
                delivered,
                cancelled,
            )
        )
        if s.trace:
            trace_usage(s, month, used_own, rent_ch, a_home, a_off)
    last = month_start(m.months[-1])  # its last day: start + 30 days was in the next month
    events = rb.events(
        month_start(m.months[0]),
        last.replace(day=calendar.monthrange(last.year, last.month)[1]),
    )
    return MarketResult(
        market=m,
        regime=s.regime,
        seed=seed,
        firms=f.counts(),
        months=records,
        events=events,
        rules_asked=rb.asked,
        usage=s.usage,
        notes=s.notes,
    )
