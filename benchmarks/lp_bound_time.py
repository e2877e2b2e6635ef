"""The capacity-aware LP bound alone: where its time goes, on the optimizer benchmark's portfolios.

For each seed, the generated portfolio of ``benchmarks/optimizer_scale.py`` (1,000 workloads over
200 sites by default): the greedy plan, each workload alone, then ``lp_bound`` as the command
calls it (at the workloads' own count when the greedy plan leaves more), once per GLOP setting
given, with and without the dominated columns (``--no-prune``; ``--no-same-pool``: without those
only another choice on the same competing pool dominates). Prints the LP's columns and rows, the
seconds spent building it (capacity rows apart) and in GLOP, and the bound (``repr``: every
digit). Like the command (``make_plan``), it runs within ``fewer_collections``
(``--default-gc``: at Python's default collector thresholds, as the figures before the
thirteenth pass were measured).

Run: python benchmarks/lp_bound_time.py [--seeds 20001 20003] [--params "use_dual_simplex: true"
     ""] [--no-prune] [--no-same-pool] [--default-gc] [--repeat 1]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from typing import Any

import straits.plan.lp_bound as lpb
from straits.loading import parse_scenario
from straits.plan.alone import alone_bound
from straits.plan.candidates import Candidates
from straits.plan.collector import fewer_collections
from straits.plan.greedy import GreedyPlanner
from straits.plan.objectives import objective
from straits.plan.portfolio import Portfolio
from straits.rules import ruleset
from straits.simulate.generate import generate_dict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[20001, 20003])
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--params", nargs="+", default=[lpb.PARAMS], help="GLOP settings to try")
    ap.add_argument("--no-prune", action="store_true", help="keep every column")
    ap.add_argument("--no-same-pool", action="store_true", help="no same-pool dominance")
    ap.add_argument("--repeat", type=int, default=1, help="LP runs per setting")
    ap.add_argument("--default-gc", action="store_true", help="Python's collector thresholds")
    args = ap.parse_args()
    lpb.PRUNE = not args.no_prune
    if hasattr(lpb, "PRUNE_SAME_POOL"):  # absent before the thirteenth pass
        lpb.PRUNE_SAME_POOL = not args.no_same_pool  # type: ignore[attr-defined]
    with nullcontext() if args.default_gc else fewer_collections():
        _run(args)


def _run(args: argparse.Namespace) -> None:
    spent = {"solve": 0.0, "rows": 0.0}
    solve, rows = lpb._solve, lpb.capacity_rows  # type: ignore[attr-defined]

    def timed_solve(lp: Any, stop_at: float, clock: Any) -> int:
        print(f"  LP: {lp.NumVariables():,} columns, {lp.NumConstraints():,} rows", flush=True)
        t = time.perf_counter()
        status = solve(lp, stop_at, clock)
        spent["solve"] += time.perf_counter() - t
        return status

    def timed_rows(lp: Any, inf: float, items: Any, steps: Any, ends: Any = None) -> None:
        t = time.perf_counter()
        rows(lp, inf, items, steps, ends)
        spent["rows"] += time.perf_counter() - t

    lpb._solve, lpb.capacity_rows = timed_solve, timed_rows  # type: ignore[attr-defined]
    goal = objective("cost")
    for seed in args.seeds:
        sc = parse_scenario(generate_dict(workloads=args.workloads, sites=args.sites, seed=seed))
        cand = Candidates(sc, ruleset(), regime=sc.regime, date=sc.date)
        greedy = GreedyPlanner(cand, objective=goal)
        plan = greedy.run()
        pf = Portfolio(cand, goal, greedy.state)
        alone = alone_bound(pf, goal)
        assert alone is not None
        print(f"{seed}: greedy leaves {len(plan.unplaced)}, alone {alone.bound.unplaced}")
        for params in args.params * args.repeat:
            lpb.PARAMS = params
            spent.update(solve=0.0, rows=0.0)
            t = time.perf_counter()
            bound = lpb.lp_bound(
                pf,
                alone,
                plan_unplaced=len(plan.unplaced),
                own_count=alone.bound.unplaced < len(plan.unplaced),
            )
            total = time.perf_counter() - t
            print(
                f"  GLOP {params!r}: {total:.2f} s (build {total - spent['solve']:.2f}, of which "
                f"capacity rows {spent['rows']:.2f}; solve {spent['solve']:.2f}) -> {bound}",
                flush=True,
            )


if __name__ == "__main__":
    main()
