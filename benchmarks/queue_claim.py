"""What tenants taking turns costs a claim: ``store.queue.claim`` (each waiting tenant's oldest
job in ``serving_order``) against the same claim oldest-first across tenants (``serving_order``
switched off in this process) as the baseline, on one queue.

N queued jobs of T tenants (the example scenario, one stored copy) are written to a fresh
SQLite database, or to the database named by ``--db`` (give it an empty
scratch database), with distinct submission times; then 20 claims of each kind are timed and
the mean per claim printed with the ratio.
Run: python benchmarks/queue_claim.py [N] [T] [--db URL]   (default 50000 2, SQLite)
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert

import straits.store.queue as queue
from straits.loading import load_scenario
from straits.store import Store
from straits.store.tables import PlanRow

ROOT = Path(__file__).resolve().parents[1]
GREEDY = {"solver": "greedy", "objective": None, "regime": None, "time_limit": 5.0, "seed": 0}
POLICY = queue.QueuePolicy(lease_s=30, max_attempts=3, queue_timeout_s=3600)
CLAIMS = 20


def fill(store: Store, n: int, tenants: int) -> None:
    sc = load_scenario(ROOT / "examples" / "offshore-2025.yaml")
    first = queue.enqueue(
        store, sc, GREEDY, tenant="t0", actor="bench", record=False, rules_digest=None
    )
    with store.session() as s:
        row = s.get(PlanRow, first)
        assert row is not None
        digest, options, start = row.scenario_digest, row.options, row.created_at
        rows = [
            {
                "id": uuid.uuid4().hex,
                "tenant": f"t{i % tenants}",
                "actor": "bench",
                "scenario_digest": digest,
                "options": options,
                "status": "queued",
                "created_at": start + dt.timedelta(microseconds=i + 1),
                "record": False,
                "attempts": 0,
                "cancel_requested": False,
            }
            for i in range(n - 1)
        ]
        for k in range(0, len(rows), 5000):
            s.execute(insert(PlanRow), rows[k : k + 5000])
        s.commit()


def per_claim(store: Store, tag: str) -> float:
    t = time.perf_counter()
    for i in range(CLAIMS):
        assert queue.claim(store, f"bench:{i}:{tag}", None, POLICY) is not None
    return (time.perf_counter() - t) / CLAIMS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=50_000)
    ap.add_argument("tenants", nargs="?", type=int, default=2)
    ap.add_argument("--db", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(args.db or f"sqlite:///{Path(tmp) / 'queue.db'}")
        fill(store, args.n, args.tenants)
        fair = per_claim(store, "fair")
        order = queue.serving_order
        queue.serving_order = lambda s, rules_digest: []  # type: ignore[assignment]
        try:
            oldest = per_claim(store, "oldest")
        finally:
            queue.serving_order = order  # type: ignore[assignment]
        store.close()
    print(f"{args.n:,} queued jobs of {args.tenants} tenants ({store.dialect}), {CLAIMS} claims:")
    print(f"  tenants in turn   {fair * 1000:7.1f} ms a claim")
    print(f"  oldest first      {oldest * 1000:7.1f} ms a claim (baseline)")
    print(f"  ratio             {fair / oldest:7.2f}x")


if __name__ == "__main__":
    main()
