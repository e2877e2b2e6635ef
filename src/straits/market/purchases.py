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

An order is placed in month t and arrives in month t + L. The rules are asked on the order month
(a firm orders what is lawful when it orders, unaware of later rules), and the supply it is cut
to is the chips' supply in the month they ship (``supply_per_month`` is dated by shipment). On
arrival the same question is asked again for the arrival month (:func:`deliver`): what a rule in
force by then no longer allows is cancelled and lost, never delivered (the 2025-04-09 H20 letter
cost NVIDIA $2.5B of Q1 sales it could not ship, NVIDIA filings). The share delivered is the
arrival month's access share over the order month's, at most 1: an order placed under a licence
keeps it (the uptake is not applied twice), a chip lawful for 8 of April's 30 days arrives as
8/30 of its order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from straits.market.choices import buy_share, logit_split, ration
from straits.market.rulebook import Question
from straits.market.supply import month_hours, series_at

if TYPE_CHECKING:
    from straits.market.simulation import Setup


@dataclass
class Pipeline:
    """Home firms' chips on order, by month of arrival modulo the longest lead (a ring, so
    memory does not grow with the period). Each chip has one lead, so a slot holds the orders
    of one order month per chip."""

    units: np.ndarray
    """units[slot, firm, own chip]"""
    quantity: np.ndarray
    """quantity[slot, firm type, buyable chip]: the order size the rules were asked with (a
    float: a simulated order can outgrow int64; the rules read only its position among their
    thresholds)"""
    access: np.ndarray
    """access[slot, firm type, buyable chip]: the access share on the order month"""

    @classmethod
    def empty(cls, ring: int, n_firms: int, n_own: int, n_types: int, n_buy: int) -> Pipeline:
        return cls(
            np.zeros((ring, n_firms, n_own)),
            np.zeros((ring, n_types, n_buy)),
            np.zeros((ring, n_types, n_buy)),
        )

    @property
    def ring(self) -> int:
        return int(self.units.shape[0])


def deliver(
    s: Setup,
    pipe: Pipeline,
    slot: int,
    month: str,
    buy_idx: np.ndarray,
    type_members: list[np.ndarray],
) -> tuple[dict[str, float], dict[str, float]]:
    """Cut the orders arriving in ``slot`` (this ``month``) to what the rules still allow on
    arrival, in place; returns the units delivered and the units cancelled per chip. The slot's
    units are then the firms' to add to what they own (the caller empties the slot)."""
    m = s.m
    delivered: dict[str, float] = {}
    cancelled: dict[str, float] = {}
    for j, (h, c) in enumerate(zip(m.home_chips, buy_idx, strict=True)):
        total = float(pipe.units[slot, :, c].sum())
        lost = 0.0
        for ti, idx in enumerate(type_members):
            q, a0 = int(pipe.quantity[slot, ti, j]), float(pipe.access[slot, ti, j])
            units = float(pipe.units[slot, idx, c].sum()) if idx.size else 0.0
            if q <= 0 or a0 <= 0 or units <= 0:
                continue
            ft = s.firms.types[ti]
            a1 = s.rulebook.verdict(
                Question(s.actors[ti], "procure", m.home, ft.hq, h.chip, None, q, h.ships_from),
                month,
            ).share
            keep = min(1.0, a1 / a0)
            if keep < 1.0:
                lost += units * (1.0 - keep)
                pipe.units[slot, idx, c] *= keep
        delivered[h.chip] = total - lost
        cancelled[h.chip] = lost
    pipe.quantity[slot] = 0
    pipe.access[slot] = 0.0
    return delivered, cancelled


def orders(
    s: Setup,
    step: int,
    t: int,
    own: np.ndarray,
    pipe: Pipeline,
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
    """Place this month's orders (added to ``pipe``); returns units ordered per chip."""
    m, f = s.m, s.firms
    chips = [h.chip for h in m.home_chips]
    ships_from = [h.ships_from for h in m.home_chips]
    n_j = len(chips)
    arrivals, ring = pipe.units, pipe.ring
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
    # each order is cut to the supply of the month its chips ship (and arrive)
    supply = np.array(
        [series_at(h.supply_per_month, t + int(buy_lead[j])) for j, h in enumerate(m.home_chips)]
    )
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
                quantity = max(1, round(want[j]))
                access[j] = s.rulebook.verdict(
                    Question(
                        s.actors[ti], "procure", m.home, ft.hq, chip, None, quantity, ships_from[j]
                    ),
                    month,
                ).share
                # asked again, with the same order, when it arrives (deliver)
                arrive = (step + int(buy_lead[j])) % ring
                pipe.quantity[arrive, ti, j] = quantity
                pipe.access[arrive, ti, j] = access[j]
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
