"""Load on /v1/check over loopback: requests per second and p50/p99 latency.

Starts `straits serve` (uvicorn, one process) on a free port with a fresh SQLite database, then
sends N requests from C client threads for three mixes: `/healthz` (the framework's floor, no
token, no rules), `/v1/check` with one repeated request (cache hits) and `/v1/check` with
requests that vary over dates, chips and data volumes (mostly cache misses at first), and
`/v1/check?record=true` (a ledger append per request). The baseline is the same decisions
through the Python API in one process, so the ratio shows what HTTP, auth and JSON cost.

Run: python benchmarks/api_load.py [N] [--clients C]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from straits.api import check_json, parse_check_document
from straits.rules import ruleset

BASE = {
    "date": "2025-06-01",
    "regime": "enacted",
    "action": "finetune",
    "tenant": {"hq": "CN", "authorizations": []},
    "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM",
    "data": {"origin": "CN", "classes": ["personal"], "subjects": 3_000_000},
}


def varied(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        day = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(365))
        out.append(
            {
                **BASE,
                "date": day.isoformat(),
                "chip": rng.choice(
                    ["H100-SXM", "H20", "H800-SXM", "A100-SXM-80GB", "B200", "Ascend-910B"]
                ),
                "site": {
                    "country": rng.choice(["SG", "MY", "CN", "US", "DE"]),
                    "operator_hq": rng.choice(["SG", "CN", "US"]),
                },
                "data": {**BASE["data"], "subjects": rng.choice([0, 5_000, 200_000, 3_000_000])},
            }
        )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(
    client: httpx.Client,
    method: str,
    url: str,
    bodies: list[Any] | None,
    n: int,
    clients: int,
    headers: dict[str, str],
) -> tuple[float, list[float]]:
    def one(i: int) -> float:
        t = time.perf_counter()
        body = bodies[i % len(bodies)] if bodies else None
        r = client.request(method, url, json=body, headers=headers)
        if r.status_code != 200:
            raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")
        return time.perf_counter() - t

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        lat = list(pool.map(one, range(n)))
    return n / (time.perf_counter() - t0), lat


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    args = sys.argv[1:]
    clients = 8
    if "--clients" in args:
        i = args.index("--clients")
        clients = int(args[i + 1])
        del args[i : i + 2]
    n = int(args[0]) if args else 2000
    tmp = Path(tempfile.mkdtemp(prefix="straits-load-"))
    db = f"sqlite:///{tmp / 'load.db'}"
    env = {**os.environ, "STRAITS_DATABASE_URL": db}
    exe = [sys.executable, "-m", "straits"]
    token = json.loads(
        subprocess.run(
            [*exe, "tokens", "create", "--tenant", "bench", "--role", "planner", "--json"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )["token"]
    port = free_port()
    server = subprocess.Popen(
        [*exe, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=clients * 2)
        ) as client:
            for _ in range(200):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            h = {"Authorization": f"Bearer {token}"}
            mixes = [
                ("GET /healthz (floor)", "GET", "/healthz", None),
                ("POST /v1/check, one request", "POST", "/v1/check", [BASE]),
                ("POST /v1/check, varied", "POST", "/v1/check", varied(n)),
                ("POST /v1/check?record=true", "POST", "/v1/check?record=true", varied(n, 2)),
            ]
            rules = ruleset()
            t = time.perf_counter()
            for body in varied(n, 3):
                check_json(rules, *parse_check_document(body, "bench"))
            direct = n / (time.perf_counter() - t)
            print(f"{'mix':<32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs API':>8}")
            print(
                f"{'Python API, varied (baseline)':<32} {direct:>8,.0f} {'':>8} {'':>8} {1.0:>8.2f}"
            )
            for label, method, path, bodies in mixes:
                run(client, method, path, bodies, min(200, n), clients, h)  # warm up
                rps, lat = run(client, method, path, bodies, n, clients, h)
                print(
                    f"{label:<32} {rps:>8,.0f} {pct(lat, 50):>8.1f} {pct(lat, 99):>8.1f} "
                    f"{rps / direct:>8.2f}"
                )
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"\n{n:,} requests per mix, {clients} client threads, one uvicorn process, SQLite "
        f"(WAL) on loopback; 'vs API' = HTTP throughput / in-process Python API throughput."
    )


if __name__ == "__main__":
    main()
