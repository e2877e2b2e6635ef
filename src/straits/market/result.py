"""What a simulation returns: one record per month, the rule events, a summary, the JSON.

The JSON contract (docs/contracts.md, DESIGN.md) is kept: each month has ``month``,
``offshore_chip_hours`` {COUNTRY: n}, ``home_chip_hours``, ``domestic_accelerator_chip_hours``,
``price_usd_per_chip_hour`` {COUNTRY: p} and ``utilisation`` {COUNTRY: u}; the other keys extend
it. "Offshore", "home" and "domestic" describe the home-headquartered firms' compute.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from straits.market.params import Market
from straits.rules.listing import RuleEvent

#: what the outputs say about units and scope (printed in JSON, CSV headers' docs, the report)
UNITS = {
    "chip_hours": "chip-hours of the chip actually used (H100, H200, H20, Ascend... as they are)",
    "h100e_hours": "work in H100-equivalent hours: H100-SXM chip-hours Straits' estimator says "
    "the same work needs",
    "mw": "MW at the meter (chip TDP x server overhead x PUE)",
    "price_usd_per_chip_hour": "rental price in the country, chip-hours weighted over its pools "
    "(null in a month it has no capacity)",
    "utilisation": "share of the country's rentable chip-hours used (all tenants)",
}


@dataclass(frozen=True)
class MonthRecord:
    month: str
    offshore_chip_hours: dict[str, float]
    home_chip_hours: float
    domestic_accelerator_chip_hours: float
    price_usd_per_chip_hour: dict[str, float | None]
    """``None`` for a country with no capacity that month: nothing is offered at any price"""
    utilisation: dict[str, float]
    offshore_demand_chip_hours: dict[str, float]
    """chip-hours home firms first asked of each country's pools (before rationing); a country
    can serve more (``offshore_chip_hours``) when another's full pools send it what they turned
    away"""
    offshore_mw: dict[str, float]
    offshore_h100e_hours: dict[str, float]
    foreign_chip_hours: dict[str, float]
    capacity_chip_hours: dict[str, float]
    capacity_mw: dict[str, float]
    demand_h100e_hours: float
    home_h100e_hours: float
    domestic_h100e_hours: float
    offshore_total_h100e_hours: float
    unmet_h100e_hours: float
    foreign_demand_h100e_hours: float
    foreign_unmet_h100e_hours: float
    residency_home_chip_hours: float
    """home firms' chip-hours at home (on imported chips and on domestic accelerators alike) on
    work the data-residency rules keep from going abroad: a part of ``home_chip_hours +
    domestic_accelerator_chip_hours`` (:func:`residency_share`)"""
    chips_ordered: dict[str, float]
    """units home firms ordered this month (they arrive a lead later)"""
    chips_delivered: dict[str, float]
    """units that arrived this month: ordered a lead earlier, less what was cancelled"""
    chips_cancelled: dict[str, float]
    """units due this month that a rule in force on arrival (and not when they were ordered)
    forbids: cancelled, never delivered"""

    @property
    def offshore_total(self) -> float:
        return sum(self.offshore_chip_hours.values())

    @property
    def own_chip_hours(self) -> float:
        """Home firms' chip-hours at home: imported chips and domestic accelerators."""
        return self.home_chip_hours + self.domestic_accelerator_chip_hours

    def shares(self) -> dict[str, float]:
        d = self.demand_h100e_hours
        if d <= 0:
            return {"offshore": 0.0, "home": 0.0, "domestic": 0.0, "unmet": 0.0}
        return {
            "offshore": self.offshore_total_h100e_hours / d,
            "home": self.home_h100e_hours / d,
            "domestic": self.domestic_h100e_hours / d,
            "unmet": self.unmet_h100e_hours / d,
        }

    def to_json(self) -> dict[str, Any]:
        r = _round
        return {
            "month": self.month,
            "offshore_chip_hours": {c: r(v) for c, v in self.offshore_chip_hours.items()},
            "home_chip_hours": r(self.home_chip_hours),
            "domestic_accelerator_chip_hours": r(self.domestic_accelerator_chip_hours),
            "price_usd_per_chip_hour": {
                c: None if v is None else round(v, 4)
                for c, v in self.price_usd_per_chip_hour.items()
            },
            "utilisation": {c: round(v, 4) for c, v in self.utilisation.items()},
            "offshore_demand_chip_hours": {
                c: r(v) for c, v in self.offshore_demand_chip_hours.items()
            },
            "offshore_mw": {c: round(v, 3) for c, v in self.offshore_mw.items()},
            "offshore_h100e_hours": {c: r(v) for c, v in self.offshore_h100e_hours.items()},
            "foreign_chip_hours": {c: r(v) for c, v in self.foreign_chip_hours.items()},
            "capacity_chip_hours": {c: r(v) for c, v in self.capacity_chip_hours.items()},
            "capacity_mw": {c: round(v, 3) for c, v in self.capacity_mw.items()},
            "demand_h100e_hours": r(self.demand_h100e_hours),
            "served_h100e_hours": {
                "home": r(self.home_h100e_hours),
                "domestic": r(self.domestic_h100e_hours),
                "offshore": r(self.offshore_total_h100e_hours),
            },
            "unmet_h100e_hours": r(self.unmet_h100e_hours),
            "share": {k: round(v, 4) for k, v in self.shares().items()},
            "foreign_demand_h100e_hours": r(self.foreign_demand_h100e_hours),
            "foreign_unmet_h100e_hours": r(self.foreign_unmet_h100e_hours),
            "residency_home_chip_hours": r(self.residency_home_chip_hours),
            "chips_ordered": {c: r(v) for c, v in self.chips_ordered.items()},
            "chips_delivered": {c: r(v) for c, v in self.chips_delivered.items()},
            "chips_cancelled": {c: r(v) for c, v in self.chips_cancelled.items()},
        }


def residency_share(months: Iterable[MonthRecord]) -> float:
    """Share of home firms' chip-hours at home (imported chips and domestic accelerators) kept
    there by data residency over ``months``: ``residency_home_chip_hours`` over ``home_chip_hours
    + domestic_accelerator_chip_hours`` (at most 1); 0 when they used none. The one definition
    the sweep metric ``residency_share`` and the docs' figure use."""
    recs = list(months)
    own = sum(x.own_chip_hours for x in recs)
    return sum(x.residency_home_chip_hours for x in recs) / own if own > 0 else 0.0


def _round(v: float) -> float:
    """Chip-hours to a whole number (they are estimates; decimals are noise)."""
    return float(round(v))


@dataclass(frozen=True)
class Usage:
    """What one firm type did with one option in one month (for tests and --trace)."""

    month: str
    firm_type: str
    kind: str
    option: str
    """'own' (home chips), 'rent' (a pool)"""
    country: str
    operator_hq: str
    chip: str
    chip_hours: float
    access: float
    """the access share the rules gave that month"""


@dataclass
class MarketResult:
    market: Market
    regime: str
    seed: int
    firms: dict[str, int]
    months: list[MonthRecord]
    events: list[RuleEvent]
    rules_asked: int
    usage: list[Usage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """what the reader should know about the run (a model that fits no cluster of a chip)"""

    @property
    def countries(self) -> list[str]:
        return list(self.market.supply.countries)

    def notes_beside(self, other: MarketResult | None) -> list[str]:
        """The notes of ``other`` (the regime compared with) that this run lacks: the JSON's
        ``difference.notes``, the table's ``note (REGIME):`` lines and the HTML page's Notes
        show them, as they show its figures (mkt65: a pool noted under the compared regime
        only was said nowhere)."""
        return [] if other is None else [n for n in other.notes if n not in self.notes]

    def record(self, month: str) -> MonthRecord:
        for r in self.months:
            if r.month == month:
                return r
        raise KeyError(month)

    def summary(self) -> dict[str, Any]:
        years: dict[str, dict[str, float]] = {}
        for r in self.months:
            y = years.setdefault(
                r.month[:4],
                {
                    "offshore_chip_hours": 0.0,
                    "home_chip_hours": 0.0,
                    "domestic_accelerator_chip_hours": 0.0,
                    "unmet_h100e_hours": 0.0,
                    "demand_h100e_hours": 0.0,
                },
            )
            y["offshore_chip_hours"] += r.offshore_total
            y["home_chip_hours"] += r.home_chip_hours
            y["domestic_accelerator_chip_hours"] += r.domestic_accelerator_chip_hours
            y["unmet_h100e_hours"] += r.unmet_h100e_hours
            y["demand_h100e_hours"] += r.demand_h100e_hours
        peak = max(self.months, key=lambda r: sum(r.offshore_mw.values()))
        peak_mw = round(sum(peak.offshore_mw.values()), 3)
        last = self.months[-1]
        return {
            "by_year": {y: {k: _round(v) for k, v in d.items()} for y, d in years.items()},
            # null when home firms rented nothing abroad (no month is the peak of nothing)
            "peak_offshore_mw": {"month": peak.month, "mw": peak_mw} if peak_mw > 0 else None,
            "final_share": {k: round(v, 4) for k, v in last.shares().items()},
        }

    def to_json(self) -> dict[str, Any]:
        from straits.market.loading import range_params

        m = self.market
        raw = m.model_dump(by_alias=True, mode="json")
        ranges = range_params(raw)
        return {
            "market": m.name,
            "regime": self.regime,
            "seed": self.seed,
            "home": m.home,
            "start": m.start,
            "end": m.end,
            "firms": self.firms,
            "units": UNITS,
            "months": [r.to_json() for r in self.months],
            "events": [e.to_json() for e in self.events],
            "summary": self.summary(),
            "midpoints_used": [p.path for p in ranges],
            "unpublished": [p.path for p in ranges if p.unpublished],
            **({"notes": list(self.notes)} if self.notes else {}),
        }
