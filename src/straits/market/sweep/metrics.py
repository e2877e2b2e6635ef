"""The scalar outcomes of one simulation that a sweep records and ranks parameters by.

* ``offshore_demand_after_h20``: mean monthly offshore rental demand of home firms (chip-hours
  asked, all countries) in the twelve months from 2025-05;
* ``offshore_rise_after_h20``: that mean over the mean of the twelve months before (2024-05 to
  2025-04);
* ``offshore_chip_hours_total``: chip-hours home firms rented abroad over the whole period;
* ``offshore_mw_final``: MW they rent abroad in the last month;
* ``offshore_share_final``, ``domestic_share_final``, ``unmet_share_final``: shares of home
  demand in the last month;
* ``price_max``: highest monthly rental price (any country);
* ``residency_share``: share of home firms' chip-hours at home (imported chips and domestic
  accelerators) kept there by data residency (:func:`~straits.market.result.residency_share`).

A metric whose months fall outside the simulated period is NaN; a sweep refuses such a metric
before it runs (:func:`window_outside`).
"""

from __future__ import annotations

import math

from straits.market.params import month_index, month_name
from straits.market.result import MarketResult, residency_share

METRICS = (
    "offshore_demand_after_h20",
    "offshore_rise_after_h20",
    "offshore_chip_hours_total",
    "offshore_mw_final",
    "offshore_share_final",
    "domestic_share_final",
    "unmet_share_final",
    "price_max",
    "residency_share",
)
H20_LETTER = 2025 * 12 + 3  # month index of 2025-04
#: the months (first, last, as month indices) a metric reads; the others read the whole period
WINDOWS: dict[str, tuple[int, int]] = {
    "offshore_demand_after_h20": (H20_LETTER + 1, H20_LETTER + 12),
    "offshore_rise_after_h20": (H20_LETTER - 11, H20_LETTER + 12),
}


def window_outside(metric: str, start: str, end: str) -> tuple[str, str] | None:
    """The months ``metric`` reads, as ``YYYY-MM``, when a market of ``start`` to ``end`` does
    not simulate all of them (every run's metric would be NaN); None when it does."""
    window = WINDOWS.get(metric)
    if window is None or (month_index(start) <= window[0] and window[1] <= month_index(end)):
        return None
    return month_name(window[0]), month_name(window[1])


def _mean_demand(r: MarketResult, first: int, n: int) -> float:
    vals = []
    for i in range(first, first + n):
        try:
            rec = r.record(month_name(i))
        except KeyError:
            return math.nan
        vals.append(sum(rec.offshore_demand_chip_hours.values()))
    return sum(vals) / len(vals)


def _prices(r: MarketResult) -> list[float]:
    """Every price of the run (a country with no capacity in a month has none)."""
    return [p for x in r.months for p in x.price_usd_per_chip_hour.values() if p is not None]


def metrics(r: MarketResult) -> dict[str, float]:
    after = _mean_demand(r, H20_LETTER + 1, 12)
    before = _mean_demand(r, H20_LETTER - 11, 12)
    last = r.months[-1]
    shares = last.shares()
    return {
        "offshore_demand_after_h20": after,
        "offshore_rise_after_h20": after / before if before > 0 else math.nan,
        "offshore_chip_hours_total": sum(x.offshore_total for x in r.months),
        "offshore_mw_final": sum(last.offshore_mw.values()),
        "offshore_share_final": shares["offshore"],
        "domestic_share_final": shares["domestic"],
        "unmet_share_final": shares["unmet"],
        "price_max": max(prices) if (prices := _prices(r)) else math.nan,
        "residency_share": residency_share(r.months),
    }
