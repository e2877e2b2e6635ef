"""The greedy plan alone at 1,000 x 200: its digest and its CPU seconds.

For each seed, the generated portfolio of ``benchmarks/optimizer_scale.py`` (1,000 workloads
over 200 sites by default) is planned with ``solver="greedy"`` and no time limit, in this
process, and the script prints the SHA-256 of the plan's JSON without ``timings`` (a change
that only makes the greedy plan faster must leave it as it was) and the CPU seconds
(``time.process_time``) of ``make_plan`` alone: on a shared machine wall time is noise (the
plan's own wall-clock split, estimates and rule checks, is printed beside it).
With ``--profile FILE`` the plan of the first seed runs under cProfile, its stats written there.

Run: python benchmarks/greedy_time.py [--workloads N] [--sites M] [--first-seed S]
     [--seeds K] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import time

from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.rules import ruleset
from straits.simulate.generate import generate_dict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--first-seed", type=int, default=20001)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--profile", default=None, help="write cProfile stats of the first seed")
    args = ap.parse_args()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        sc = parse_scenario(generate_dict(workloads=args.workloads, sites=args.sites, seed=seed))
        rules = ruleset()
        prof = cProfile.Profile() if args.profile and seed == args.first_seed else None
        t = time.process_time()
        if prof is not None:
            prof.enable()
        plan = make_plan(sc, rules=rules, solver="greedy", time_limit=None)
        if prof is not None:
            prof.disable()
            prof.dump_stats(args.profile)
        cpu = time.process_time() - t
        doc = plan.to_json(details=True)
        within = (doc.pop("timings", None) or {}).get("within", {})
        split = ", ".join(f"{k} {v:.1f}" for k, v in within.items())
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
        print(f"seed {seed}: digest {digest[:16]} cpu {cpu:.1f} s (wall: {split})", flush=True)


if __name__ == "__main__":
    main()
