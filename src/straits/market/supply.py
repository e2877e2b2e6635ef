"""The supply side: data-centre MW by country, chips per MW, rental pools, prices.

* Series are linear between their dated points and flat outside them.
* Chips per MW are derived: 1 MW / (the chip's TDP x server overhead x PUE), where the server
  overhead is the reference server's power over its GPUs' TDP (DGX H100: 10.2 kW / 8 x 700 W).
* A pool's target chips = country MW x AI rental share x the pool's normalised share x chips/MW.
* The rental price of a pool = the index price of the base chip x the chip's price relative to
  it (from the catalog's rental figures) x a utilisation markup
  ``clip(exp(elasticity x (u - u_ref)), floor, cap)`` of last month's utilisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from straits.catalog import get_chip
from straits.market.loading import MarketError
from straits.market.params import Market, Point, month_index

HOURS_PER_DAY = 24.0


def series_at(points: Sequence[Point], month: int) -> float:
    """The series' value at month index ``month``."""
    xs, ys = _xy(tuple(points))
    if month <= xs[0]:
        return ys[0]
    if month >= xs[-1]:
        return ys[-1]
    return float(np.interp(month, xs, ys))


@lru_cache(maxsize=4096)
def _xy(points: tuple[Point, ...]) -> tuple[list[int], list[float]]:
    pts = sorted(points, key=lambda p: month_index(p.date))
    return [month_index(p.date) for p in pts], [p.mid for p in pts]


def server_overhead(m: Market) -> float:
    ref = m.supply.reference_server
    tdp = get_chip(ref.chip).tdp_watts
    if tdp is None:
        raise MarketError(
            f"reference server chip {ref.chip} has no TDP in the catalog",
            path="supply.reference_server.chip",
        )
    return ref.kw.mid * 1000.0 / (ref.gpus * tdp)


def mw_per_chip(m: Market, chip_id: str) -> float:
    """MW a chip of ``chip_id`` draws at the meter (TDP x server overhead x PUE)."""
    tdp = get_chip(chip_id).tdp_watts
    if tdp is None:
        raise MarketError(
            f"{chip_id} has no TDP in the catalog: its MW cannot be derived", path="supply.pools"
        )
    return tdp * server_overhead(m) * m.supply.pue.mid / 1e6


def pool_shares(m: Market) -> list[float]:
    """Each pool's share of its country's AI rental MW (the weights normalised per country)."""
    totals: dict[str, float] = {}
    for p in m.supply.pools:
        totals[p.country] = totals.get(p.country, 0.0) + p.share.mid
    return [
        p.share.mid / totals[p.country] if totals[p.country] > 0 else 0.0 for p in m.supply.pools
    ]


def pool_targets(m: Market, month: int) -> np.ndarray:
    """Chips each pool would hold in ``month`` if its operator could buy them."""
    shares = pool_shares(m)
    out = np.zeros(len(m.supply.pools))
    for i, p in enumerate(m.supply.pools):
        c = m.supply.countries[p.country]
        mw = series_at(c.mw, month) * c.ai_rental_share.mid * shares[i]
        out[i] = mw / mw_per_chip(m, p.chip)
    return out


def relative_price(m: Market, chip_id: str, fallback: float) -> float:
    """A chip's rental price relative to the base chip's, from the catalog's rental figures
    (``fallback``, its efficiency relative to the base chip, when the catalog has none)."""
    base = get_chip(m.prices.base_chip).rent_usd_per_hour
    own = get_chip(chip_id).rent_usd_per_hour
    if base is None or own is None:
        return fallback
    return own.mid / base.mid


def markup(m: Market, utilisation: np.ndarray) -> np.ndarray:
    p = m.prices
    top = max(p.cap.mid, p.floor.mid)
    # the exponent is cut at the cap's logarithm first: the result is the same, and a
    # utilisation far above the reference (a market with almost no capacity) no longer
    # overflows exp() with a RuntimeWarning on stderr
    x = np.minimum(p.elasticity.mid * (utilisation - p.reference_utilisation.mid), math.log(top))
    return np.clip(np.exp(x), p.floor.mid, top)


def month_hours(month: int) -> float:
    import calendar

    y, mo = divmod(month, 12)
    return calendar.monthrange(y, mo + 1)[1] * HOURS_PER_DAY


def lead(param_mid: float) -> int:
    """A lead time in whole months (at least one)."""
    return max(1, math.ceil(param_mid - 1e-9))
