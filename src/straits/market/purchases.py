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
  obtained), cut pro rata to the month's supply;
* what a chip's supply could not fill is offered once more, as work, to the other chips the
  firm may buy that still have supply that month (the same logit on their cost, their access
  share), cut pro rata to what is left: a firm turned away by one chip buys the next (as
  rentals turned away by full pools go to pools with room).
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


def orders(
    s: Setup,
    step: int,
    t: int,
    own: np.ndarray,
    arrivals: np.ndarray,
    a_off: np.ndarray,
    price: np.ndarray,
    demand_at: Callable[[int], np.ndarray],
    buy_idx: np.ndarray,
    buy_lead: np.ndarray,
    usd: np.ndarray,
    amort_hours: float,
    sharp: float,
    wtp: float,
    type_members: list[np.ndarray],
    month: str,
    avail: float,
) -> dict[str, float]:
    """Place this month's orders (added to ``arrivals``); returns units ordered per chip."""
    m, f = s.m, s.firms
    chips = [h.chip for h in m.home_chips]
    ships_from = [h.ships_from for h in m.home_chips]
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
    buy_cost = (
        np.divide(usd, amort_hours * e_mix, out=np.full(n_j, np.inf), where=e_mix > 0) * premium
    )
    supply = np.array([series_at(h.supply_per_month, t) for h in m.home_chips])
    desired = np.zeros((n_f, n_j))
    # h100e-hours a unit of each chip delivers in the month it arrives
    per_unit = hours_at * avail * e_mix
    # per firm type: the access share of each chip it may buy this month
    usable: dict[int, np.ndarray] = {}
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
                want[j] = (
                    float(shortfall[idx, j].sum()) * share[j] / (hours_at[j] * avail * e_mix[j])
                )
        access = np.zeros(n_j)
        for j, chip in enumerate(chips):
            if ok[j] and want[j] > 0:
                access[j] = s.rulebook.verdict(
                    Question(
                        s.actors[ti],
                        "procure",
                        m.home,
                        ft.hq,
                        chip,
                        None,
                        max(1, round(want[j])),
                        ships_from[j],
                    ),
                    month,
                ).share
        usable[ti] = np.where(ok, access, 0.0)
        pick = logit_split(buy_cost, ok & (access > 0), sharp)
        for j in range(n_j):
            if pick[j] > 0:
                desired[idx, j] = shortfall[idx, j] * share[j] * pick[j] * access[j] / per_unit[j]
    got = ration(desired, supply)
    got += _second_round(desired, got, supply, per_unit, buy_cost, usable, type_members, sharp)
    out: dict[str, float] = {}
    for j, c in enumerate(buy_idx):
        arrivals[(step + int(buy_lead[j])) % ring, :, c] += got[:, j]
        out[chips[j]] = float(got[:, j].sum())
    return out


def _second_round(
    desired: np.ndarray,
    got: np.ndarray,
    supply: np.ndarray,
    per_unit: np.ndarray,
    buy_cost: np.ndarray,
    usable: dict[int, np.ndarray],
    type_members: list[np.ndarray],
    sharp: float,
) -> np.ndarray:
    """Units bought in the second round: each firm's work that rationing left unbought
    (h100e-hours), split by the logit on cost over the chips its type may buy that have supply
    left, times their access share, cut pro rata to that supply. (The rules were asked with
    the type's whole shortfall bought as each chip, which bounds both rounds' orders.)"""
    extra = np.zeros_like(desired)
    spare = np.maximum(supply - got.sum(axis=0), 0.0)
    unfilled = ((desired - got) * np.where(per_unit > 0, per_unit, 0.0)).sum(axis=1)
    if not (spare > 1e-9).any() or not (unfilled > 1e-9).any():
        return extra
    for ti, access in usable.items():
        idx = type_members[ti]
        room = (access > 0) & (spare > 1e-9) & (per_unit > 0)
        if not room.any():
            continue
        pick = logit_split(buy_cost, room, sharp)
        for j in np.flatnonzero(pick > 0):
            extra[idx, j] = unfilled[idx] * pick[j] * access[j] / per_unit[j]
    return ration(extra, spare)
