"""Sustained mixed load on the API with real processes: plans, recorded checks and reads.

For each database (SQLite; PostgreSQL too with --pg URL) it starts `straits serve` (one plan
slot in the server) and one `straits worker`, then for a fixed time runs:

* a plan submitter: a plan every 2 s (greedy, or CP-SAT with a 3 s limit, alternating);
* recorders: clients appending checks to the ledger (``POST /v1/check?record=true``);
* readers: ``POST /v1/check`` without recording, ``GET /v1/plans``, ``GET /v1/plans/{id}``,
  ``GET /v1/chips``, ``GET /healthz``.

Then it waits for every plan to end, verifies the ledger, and checks that every check the
clients were told was recorded (``X-Straits-Ledger-Seq``) is in the ledger with the request they
sent. It prints throughput and p50/p99 latency per route, 5xx and transport errors, lost
records, plans done/failed, and the same run without the recorders as the baseline: the ratio
of read latencies with and without the recording load.

Run: python benchmarks/soak.py [SECONDS] [--clients N] [--pg postgresql+psycopg://...]
The figures are indicative: the machine is shared, and loopback HTTP from Python threads in
the same machine competes with the server for the same cores.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"
EXE = [sys.executable, "-m", "straits"]
CHECK: dict[str, Any] = {
    "date": "2025-06-01",
    "regime": "enacted",
    "action": "finetune",
    "tenant": {"hq": "CN", "authorizations": []},
    "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM",
    "data": {"origin": "CN", "classes": ["personal"], "subjects": 3_000_000},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scenario_doc() -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    return dict(json.loads(json.dumps(doc, default=lambda o: o.isoformat())))


def check_body(rng: random.Random) -> dict[str, Any]:
    day = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(365))
    return {
        **CHECK,
        "date": day.isoformat(),
        "chip": rng.choice(["H100-SXM", "H20", "H800-SXM", "B200", "Ascend-910B"]),
        "site": {
            "country": rng.choice(["SG", "MY", "CN", "US"]),
            "operator_hq": rng.choice(["SG", "CN", "US"]),
        },
        # a personal dataset's count of 0 is read as unknown (1,000,000) and recorded so:
        # the load sends real counts, so what it sent is what the ledger holds
        "data": {**CHECK["data"], "subjects": rng.choice([900, 5_000, 200_000, 3_000_000])},
    }


# --- the service as real processes ------------------------------------------------------------
@dataclass
class Service:
    """`straits serve` and `straits worker` processes over one database."""

    db: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    server: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = {**os.environ, "STRAITS_DATABASE_URL": self.db, **self.env}
        self.url = f"http://127.0.0.1:{self.port}"

    def token(self, tenant: str, role: str) -> str:
        p = subprocess.run(
            [*EXE, "tokens", "create", "--tenant", tenant, "--role", role, "--json"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return str(json.loads(p.stdout)["token"])

    def _log(self, name: str) -> Any:
        return (self.workdir / name).open("ab")

    def start_server(self, plan_workers: int = 1) -> None:
        self.server = subprocess.Popen(
            [
                *EXE,
                "serve",
                "--port",
                str(self.port),
                "--plan-workers",
                str(plan_workers),
                "--log-level",
                "warning",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self._log("server.log"),
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"the server exited: see {self.workdir / 'server.log'}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def stop_server(self, sig: int = signal.SIGTERM) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(sig)
            self.server.wait(60)
        self.server = None

    def start_worker(self, slots: int = 1) -> subprocess.Popen[bytes]:
        w = subprocess.Popen(
            [*EXE, "worker", "--slots", str(slots), "--log-level", "warning"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self._log(f"worker{len(self.workers)}.log"),
        )
        self.workers.append(w)
        return w

    def stop(self) -> None:
        for w in self.workers:
            if w.poll() is None:
                w.terminate()
        for w in self.workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        self.stop_server()


# --- the load -----------------------------------------------------------------------------------
@dataclass
class Stats:
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    status: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int))
    )
    transport_errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    recorded: dict[int, dict[str, Any]] = field(default_factory=dict)
    plans: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, route: str, status: int | None, seconds: float) -> None:
        with self.lock:
            if status is None:
                self.transport_errors[route] += 1
            else:
                self.status[route][status] += 1
                self.latency[route].append(seconds)

    def server_errors(self) -> int:
        return sum(n for codes in self.status.values() for s, n in codes.items() if s >= 500)


class Load:
    """Client threads against ``url`` until ``stop`` is set."""

    def __init__(
        self,
        url: str,
        planner: str,
        stats: Stats,
        *,
        recorders: int,
        readers: int,
        submit_every: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.url, self.stats, self.stop = url, stats, threading.Event()
        self.h = {"Authorization": f"Bearer {planner}"}
        self.threads = [
            threading.Thread(target=self._recorder, args=(seed + i,), daemon=True)
            for i in range(recorders)
        ]
        self.threads += [
            threading.Thread(target=self._reader, args=(seed + 100 + i,), daemon=True)
            for i in range(readers)
        ]
        if submit_every > 0:
            self.threads.append(
                threading.Thread(target=self._submitter, args=(submit_every,), daemon=True)
            )
        self.doc = scenario_doc()

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(120)

    def _call(
        self, client: httpx.Client, route: str, method: str, path: str, **kw: Any
    ) -> httpx.Response | None:
        t = time.perf_counter()
        try:
            r = client.request(method, path, headers=self.h, **kw)
        except httpx.TransportError:
            self.stats.note(route, None, 0.0)
            self.stop.wait(0.2)
            return None
        self.stats.note(route, r.status_code, time.perf_counter() - t)
        return r

    def _recorder(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                body = check_body(rng)
                r = self._call(
                    client, "POST /v1/check?record=true", "POST", "/v1/check?record=true", json=body
                )
                if r is not None and r.status_code == 200:
                    with self.stats.lock:
                        self.stats.recorded[int(r.headers["X-Straits-Ledger-Seq"])] = body

    def _reader(self, seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                pick = rng.random()
                if pick < 0.4:
                    self._call(client, "POST /v1/check", "POST", "/v1/check", json=check_body(rng))
                elif pick < 0.6:
                    self._call(client, "GET /v1/plans", "GET", "/v1/plans")
                elif pick < 0.75 and self.stats.plans:
                    plan_id = rng.choice(self.stats.plans)
                    self._call(client, "GET /v1/plans/{id}", "GET", f"/v1/plans/{plan_id}")
                elif pick < 0.9:
                    self._call(client, "GET /v1/chips", "GET", "/v1/chips")
                else:
                    self._call(client, "GET /healthz", "GET", "/healthz")

    def _submitter(self, every: float) -> None:
        n = 0
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                params: dict[str, Any] = (
                    {"solver": "greedy"} if n % 2 == 0 else {"solver": "cpsat", "time_limit": 3}
                )
                r = self._call(
                    client, "POST /v1/plans", "POST", "/v1/plans", params=params, json=self.doc
                )
                if r is not None and r.status_code == 202:
                    with self.stats.lock:
                        self.stats.plans.append(r.json()["id"])
                    n += 1
                self.stop.wait(every)


def wait_plans(url: str, token: str, ids: list[str], limit: float = 600) -> dict[str, Any]:
    """Every plan's final job JSON (raises when one is still queued/running at the limit)."""
    h = {"Authorization": f"Bearer {token}"}
    final: dict[str, Any] = {}
    deadline = time.monotonic() + limit
    with httpx.Client(base_url=url, timeout=60) as client:
        while time.monotonic() < deadline:
            for plan_id in ids:
                if plan_id in final:
                    continue
                try:
                    job = client.get(f"/v1/plans/{plan_id}", headers=h).json()
                except httpx.TransportError:
                    continue
                if job["status"] in ("done", "failed", "cancelled"):
                    final[plan_id] = job
            if len(final) == len(ids):
                return final
            time.sleep(0.5)
    missing = sorted(set(ids) - set(final))
    raise AssertionError(f"{len(missing)} plans never ended: {missing[:5]}")


def lost_records(db: str, recorded: dict[int, dict[str, Any]]) -> list[int]:
    """Recorded checks missing from the ledger, or stored with another request."""
    from straits.store import Store, ledger

    store = Store(db)
    lost = []
    try:
        for seq, body in recorded.items():
            e = ledger.get_entry(store, seq)
            sent = json.loads(json.dumps(body))
            got = e.content["inputs"]["requests"][0] if e is not None else None
            if e is None or e.kind != "check" or not _subset(sent, got):
                lost.append(seq)
    finally:
        store.close()
    return lost


def _subset(sent: Any, stored: Any) -> bool:
    """Every field the client sent is in the stored request (which adds defaults)."""
    if isinstance(sent, dict):
        return isinstance(stored, dict) and all(_subset(v, stored.get(k)) for k, v in sent.items())
    return bool(sent == stored)


def ledger_ok(db: str) -> bool:
    from straits.store import Store, ledger

    store = Store(db)
    try:
        return bool(ledger.verify(store).ok)
    finally:
        store.close()


# --- the benchmark -----------------------------------------------------------------------------
def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def run(
    db: str, seconds: float, clients: int, *, record: bool, workdir: Path
) -> tuple[Stats, float, dict[str, Any]]:
    svc = Service(db, workdir)
    planner = svc.token("hz-cloud", "planner")
    svc.start_server(plan_workers=1)
    svc.start_worker()
    stats = Stats()
    load = Load(
        svc.url, planner, stats, recorders=clients if record else 0, readers=clients, seed=1
    )
    try:
        t0 = time.perf_counter()
        load.start()
        time.sleep(seconds)
        load.finish()
        elapsed = time.perf_counter() - t0
        final = wait_plans(svc.url, planner, list(stats.plans))
    finally:
        svc.stop()
    return stats, elapsed, final


def report(
    label: str, stats: Stats, elapsed: float, final: dict[str, Any], db: str, base: Stats | None
) -> None:
    total = sum(len(v) for v in stats.latency.values())
    lost = lost_records(db, stats.recorded)
    done = sum(1 for j in final.values() if j["status"] == "done")
    print(
        f"\n== {label}: {total:,} requests in {elapsed:.0f} s ({total / elapsed:,.1f} req/s); "
        f"{len(stats.recorded):,} checks recorded, {len(lost)} lost; {len(final)} plans "
        f"({done} done, {len(final) - done} failed); ledger verifies: {ledger_ok(db)}; "
        f"5xx: {stats.server_errors()}; transport errors: "
        f"{sum(stats.transport_errors.values())}"
    )
    print(
        f"{'route':<30} {'n':>7} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}"
        + (f" {'p50 x':>6} {'p99 x':>6}" if base else "")
    )
    for route in sorted(stats.latency):
        lat = stats.latency[route]
        bad = sum(n for s, n in stats.status[route].items() if s >= 300)
        line = (
            f"{route:<30} {len(lat):>7,} {len(lat) / elapsed:>7.1f} {pct(lat, 50):>8.1f} "
            f"{pct(lat, 99):>8.1f} {bad:>8}"
        )
        if base and base.latency.get(route):
            b = base.latency[route]
            line += f" {pct(lat, 50) / pct(b, 50):>6.2f} {pct(lat, 99) / pct(b, 99):>6.2f}"
        print(line)


def main() -> None:
    args = sys.argv[1:]
    opts: dict[str, str] = {}
    for flag in ("--clients", "--pg"):
        if flag in args:
            i = args.index(flag)
            opts[flag] = args[i + 1]
            del args[i : i + 2]
    seconds = float(args[0]) if args else 60.0
    clients = int(opts.get("--clients", 4))
    tmp = Path(tempfile.mkdtemp(prefix="straits-soak-"))
    backends = [("SQLite", lambda name: f"sqlite:///{tmp / name}.db")]
    if "--pg" in opts:
        backends.append(("PostgreSQL", lambda _name: _fresh_pg(opts["--pg"])))
    print(
        f"soak: {seconds:g} s per run, {clients} recorder and {clients} reader threads, a "
        "plan every 2 s; `straits serve` (1 plan slot) + 1 `straits worker`; logs in "
        f"{tmp}"
    )
    for name, make in backends:
        base_db = make("baseline")
        base, base_elapsed, base_final = run(base_db, seconds, clients, record=False, workdir=tmp)
        report(f"{name}, baseline (no recorders)", base, base_elapsed, base_final, base_db, None)
        db = make("mixed")
        stats, elapsed, final = run(db, seconds, clients, record=True, workdir=tmp)
        report(f"{name}, with recorders (x = vs baseline)", stats, elapsed, final, db, base)
    print(
        "\nGoal: 0 5xx and 0 lost records. Indicative figures: a shared 2-core machine, "
        "clients and server on the same cores."
    )


def _fresh_pg(url: str) -> str:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE")
        conn.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return url


if __name__ == "__main__":
    main()
