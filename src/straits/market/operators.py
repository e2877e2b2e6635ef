"""Operators' orders for their pools, asked of the rules as orders are, and the note on a pool
whose operator's orders the rules refuse in the first month.

Each month an operator orders the chips its pool lacks for the MW its country will hold when
they arrive; the order is asked of the rules (``procure`` by the operator for its country, the
order's size stated), cut to its access share, and asked again on arrival (:func:`arriving`).

The first-month note asks the first month's order, as placed (mkt65): it asked the pool's whole
first fleet as one order, so under a rule with a quantity allowance (the AI Diffusion rule's
26.9M TPP per order for Tier 2) it said the operator could buy on no day of June 2025, while
the pool's first orders, each under the allowance, were lawful and grew it; and an order refused
while a small first fleet fitted the allowance was not noted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from straits.market.rulebook import Question

if TYPE_CHECKING:
    from straits.market.simulation import Setup

#: an order the rules are asked about states its size: 0 reads as "not given"
SMALLEST_ORDER = 1


def order_share(s: Setup, p: int, quantity: int, month: str) -> float:
    """The share of pool ``p``'s operator's order of ``quantity`` chips the rules allow."""
    pool = s.m.supply.pools[p]
    question = Question(
        s.operators[p], "procure", pool.country, pool.operator_hq, pool.chip, None, quantity
    )
    return float(s.rulebook.verdict(question, month).share)


def order_size(want: float) -> int:
    """The size an order of ``want`` chips is asked with: at least one chip."""
    return max(SMALLEST_ORDER, round(want))


def place(
    s: Setup,
    step: int,
    month: str,
    targets: np.ndarray,
    pool_chips: np.ndarray,
    arrivals: np.ndarray,
    order: np.ndarray,
    lead: int,
) -> dict[int, tuple[int, float]]:
    """Place this month's operators' orders (added to ``arrivals[step + lead]``, their size and
    access share to ``order[step + lead]``); returns each placed order's (size, share) by pool.
    A pool whose target is met, or whose order would arrive after the horizon, orders nothing."""
    placed: dict[int, tuple[int, float]] = {}
    horizon = arrivals.shape[0]
    for p in range(len(s.m.supply.pools)):
        pipeline = arrivals[step + 1 :].sum(axis=0)[p]
        want = max(0.0, float(targets[p] - pool_chips[p] - pipeline))
        if want > 0 and step + lead < horizon:
            size = order_size(want)
            allowed = order_share(s, p, size, month)
            arrivals[step + lead, p] += want * allowed
            order[step + lead, p] = (size, allowed)
            placed[p] = (size, allowed)
    return placed


def arriving(s: Setup, units: np.ndarray, order: np.ndarray, month: str) -> np.ndarray:
    """The operators' chips arriving this month, each pool's order cut to what the rules still
    allow on arrival (the access share this month over the order month's, at most 1): an order
    a later rule forbids is cancelled, as home firms' orders are (:func:`purchases.deliver`)."""
    out = units.copy()
    for p in range(len(s.m.supply.pools)):
        quantity, before = float(order[p, 0]), float(order[p, 1])
        if out[p] <= 0 or before <= 0:
            continue
        out[p] *= min(1.0, order_share(s, p, int(quantity), month) / before)
    return out


def start_fleet_notes(
    s: Setup, chips: np.ndarray, placed: dict[int, tuple[int, float]], first: str
) -> list[str]:
    """A note for each pool that starts with chips while the rules refuse, on every day of the
    first month, its operator's order of that month: the order the market placed (``placed``,
    from :func:`place`: its size, its share), or, where it placed none (the pool's target is
    met), the smallest order it places. A pool starts at the chips its country's MW hold
    (derived, not a stated fleet): an H100 pool in Russia in 2023 rented to home firms from the
    first month, while the embargo of 2022-02-24 (us-ear-embargo-russia) bars its operator
    buying any, said nothing (mkt64). The figures are kept (the fleet may predate the rule)."""
    notes = []
    for p, pool in enumerate(s.m.supply.pools):
        size = round(float(chips[p]))
        if size < 1:
            continue
        quantity, share = placed.get(p) or (
            SMALLEST_ORDER,
            order_share(s, p, SMALLEST_ORDER, first),
        )
        if share <= 0:
            notes.append(
                f"supply.pools[{pool.id}] starts with {size:,} {pool.chip} in {pool.country} "
                f"(its share of the country's MW), but the rules refuse its "
                f"{pool.operator_hq}-headquartered operator's order of {first} "
                f"({quantity:,} {pool.chip}"
                f"{'' if p in placed else ', the smallest: it orders none that month'}) on "
                "every day: the first fleet is taken as installed before; the pool grows "
                "only by orders the rules allow"
            )
    return notes
