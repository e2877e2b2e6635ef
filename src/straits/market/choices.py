"""The three choices a firm makes each month, vectorised over the firms of a type.

1. **Use what it owns** (:func:`use_own`): the kinds with the fewest lawful places abroad are
   placed first (what may not leave is placed at home before what may); kinds equally free to
   leave are placed together, each (kind, chip) pair in order of comparative advantage (the
   chip's efficiency for the kind over its efficiency summed over kinds), so a chip goes to the
   work it is relatively best at rather than to whichever kind happens to come first; every use
   as far as the rules allow it that month.
2. **Rent abroad** (:func:`clear_rentals`): what is left, times the firm's readiness, is offered
   to the lawful pools whose price per h100e-hour is within what the work is worth, split by a
   logit on that price; each pool serves at most its chip-hours (pro rata when short), and what a
   full pool turns away is offered once more to pools lawful all month that have room. The rest
   is unmet and reported.
3. **Buy chips** (:func:`orders`): the shortfall a firm foresees when chips ordered now would
   arrive is bought in the share a logit on (alternative cost - buying cost) gives, split over
   the lawful chips by a logit on their cost per h100e-hour, as far as the month's supply to the
   home market goes (pro rata when short).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def use_own(
    need: np.ndarray, cap: np.ndarray, eff: np.ndarray, access: np.ndarray, tiers: list[list[int]]
) -> np.ndarray:
    """Chip-hours of owned chips used, ``used[f, k, c]``.

    ``need[f, k]`` work (h100e-hours, reduced in place), ``cap[f, c]`` chip-hours (reduced in
    place), ``eff[k, c]`` h100e per chip-hour, ``access[k, c]`` lawful share of using chip c for
    kind k that month. ``tiers``: groups of kinds, placed group after group; inside a group the
    (kind, chip) pairs take chips in order of the chip's comparative advantage for the kind
    (``eff[k, c] / sum_k' eff[k', c]``), then absolute efficiency, then index.
    """
    n_f, n_k = need.shape
    n_c = cap.shape[1]
    used = np.zeros((n_f, n_k, n_c))
    total = eff.sum(axis=0)
    rel = np.divide(eff, total, out=np.zeros_like(eff), where=total > 0)
    for tier in tiers:
        pairs = sorted(
            ((k, c) for k in tier for c in range(n_c)),
            key=lambda kc: (-float(rel[kc]), -float(eff[kc]), kc),
        )
        for k, c in pairs:
            if eff[k, c] <= 0 or access[k, c] <= 0:
                continue
            usable = cap[:, c] * access[k, c]
            take = np.minimum(usable, need[:, k] / eff[k, c])
            used[:, k, c] += take
            cap[:, c] -= take
            need[:, k] -= take * eff[k, c]
    np.maximum(need, 0.0, out=need)
    return used


@dataclass
class Offer:
    """The rental demand of one (firm type, kind): total work willing to go abroad and how it
    splits over pools (already scaled by the lawful share of each pool)."""

    type_index: int
    kind: int
    work: float
    split: np.ndarray
    """share of ``work`` offered to each pool in the first round (sums to <= 1)"""
    weights: np.ndarray
    """logit weights of the pools (for the second round)"""
    full_month: np.ndarray
    """pools lawful on every day of the month (second round)"""


def logit_split(cost: np.ndarray, ok: np.ndarray, sharpness: float) -> np.ndarray:
    """Shares over the ``ok`` options, by a logit on cost relative to the cheapest."""
    out = np.zeros_like(cost)
    if not ok.any():
        return out
    best = cost[ok].min()
    rel = np.where(ok, cost / best - 1.0 if best > 0 else 0.0, 0.0)
    w = np.where(ok, np.exp(-sharpness * rel), 0.0)
    total = w.sum()
    return w / total if total > 0 else out


def clear_rentals(
    offers: list[Offer], eff_pool: np.ndarray, cap: np.ndarray
) -> tuple[dict[tuple[int, int], np.ndarray], np.ndarray, np.ndarray]:
    """Serve the offers from the pools' chip-hours ``cap``.

    Returns, per (type, kind), the share of its work each pool served; the chip-hours used per
    pool; and the pressure on each pool (chip-hours asked in the first round over ``cap``).
    ``eff_pool[k, p]`` is h100e per chip-hour of pool p for kind k.
    """
    n_p = cap.size
    demand = np.zeros(n_p)
    for o in offers:
        demand += o.work * o.split / np.maximum(eff_pool[o.kind], 1e-12)
    fill = np.divide(cap, demand, out=np.ones(n_p), where=demand > cap)
    fill = np.minimum(fill, 1.0)
    used = np.minimum(demand, cap)
    spare = np.maximum(cap - used, 0.0)
    served: dict[tuple[int, int], np.ndarray] = {}
    second: list[tuple[Offer, float, np.ndarray]] = []
    demand2 = np.zeros(n_p)
    for o in offers:
        share = o.split * fill
        served[(o.type_index, o.kind)] = share
        left = float((o.split * (1.0 - fill)).sum())
        ok = o.full_month & (spare > 1e-9)
        if left > 1e-12 and ok.any():
            w = np.where(ok, o.weights, 0.0)
            if w.sum() > 0:
                split2 = left * w / w.sum()
                second.append((o, left, split2))
                demand2 += o.work * split2 / np.maximum(eff_pool[o.kind], 1e-12)
    if second:
        fill2 = np.divide(spare, demand2, out=np.ones(n_p), where=demand2 > spare)
        fill2 = np.minimum(fill2, 1.0)
        used = used + np.minimum(demand2, spare)
        for o, _, split2 in second:
            served[(o.type_index, o.kind)] = served[(o.type_index, o.kind)] + split2 * fill2
    pressure = np.divide(demand, cap, out=np.zeros(n_p), where=cap > 0)
    return served, np.minimum(used, cap), pressure


def asked_chip_hours(offers: list[Offer], eff_pool: np.ndarray, n_types: int) -> np.ndarray:
    """Chip-hours each (type, pool) asked for in the first round: rental *demand*, before any
    pool turned firms away."""
    out = np.zeros((n_types, eff_pool.shape[1]))
    for o in offers:
        out[o.type_index] += o.work * o.split / np.maximum(eff_pool[o.kind], 1e-12)
    return out


def buy_share(alt_cost: float, buy_cost: np.ndarray, sharpness: float) -> np.ndarray:
    """Share of a foreseen shortfall a firm covers by buying each chip."""
    rel = (alt_cost - buy_cost) / np.maximum(buy_cost, 1e-12)
    # exp(710) overflows: a RuntimeWarning on stderr (a $1e-300 chip at sharpness 1000) for
    # what is 0 either way
    out: np.ndarray = 1.0 / (1.0 + np.exp(np.clip(-sharpness * rel, -700.0, 700.0)))
    return out


def ration(desired: np.ndarray, supply: np.ndarray) -> np.ndarray:
    """``desired[f, c]`` units cut pro rata to ``supply[c]``."""
    total = desired.sum(axis=0)
    ratio = np.divide(supply, total, out=np.ones_like(total), where=total > supply)
    out: np.ndarray = desired * np.minimum(ratio, 1.0)
    return out
