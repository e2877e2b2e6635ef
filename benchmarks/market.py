"""Market simulation speed and sweep throughput.

Simulated months per second for 100 and 1,000 firms (the shipped market, 60 months; the first
run of a process pays for the rule questions, later runs reuse them, both shown), and sweep
throughput (runs/s) with 1 process (inline), 2 processes and Ray (2 CPUs), as ratios to one
process. Timings on a shared 2-core machine are indicative.
Run: python benchmarks/market.py [RUNS]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from straits.market import load_market, simulate
from straits.market.sweep.cli import run_sweep
from straits.market.sweep.runner import ray_available


def months_per_second() -> None:
    from straits.market import rulebook
    from straits.rules.engine import RuleSet
    from straits.rules.pack_loader import load_packs

    m = load_market()[0]
    print("== simulation: months per second (60 months, shipped market)")
    for firms in (100, 1000):
        rules = RuleSet(load_packs())  # a cold rule engine (loading the packs is not timed)
        rulebook._SHARED.clear()
        for label in ("first run (rule questions asked)", "later runs (answers reused)"):
            t = time.perf_counter()
            r = simulate(m, firms=firms, rules=rules)
            dt = time.perf_counter() - t
            print(
                f"  {firms:>5} firms, {label:<34} {len(r.months) / dt:8.1f} months/s "
                f"({dt:5.2f} s, {r.rules_asked:,} rule questions)"
            )


def sweep_throughput(runs: int) -> None:
    print(f"\n== sweep: {runs} runs of 60 months, 50 firms each, 3 parameters")
    base = None
    backends = ["inline", "processes"] + (["ray"] if ray_available() else [])
    for backend in backends:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            run_sweep(
                market_file=None,
                runs=runs,
                method="lhs",
                levels=2,
                params=["demand.shift_speed", "demand.growth_per_year", "prices.elasticity"],
                out=Path(d) / "s",
                backend=backend,
                ray_address=None,
                workers=2,
                firms=50,
                regime=None,
                seed=1,
                metric="offshore_demand_after_h20",
                threshold=None,
                fresh=True,
                quiet=True,
            )
            dt = time.perf_counter() - t
        rate = runs / dt
        base = base or rate
        name = {"inline": "1 process", "processes": "2 processes", "ray": "Ray, 2 CPUs"}[backend]
        print(f"  {name:<14} {rate:6.2f} runs/s ({dt:6.1f} s)  x{rate / base:4.2f} vs 1 process")
    if not ray_available():
        print("  Ray: not installed (pip install 'straits[market]')")


if __name__ == "__main__":
    months_per_second()
    sweep_throughput(int(sys.argv[1]) if len(sys.argv) > 1 else 24)
