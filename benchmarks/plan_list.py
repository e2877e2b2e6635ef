"""What proving the plan list costs: one page of ``GET /v1/plans`` (``server.listing``) with
every recorded plan's entry proven and its row compared, against the same page read unproven
(the proof and the comparison switched off in this process) as the baseline.

N plans of the example scenario are recorded in a fresh SQLite database, then pages of 100 and
of 1,000 are listed 5 times each; the best time of each is printed with the ratio.
Run: python benchmarks/plan_list.py [N]   (default 1000)
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import straits.server.listing as listing
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.rules import ruleset
from straits.server.listing import PlanFilter, list_plans
from straits.store import Store
from straits.store.records import record_plan

ROOT = Path(__file__).resolve().parents[1]


def best(fn: Callable[[], Any], n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory(prefix="straits-bench-") as tmp:
        store = Store(f"sqlite:///{tmp}/plans.db")
        rules = ruleset()
        sc = load_scenario(ROOT / "examples" / "offshore-2025.yaml")
        plan = make_plan(sc, rules=rules, solver="greedy")
        t = time.perf_counter()
        for _ in range(n):
            record_plan(store, sc, plan, rules, {"solver": "greedy"}, tenant="t", actor="bench")
        print(f"{n:,} recorded plans in {time.perf_counter() - t:.1f} s")
        page = PlanFilter(tenant="t")
        for limit in (100, min(1000, n)):
            proven = best(lambda limit=limit: list_plans(store, page, limit, None))
            prove, compare = listing.prove_entries, listing.plan_row_problem
            listing.prove_entries = lambda *a, **k: None  # type: ignore[assignment]
            listing.plan_row_problem = lambda *a, **k: None  # type: ignore[assignment]
            try:
                bare = best(lambda limit=limit: list_plans(store, page, limit, None))
            finally:
                listing.prove_entries, listing.plan_row_problem = prove, compare
            print(
                f"page of {limit:,}: proven {proven * 1e3:.0f} ms, unproven (baseline) "
                f"{bare * 1e3:.0f} ms, ratio {proven / bare:.1f}x"
            )
        store.close()


if __name__ == "__main__":
    main()
