"""The figures docs/market.md quotes for the shipped example ("What the shipped example shows").

The shipped market at its midpoints, seed 1, 300 firms, under the enacted rules and the
`ai-diffusion` counterfactual: home firms' offshore rental demand around the H20 letter, the
H20s the letter cancelled on arrival, at the end of 2027 (chip-hours, MW, prices), domestic
chips and unmet work in 2027 under each regime, the share of home firms' chip-hours at home
(imported and domestic chips) kept there by data residency, and home firms' own chip-hours by
chip from 2025-06 to 2027-12 under each regime (why the total is lower under `ai-diffusion`).
Deterministic (no timing).
Run: python benchmarks/market_example.py
"""

from __future__ import annotations

from collections.abc import Callable

from straits.market import load_market, simulate
from straits.market.result import MarketResult, MonthRecord, residency_share


def _avg_offshore_demand(res: MarketResult, first: str, last: str) -> float:
    months = [m for m in res.months if first <= m.month <= last]
    return sum(sum(m.offshore_demand_chip_hours.values()) for m in months) / len(months)


def _span(res: MarketResult, first: str = "2025-05", last: str = "2025-07") -> list[MonthRecord]:
    return [m for m in res.months if first <= m.month <= last]


def _year(res: MarketResult, year: str, f: Callable[[MonthRecord], float]) -> float:
    return sum(f(m) for m in res.months if m.month.startswith(year))


def main() -> None:
    market = load_market()[0]
    enacted = simulate(market, seed=1, firms=300, regime="enacted", trace=True)
    diffusion = simulate(market, seed=1, firms=300, regime="ai-diffusion", trace=True)
    print("== shipped market, seed 1, 300 firms, midpoints")
    before = _avg_offshore_demand(enacted, "2024-05", "2025-04")
    after = _avg_offshore_demand(enacted, "2025-05", "2026-04")
    print(
        f"offshore demand, home firms, mean a month: 2024-05..2025-04 {before / 1e6:.1f}M, "
        f"2025-05..2026-04 {after / 1e6:.1f}M chip-hours (ratio {after / before:.2f})"
    )
    lost = {m.month: m.chips_cancelled.get("H20", 0.0) for m in enacted.months}
    lost = {k: v for k, v in lost.items() if round(v) > 0}
    if lost:
        print(
            f"H20 ordered before the letter and cancelled on arrival: {sum(lost.values()):,.0f} "
            f"units due {min(lost)} to {max(lost)}; H20 delivered 2025-05..2025-07: "
            f"{sum(m.chips_delivered.get('H20', 0.0) for m in _span(enacted)):,.0f}"
        )
    zero = [
        m.month for m in enacted.months if round(sum(m.offshore_demand_chip_hours.values())) == 0
    ]
    if zero:
        print(f"months with no offshore demand: {len(zero)}, {zero[0]} to {zero[-1]}")
    last = enacted.months[-1]
    prices = ", ".join(f"{c} ${p:.2f}" for c, p in last.price_usd_per_chip_hour.items())
    demand = sum(last.offshore_demand_chip_hours.values())
    print(
        f"{last.month}: offshore demand {demand / 1e6:.0f}M "
        f"chip-hours, {sum(last.offshore_mw.values()):.0f} MW rented abroad, prices {prices}"
    )
    for label, f in (
        ("domestic accelerator chip-hours", lambda m: m.domestic_accelerator_chip_hours),
        ("unmet h100e-hours", lambda m: m.unmet_h100e_hours),
    ):
        print(
            f"2027 {label}: enacted {_year(enacted, '2027', f) / 1e9:.1f} bn, "
            f"ai-diffusion {_year(diffusion, '2027', f) / 1e9:.1f} bn"
        )
    kept = residency_share(m for m in enacted.months if m.month.startswith("2027"))
    print(
        "2027 share of home firms' chip-hours at home (imported and domestic chips) kept home "
        f"by data residency: {kept:.0%}"
    )
    late = max(
        sum(m.offshore_chip_hours.values()) for m in diffusion.months if m.month >= "2025-06"
    )
    print(f"ai-diffusion: offshore chip-hours after 2025-05 at most {late:,.0f}")
    a, b = _owned_by_chip(enacted), _owned_by_chip(diffusion)
    total = {
        name: sum(
            m.home_chip_hours + m.domestic_accelerator_chip_hours
            for m in res.months
            if "2025-06" <= m.month <= "2027-12"
        )
        for name, res in (("enacted", enacted), ("ai-diffusion", diffusion))
    }
    print(
        f"2025-06..2027-12 home + domestic chip-hours: enacted {total['enacted'] / 1e9:.1f} bn, "
        f"ai-diffusion {total['ai-diffusion'] / 1e9:.1f} bn; "
        "owned, by chip (enacted / ai-diffusion):"
    )
    for chip in sorted(a.keys() | b.keys()):
        x, y = a.get(chip, 0.0) / 1e9, max(b.get(chip, 0.0), 0.0) / 1e9
        print(f"  {chip:<16} {x:6.2f} / {y:6.2f} bn")
    both = [c for c in a if b.get(c, 0.0) > 0.0]
    print(
        f"  chips both regimes let them own: enacted {sum(a[c] for c in both) / 1e9:.1f} bn, "
        f"ai-diffusion {sum(b[c] for c in both) / 1e9:.1f} bn"
    )


def _owned_by_chip(res: MarketResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for u in res.usage:
        if u.option == "own" and "2025-06" <= u.month <= "2027-12":
            out[u.chip] = out.get(u.chip, 0.0) + u.chip_hours
    return out


if __name__ == "__main__":
    main()
