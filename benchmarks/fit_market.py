"""Fit the market's one fitted parameter, `demand.initial_utilisation`, and judge it.

Fitted on the 2024 H20 deliveries only (> 1 million, SemiAnalysis via the FT): the smallest
initial utilisation at which the simulated 2024 H20 deliveries (chips arrived in 2024) reach
min(1,000,000, the file's 2024 H20 supply), with that supply at the low, middle and high end of
its range (`straits.market.calibration`). The range shipped in catalog/market.yaml runs from
the low-supply fit to as far above the midpoint fit, so its midpoint is the midpoint fit. Then
judged, at the shipped midpoint, on figures it was not fitted to: H20 deliveries in Q1 2025 and
the Ascend output of 2025. Every other parameter is at its midpoint (shipped seed and firm
count).

Run: python benchmarks/fit_market.py [--check]
  --check: exit 1 when the range in catalog/market.yaml is not what this code fits now
  (within 0.01).
"""

from __future__ import annotations

import math
import sys
import time

from straits.market.calibration import FITTED, Fit, fit_one, judge
from straits.market.loading import shipped_raw, validate, with_values
from straits.rules.engine import ruleset

CHECK_TOLERANCE = 0.01


def shipped_range(low: Fit, mid: Fit) -> tuple[float, float]:
    """The range written to market.yaml: the low-supply fit to as far above the midpoint fit,
    in two decimals, rounded outwards (so the shipped midpoint is never below the fit)."""
    lo = math.floor(low.value * 100.0) / 100.0
    return lo, math.ceil((2.0 * mid.value - lo) * 100.0) / 100.0


def main(argv: list[str]) -> int:
    check = "--check" in argv
    rules = ruleset()
    raw = shipped_raw()
    node = raw["demand"]["initial_utilisation"]
    t0 = time.perf_counter()
    fits = {end: fit_one(raw, end, rules=rules) for end in ("low", "mid", "high")}
    seconds = time.perf_counter() - t0
    sims = sum(f.simulations for f in fits.values())
    print(f"== fit of {FITTED} on the 2024 H20 deliveries ({sims} simulations, {seconds:.1f} s)")
    print(
        f"  {'H20 supply 2024':<18} {'supply':>10} {'target':>10} {'U0':>7} {'delivered':>10} "
        f"{'at U0-0.002':>12}"
    )
    for end, f in fits.items():
        label = end.replace("mid", "middle") + " of range"
        print(
            f"  {label:<18} {f.supply_units:10,.0f} {f.target:10,.0f} {f.value:7.3f} "
            f"{f.bought:10,.0f} {f.below:12,.0f}"
        )
    low, high = shipped_range(fits["low"], fits["mid"])
    print(
        f"\n  range to ship: {low:.2f} - {high:.2f} (midpoint {(low + high) / 2:.3f}); "
        f"market.yaml has {node.get('low')} - {node.get('high')}"
    )

    m = validate(with_values(raw, {FITTED: (low + high) / 2}), "market")
    print(f"\n== judged at U0 = {(low + high) / 2:.3f} (not fitted on these: role 'judge')")
    print(
        f"  {'figure':<18} {'role':<6} {'reported':>20} {'model':>10} {'file supply':>12}  source"
    )
    for f, units, offered in judge(m, rules=rules):
        print(
            f"  {f.id:<18} {f.role:<6} {f.bound + ' ' + format(f.units, ',.0f'):>20} "
            f"{units:10,.0f} {offered:12,.0f}  {f.source[:60]}"
        )
    if check:
        got = (float(node.get("low", "nan")), float(node.get("high", "nan")))
        if any(abs(a - b) > CHECK_TOLERANCE for a, b in zip(got, (low, high), strict=True)):
            print(
                f"\nmarket.yaml's range {got} is not the fit ({low}, {high}): refit",
                file=sys.stderr,
            )
            return 1
        print("\nmarket.yaml's range is the fit")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
