"""Home firms' chip orders: what they foresee missing when an order would arrive, bought where
the rules allow it and the month's supply to the home market lasts.

For each chip the firm could buy, with lead time L:

* shortfall S = demand(t + L) - capacity(t + L) of what it owns and has on order (h100e-hours);
* cost of buying = price / (amortisation hours x its efficiency for the month's mix),
  times the domestic premium for chips made at home;
* alternative = the cheapest lawful rental abroad per h100e-hour (by kind, weighted by the mix),
  or what the work is worth when no rental is lawful;
* the share bought is a logit on (alternative - cost) / cost, split over the chips the rules let
  the firm buy (a logit on their cost), times each chip's access share (days lawful, licences
  obtained), cut pro rata to the month's supply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from straits.market.choices import buy_share, logit_split, ration
from straits.market.rulebook import Question
from straits.market.supply import month_hours, series_at

if TYPE_CHECKING:
    from straits.market.simulation import Setup


def orders(s: Setup, step: int, t: int, own: np.ndarray, arrivals: np.ndarray,
           a_off: np.ndarray, price: np.ndarray, demand_at: Callable[[int], np.ndarray],
           buy_idx: np.ndarray, buy_lead: np.ndarray, usd: np.ndarray, amort_hours: float,
           sharp: float, wtp: float, type_members: list[np.ndarray], month: str, avail: float,
           ) -> dict[str, float]:
    """Place this month's orders (added to ``arrivals``); returns units ordered per chip."""
    m, f = s.m, s.firms
    chips = [h.chip for h in m.home_chips]
    n_j = len(chips)
    ring = arrivals.shape[0]
    n_f = f.n
    shortfall = np.zeros((n_f, n_j))
    e_mix = np.zeros(n_j)
    hours_at = np.zeros(n_j)
    mix_now = demand_at(t)[f.home].sum(axis=0)
    mix_now = mix_now / mix_now.sum() if mix_now.sum() > 0 else mix_now
    for j, c in enumerate(buy_idx):
        ta = t + int(buy_lead[j])
        future = demand_at(ta)
        mix = future[f.home].sum(axis=0)
        mix = mix / mix.sum() if mix.sum() > 0 else mix
        eff_mix = mix @ s.eff  # per own chip
        e_mix[j] = eff_mix[c]
        hours_at[j] = month_hours(ta)
        slots = [(step + i) % ring for i in range(1, int(buy_lead[j]) + 1)]
        have = own + arrivals[slots].sum(axis=0)
        cap = (have * eff_mix[None, :]).sum(axis=1) * hours_at[j] * avail
        shortfall[:, j] = np.where(f.home, np.maximum(future.sum(axis=1) - cap, 0.0), 0.0)
    premium = np.where(s.domestic[buy_idx], m.demand.domestic_premium.mid, 1.0)
    buy_cost = np.divide(usd, amort_hours * e_mix, out=np.full(n_j, np.inf),
                         where=e_mix > 0) * premium
    supply = np.array([series_at(h.supply_per_month, t) for h in m.home_chips])
    desired = np.zeros((n_f, n_j))
    for ti, idx in enumerate(type_members):
        ft = f.types[ti]
        if ft.hq != m.home or idx.size == 0 or not shortfall[idx].any():
            continue
        alt_k = []
        for k in range(s.eff_pool.shape[0]):
            cost = price / np.maximum(s.eff_pool[k], 1e-12)
            lawful = a_off[ti, k] > 0
            alt_k.append(min(float(cost[lawful].min()), wtp) if lawful.any() else wtp)
        alt = float(np.dot(mix_now, alt_k)) if mix_now.sum() > 0 else wtp
        share = buy_share(alt, buy_cost, sharp)
        ok = (supply > 0) & np.isfinite(buy_cost)
        # the rules, asked with the type's whole order of each chip (never split)
        want = np.zeros(n_j)
        for j in range(n_j):
            if ok[j] and hours_at[j] > 0 and e_mix[j] > 0:
                want[j] = float(shortfall[idx, j].sum()) * share[j] / (
                    hours_at[j] * avail * e_mix[j])
        access = np.zeros(n_j)
        for j, chip in enumerate(chips):
            if ok[j] and want[j] > 0:
                access[j] = s.rulebook.verdict(Question(
                    s.actors[ti], "procure", m.home, ft.hq, chip, None,
                    max(1, round(want[j]))), month).share
        pick = logit_split(buy_cost, ok & (access > 0), sharp)
        for j in range(n_j):
            if pick[j] > 0:
                desired[idx, j] = (shortfall[idx, j] * share[j] * pick[j] * access[j]
                                   / (hours_at[j] * avail * e_mix[j]))
    got = ration(desired, supply)
    out: dict[str, float] = {}
    for j, c in enumerate(buy_idx):
        arrivals[(step + int(buy_lead[j])) % ring, :, c] += got[:, j]
        out[chips[j]] = float(got[:, j].sum())
    return out
