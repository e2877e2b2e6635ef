"""Replay and coverage cost: what `straits rules replay` and `straits rules test` add.

Replay: a SQLite ledger of N recorded checks (batches of 10 requests drawn at random over
tenants, sites, chips, data and every day of 2022-2026) and P recorded plans of generated
portfolios, replayed with the shipped packs as candidate. Baseline of the same run: the same
requests asked directly (`RuleSet.check_many`, cold cache) and the same plans re-checked without
the ledger. The difference is what reading and verifying the ledger costs.

Coverage: the shipped case tables run (`run_cases`), then the coverage probes evaluated over
them; the ratio is what coverage adds to `rules test`.
Run: python benchmarks/rules_replay.py [N_CHECK_ENTRIES] [N_PLANS]
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

from straits.model.request import CheckRequest
from straits.plan import make_plan
from straits.plan.recheck import PlanContext
from straits.rules.cases import run_cases
from straits.rules.coverage import coverage
from straits.rules.engine import RuleSet
from straits.rules.pack_loader import load_packs
from straits.rules.replay import Replayer
from straits.simulate.generate import generate
from straits.store import Store, ledger
from straits.store.records import record_check, record_plan

BATCH = 10


def requests(n: int, seed: int = 11) -> list[CheckRequest]:
    rng = random.Random(seed)
    tenants = [
        ("CN", []),
        ("SG", []),
        ("US", []),
        ("DE", ["gdpr-transfer-safeguard"]),
        ("CN", ["bis-license"]),
    ]
    sites = [
        ("SG", "SG", False),
        ("MY", "SG", False),
        ("CN", "CN", False),
        ("US", "US", True),
        ("US", "US", False),
        ("DE", "DE", False),
        ("RU", "RU", False),
    ]
    chips = ["H100-SXM", "H200-SXM", "H800-SXM", "H20", "A100-SXM-80GB", "Ascend-910B", "B200"]
    data = [
        None,
        ("CN", ["personal"], 3_000_000),
        ("CN", ["personal"], 50_000),
        ("DE", ["personal"], 50_000),
        ("CN", ["important"], 0),
    ]
    start = dt.date(2022, 1, 1)
    out = []
    for _ in range(n):
        hq, auths = rng.choice(tenants)
        country, op, dpf = rng.choice(sites)
        d = rng.choice(data)
        action = rng.choice(["procure", "train", "finetune", "serve"])
        out.append(
            CheckRequest.model_validate(
                {
                    "date": start + dt.timedelta(days=rng.randrange(5 * 365)),
                    "action": action,
                    "tenant": {"hq": hq, "authorizations": auths},
                    "quantity": 512,
                    "site": {"country": country, "operator_hq": op, "dpf_certified": dpf},
                    "chip": rng.choice(chips),
                    "ships_from": rng.choice([None, "US", "MY"]),
                    "data": None
                    if d is None or action == "procure"
                    else {"origin": d[0], "classes": d[1], "subjects": d[2]},
                }
            )
        )
    return out


def timed(fn, *args, **kw):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def main() -> None:
    n_entries = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_plans = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        rules = RuleSet(load_packs())
        reqs = requests(n_entries * BATCH)
        t = time.perf_counter()
        for i in range(n_entries):
            batch = reqs[i * BATCH : (i + 1) * BATCH]
            answer = [d.to_json() for d in rules.check_many(batch)]
            record_check(store, rules, batch, answer, tenant=f"t{i % 7}", actor="bench")
        plans = []
        for seed in range(n_plans):
            sc = generate(workloads=20, sites=30, seed=seed)
            plan = make_plan(sc, rules=rules, solver="greedy")
            record_plan(store, sc, plan, rules, {"solver": "greedy"}, tenant="p", actor="bench")
            plans.append((sc, plan.to_json()))
        print(
            f"recorded {n_entries} check entries ({len(reqs)} decisions) and {n_plans} plans "
            f"in {time.perf_counter() - t:.1f} s"
        )

        # baseline: the same questions without the ledger, cold caches
        base_rules = RuleSet(load_packs())
        _, t_checks = timed(base_rules.check_many, reqs)
        t_plans = 0.0
        placements = 0
        for sc, pj in plans:
            ctx = PlanContext(sc, pj, base_rules, date=sc.date, regime=sc.regime)
            t0 = time.perf_counter()
            for p in ctx.placements.values():
                ctx.recheck(p)
                placements += 1
            t_plans += time.perf_counter() - t0
        baseline = t_checks + t_plans

        cand = RuleSet(load_packs())
        v, t_verify = timed(ledger.verify, store)
        assert v.ok
        result, t_replay = timed(Replayer(store, cand).run, dt.date(2000, 1, 1))
        assert result.decisions == len(reqs) and result.placements == placements
        assert not result.changes, "the same packs must change nothing"
        print(
            f"baseline (same decisions asked directly): {len(reqs):,} decisions in "
            f"{t_checks:.2f} s, {placements} placements re-checked in {t_plans:.2f} s"
        )
        print(
            f"replay: {result.entries:,} entries in {t_replay:.2f} s "
            f"({len(reqs) / t_replay:,.0f} decisions/s incl. placements), "
            f"ledger verification {t_verify:.2f} s"
        )
        print(
            f"replay / baseline: {t_replay / baseline:.2f}x; "
            f"with verification {(t_replay + t_verify) / baseline:.2f}x"
        )

    rules = RuleSet(load_packs())
    results, t_cases = timed(run_cases, rules)
    report, t_cov = timed(coverage, rules, results)
    conds = sum(len(p.conditions) for p in report.policies)
    print(
        f"rules test: {len(results)} cases in {t_cases:.2f} s; coverage of "
        f"{len(report.policies)} policies / {conds} conditions ({2 * conds} probe policies) "
        f"in {t_cov:.2f} s: +{t_cov / t_cases:.0%}"
    )


if __name__ == "__main__":
    main()
