"""The market's one fitted parameter, ``demand.initial_utilisation``, and the figures it is
fitted on and judged on.

**Fitted on** one published figure: Chinese firms bought more than 1 million H20 in 2024
(SemiAnalysis via the FT). The file's H20 supply for 2024 (``home_chips[H20].supply_per_month``,
80,000-130,000 a month from April, 720,000-1,170,000 in all) brackets that figure, so the
simulated 2024 purchases can reach it only as far as that supply allows. Every figure counts
chips *delivered* in its months (the source's "deliver", "delivered", "made"), as the file's
supply is dated by the month chips ship: an order counts in the month it arrives, a lead after
it was placed, and an order a later rule cancelled on arrival not at all. The fit is the
smallest initial utilisation ``U0`` at which the simulated 2024 H20 deliveries reach
``min(reported, supply of 2024)``: firms want every H20 the market can sell them, up to the
reported million. Purchases grow with ``U0`` (more demand, a larger foreseen shortfall), so a
bisection finds it; a larger ``U0`` is not excluded by this figure, but (judged below) it buys
still more Ascend chips than were made. It is fitted three times, with the 2024 H20 supply at
the low, middle and high end of its range. The range the market file ships
(``benchmarks/fit_market.py``, ``shipped_range``) runs from the low-supply fit (rounded down)
to as far above the midpoint fit (rounded up), so the shipped midpoint is the midpoint fit;
the high-supply fit is printed, not shipped (at that supply the target is the reported
million, not the supply).

**Judged on** figures it was not fitted to (:data:`FIGURES` with ``role="judge"``): H20
deliveries in the first quarter of 2025 and the Ascend output of 2025. Every other parameter is
at its midpoint; the fit uses the market's seed, firm count and regime (2024 is the same market
under every regime).

``benchmarks/fit_market.py`` runs the fit and prints the judged figures; ``--check`` compares the
fit with the range in ``catalog/market.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from straits.market.loading import validate, with_values
from straits.market.params import Confidence, Market, month_index, month_range
from straits.market.result import MarketResult
from straits.market.simulation import simulate
from straits.market.supply import series_at
from straits.rules.engine import RuleSet, ruleset

FITTED = "demand.initial_utilisation"
#: the supply points of the figure the parameter is fitted on (set to their low / high ends)
FIT_SUPPLY = (
    "home_chips[H20].supply_per_month[2024-04]",
    "home_chips[H20].supply_per_month[2024-12]",
)
#: relative shortfall below the target still counted as reaching it (the purchases approach the
#: supply cap smoothly: the logit of the buy decision and pro-rata rationing)
REACHED = 1e-3
#: the bisection stops when the bracket is this narrow (U0 is shipped with two decimals)
TOLERANCE = 0.002
BRACKET = (0.1, 6.0)

Bound = Literal["at least", "about", "at most"]
SupplyEnd = Literal["low", "mid", "high"]


@dataclass(frozen=True)
class Figure:
    """A published count of chips delivered or made, compared with the simulated deliveries."""

    id: str
    what: str
    units: float
    bound: Bound
    chips: tuple[str, ...]
    first: str
    last: str
    """months of the deliveries counted (``YYYY-MM``)"""
    role: Literal["fit", "judge"]
    source: str
    confidence: Confidence


FIGURES: tuple[Figure, ...] = (
    Figure(
        "h20-2024",
        "H20 bought by Chinese firms in 2024",
        1_000_000,
        "at least",
        ("H20",),
        "2024-01",
        "2024-12",
        "fit",
        "SemiAnalysis via Financial Times (2024): NVIDIA on track to deliver more than 1 "
        "million H20 to China in 2024, at ~$12,000 each",
        "V2",
    ),
    Figure(
        "h20-2025q1",
        "H20 delivered in Q1 2025, before the licence requirement",
        1_000_000,
        "about",
        ("H20",),
        "2025-01",
        "2025-03",
        "judge",
        "Nikkei / Asia Times (2025): H20 orders of $12-16B in Q1 2025, ~1M units reportedly "
        "delivered before the 2025-04-09 licence requirement",
        "V2",
    ),
    Figure(
        "ascend-2025-bis",
        "Ascend chips made in 2025 (910B and 910C)",
        200_000,
        "at most",
        ("Ascend-910B", "Ascend-910C"),
        "2025-01",
        "2025-12",
        "judge",
        "BIS Under Secretary Kessler, House testimony (2025-06): Huawei can make at most "
        "~200,000 AI chips in 2025",
        "V2",
    ),
    Figure(
        "ascend-910c-2025",
        "Ascend 910C made in 2025",
        300_000,
        "about",
        ("Ascend-910C",),
        "2025-01",
        "2025-12",
        "judge",
        "Bloomberg (2025-09-30): ~600,000 910C planned for 2026, 'double this year's' "
        "(so ~300,000 in 2025)",
        "V2",
    ),
)


def figure(figure_id: str) -> Figure:
    return next(f for f in FIGURES if f.id == figure_id)


def bought(result: MarketResult, f: Figure) -> float:
    """Units of ``f``'s chips delivered to the simulation's home firms in ``f``'s months
    (bought and arrived: ordered a lead earlier, less what was cancelled on arrival)."""
    return sum(
        sum(x.chips_delivered.get(c, 0.0) for c in f.chips)
        for x in result.months
        if f.first <= x.month <= f.last
    )


def supplied(m: Market, f: Figure) -> float:
    """Units of ``f``'s chips the market file offers (ships) in ``f``'s months."""
    chips = {h.chip: h for h in m.home_chips}
    return sum(
        series_at(chips[c].supply_per_month, month_index(month))
        for c in f.chips
        if c in chips
        for month in month_range(f.first, f.last)
    )


@dataclass(frozen=True)
class Fit:
    supply: SupplyEnd
    value: float
    """the smallest U0 at which the fitted figure is reached (units delivered)"""
    target: float
    """min(reported units, supply offered in the figure's months)"""
    supply_units: float
    bought: float
    """units delivered in the figure's months at ``value``"""
    below: float
    """units delivered at ``value - TOLERANCE``: short of the target"""
    simulations: int


def _supply_values(raw: Mapping[str, Any], end: SupplyEnd) -> dict[str, float]:
    if end == "mid":
        return {}
    out: dict[str, float] = {}
    m = validate(raw, "market")
    h20 = next(h for h in m.home_chips if h.chip == "H20")
    for path in FIT_SUPPLY:
        date = path.rsplit("[", 1)[1].rstrip("]")
        point = next(p for p in h20.supply_per_month if p.date == date)
        v = point.low if end == "low" else point.high
        out[path] = point.mid if v is None else v
    return out


def fit_one(
    raw: Mapping[str, Any],
    end: SupplyEnd = "mid",
    *,
    firms: int | None = None,
    rules: RuleSet | None = None,
) -> Fit:
    """Fit ``demand.initial_utilisation`` with the 2024 H20 supply at ``end`` of its range."""
    rules = rules or ruleset()
    base = with_values(raw, _supply_values(raw, end))
    fig = figure("h20-2024")
    count = 0

    def run(u0: float) -> float:
        nonlocal count
        count += 1
        m = validate(with_values(base, {FITTED: u0}), "market")
        return bought(simulate(m, firms=firms, rules=rules), fig)

    target = min(fig.units, supplied(validate(base, "market"), fig))
    reached: Callable[[float], bool] = lambda units: units >= target * (1.0 - REACHED)  # noqa: E731
    lo, hi = BRACKET
    if reached(run(lo)) or not reached(run(hi)):
        raise ValueError(
            f"the 2024 H20 deliveries do not cross {target:,.0f} units between U0 = {lo} and {hi}"
        )
    while hi - lo > TOLERANCE:
        mid = (lo + hi) / 2.0
        if reached(run(mid)):
            hi = mid
        else:
            lo = mid
    return Fit(end, hi, target, supplied(validate(base, "market"), fig), run(hi), run(lo), count)


def judge(
    m: Market, *, firms: int | None = None, rules: RuleSet | None = None
) -> list[tuple[Figure, float, float]]:
    """Every figure with the units the simulation of ``m`` delivers and the units the file
    offers."""
    r = simulate(m, firms=firms, rules=rules)
    return [(f, bought(r, f), supplied(m, f)) for f in FIGURES]
