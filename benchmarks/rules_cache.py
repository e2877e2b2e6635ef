"""Decisions per second: raw cedarpy vs Straits uncached vs Straits cached, on 100,000 requests.

Two mixes: `planner` replays the questions the planner really asks while planning generated
portfolios (the cache's purpose), `diverse` draws requests at random over tenants, sites, chips,
datasets, actions and every day of 2025 (a worst case: most requests are distinct).
Run: python benchmarks/rules_cache.py [N]
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import time

from straits.model.request import CheckRequest
from straits.plan import make_plan
from straits.rules.context import build_request
from straits.rules.decision import Decision
from straits.rules.engine import RuleSet
from straits.rules.pack_loader import load_packs
from straits.simulate.generate import generate


class Recorder(RuleSet):
    """A rule set that remembers every request it is asked."""

    def __init__(self) -> None:
        super().__init__(load_packs())
        self.asked: list[CheckRequest] = []

    def check_many(self, requests: list[CheckRequest], *, use_cache: bool = True) -> list[Decision]:
        self.asked += requests
        return super().check_many(requests, use_cache=use_cache)


def planner_requests(n: int) -> list[CheckRequest]:
    rec = Recorder()
    seed = 0
    while len(rec.asked) < n:
        make_plan(generate(workloads=40, sites=60, seed=seed), rules=rec)
        seed += 1
    return rec.asked[:n]


def diverse_requests(n: int, seed: int = 7) -> list[CheckRequest]:
    rng = random.Random(seed)
    tenants = [
        ("CN", ()),
        ("CN", ("cac-standard-contract",)),
        ("SG", ()),
        ("US", ()),
        ("DE", ("gdpr-transfer-safeguard",)),
    ]
    sites = [("SG", "SG"), ("MY", "SG"), ("CN", "CN"), ("US", "US"), ("DE", "DE"), ("JP", "JP")]
    chips = ["H100-SXM", "H200-SXM", "H800-SXM", "H20", "Ascend-910B", "B200", "A800-SXM"]
    datasets = [
        None,
        ("CN", ("public",), 0),
        ("CN", ("personal",), 3_000_000),
        ("CN", ("personal",), 200_000),
        ("DE", ("personal",), 50_000),
    ]
    out = []
    for _ in range(n):
        hq, auths = rng.choice(tenants)
        country, op = rng.choice(sites)
        data = rng.choice(datasets)
        out.append(
            CheckRequest.model_validate(
                {
                    "date": dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(365)),
                    "regime": rng.choice(["enacted", "enacted", "ai-diffusion"]),
                    "action": rng.choice(["train", "finetune", "serve", "procure"]),
                    "tenant": {"hq": hq, "authorizations": list(auths)},
                    "site": {"country": country, "operator_hq": op},
                    "chip": rng.choice(chips),
                    "quantity": rng.choice([0, 256, 2048]),
                    "data": None
                    if data is None
                    else {"origin": data[0], "classes": list(data[1]), "subjects": data[2]},
                }
            )
        )
    return out


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} decisions/s  ({seconds:6.2f} s)"


def measure(name: str, reqs: list[CheckRequest]) -> None:
    n = len(reqs)
    rs = RuleSet(load_packs())
    print(f"\n== {name} mix: {n:,} requests over {len(rs.rules)} rules in {len(rs.packs)} packs")
    cedar_reqs = [build_request(r) for r in reqs]
    t = time.perf_counter()
    for i in range(0, n, 1000):
        rs._evaluator.satisfied(cedar_reqs[i : i + 1000])
    raw_cedar = time.perf_counter() - t
    print(f"raw cedarpy (pre-built requests, batches of 1000) {rate(n, raw_cedar)}")

    t = time.perf_counter()
    for i in range(0, n, 1000):
        rs.check_many(reqs[i : i + 1000], use_cache=False)
    uncached = time.perf_counter() - t
    print(f"Straits, no cache (build + Cedar + reasons)       {rate(n, uncached)}")

    rs.clear_cache()
    evals = rs.evaluations
    t = time.perf_counter()
    for i in range(0, n, 1000):
        rs.check_many(reqs[i : i + 1000])
    cached = time.perf_counter() - t
    print(
        f"Straits, cached from cold                         {rate(n, cached)}"
        f"  [{rs.evaluations - evals:,} Cedar evaluations, {rs.cache_size:,} keys]"
    )
    t = time.perf_counter()
    for i in range(0, n, 1000):
        rs.check_many(reqs[i : i + 1000])
    warm = time.perf_counter() - t
    print(f"Straits, cached and warm                          {rate(n, warm)}")
    sample = reqs[:: max(1, n // 2000)]
    assert [d.to_json() for d in rs.check_many(sample)] == [
        d.to_json() for d in rs.check_many(sample, use_cache=False)
    ]
    print(f"ratio cached (cold) / raw cedarpy:  {raw_cedar / cached:8.1f}x")
    print(f"ratio cached (warm) / raw cedarpy:  {raw_cedar / warm:8.1f}x")
    print(f"ratio cached (cold) / uncached:     {uncached / cached:8.1f}x")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    t = time.perf_counter()
    planner = planner_requests(n)
    print(f"recorded {len(planner):,} planner questions in {time.perf_counter() - t:.1f} s")
    measure("planner", planner)
    measure("diverse", diverse_requests(n))


if __name__ == "__main__":
    main()
