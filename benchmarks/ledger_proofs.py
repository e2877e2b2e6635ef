"""The ledger as a Merkle tree log at 10^3, 10^5 and 10^6 entries: what proofs cost.

For each size the log is built the way an existing ledger is upgraded (entries inserted as the
first schema wrote them, then migration 0002's backfill numbers them and builds the tree), then:

* append throughput, one transaction per entry as Straits appends, against the chain-only
  append of the first version (insert the row, move the head) as the baseline;
* a receipt (inclusion proof from stored node hashes, against a signed checkpoint), its offline
  verification, and a bare inclusion proof;
* verifying an older checkpoint (half the log) by a consistency proof, without a rescan;
* the full ``ledger verify`` (chain, tree, checkpoints, records) against the plain chain walk
  of the first version as the baseline ratio;
* a tenant's own verify (``GET /v1/ledger/verify`` for a tenant: one eighth of the entries,
  each proven by an inclusion proof) as a ratio to the full verify;
* proven reads (an entry, a page of 100, a tenant's page of 100) with and without the check of
  each entry's ``prev_hash`` against its predecessor's stored hash (chain64), alternating.

Figures are wall-clock on whatever machine runs it (on a shared, loaded machine they are
indicative); the baselines are measured in the same run. Target: a receipt in under 5 ms at
10^6 entries.

Run: python benchmarks/ledger_proofs.py [--sizes 1000,100000,1000000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from straits.store import Store, checkpoints, ledger, tree
from straits.store.integrity import verify_heads, verify_store
from straits.store.keys import Keys
from straits.store.ledger import GENESIS, Entry, canonical, verify_chain
from straits.store.note import Checkpoint, Signer, sign_checkpoint
from straits.store.receipts import make_receipt, verify_receipt
from straits.store.tables import LedgerHead, LedgerRow
from straits.store.tenant_verify import verify_tenant

BATCH = 10_000


CPU: dict[str, list[float]] = {}
"""CPU seconds of this process per call, by label: on a shared, loaded machine the wall clock
mostly measures waiting for a core; CPU time is what the work costs (SQLite runs in-process, so
it is counted; a PostgreSQL server's work is not)."""


def timed(fn: Callable[[], Any], label: str | None = None) -> tuple[float, Any]:
    c, t = time.process_time(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t
    if label:
        CPU.setdefault(label, []).append(time.process_time() - c)
    return wall, out


def ms(samples: list[float], label: str | None = None) -> str:
    s = sorted(samples)
    cpu = ""
    if label and CPU.get(label):
        cpu = f"  (CPU median {statistics.median(CPU[label]) * 1e3:6.2f} ms)"
    return (
        f"median {statistics.median(s) * 1e3:7.2f} ms  p95 {s[int(len(s) * 0.95)] * 1e3:7.2f}"
        f" ms{cpu}"
    )


def disk_read_bytes() -> int:
    """Bytes this process made the storage layer read (Linux; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("read_bytes:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def backfill_fn() -> Callable[[Any], int]:
    path = (
        Path(__file__).resolve().parents[1] / "src/straits/store/migrations/versions/"
        "0002_ledger_merkle_tree.py"
    )
    spec = importlib.util.spec_from_file_location("migration_0002", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn: Callable[[Any], int] = module.backfill
    return fn


def build(store: Store, n: int) -> float:
    """Insert ``n`` entries as the first schema wrote them, then run the upgrade's backfill."""
    tenants = [f"tenant-{i}" for i in range(8)]
    prev = GENESIS
    t0 = time.perf_counter()
    with store.engine.begin() as conn:
        rows = []
        for seq in range(1, n + 1):
            body = canonical(
                {
                    "inputs": {"requests": [{"i": seq}]},
                    "result": {"decision": "allow", "requires": [], "reasons": []},
                }
            )
            e = Entry(
                seq,
                f"2026-01-01T00:00:{seq % 60:02d}.{seq % 1000000:06d}+00:00",
                tenants[seq % 8],
                "bench",
                "check",
                body,
                prev,
                "",
            )
            h = e.expected_hash()
            rows.append({**e.__dict__, "hash": h, "tenant_seq": -seq, "salt": ""})
            prev = h
            if len(rows) == BATCH:
                conn.execute(insert(LedgerRow), rows)
                rows.clear()
        if rows:
            conn.execute(insert(LedgerRow), rows)
        conn.execute(insert(LedgerHead), [{"id": 1, "seq": n, "hash": prev}])
    insert_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    with store.engine.begin() as conn:
        backfill_fn()(conn)
    backfill_s = time.perf_counter() - t1
    if store.dialect == "sqlite":  # fold the bulk write's WAL back, as a live log's would be
        with store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    print(
        f"  built: {n:,} entries inserted in {insert_s:.1f} s; upgrade backfill (numbers + "
        f"tree) {backfill_s:.1f} s = {n / backfill_s:,.0f} entries/s"
    )
    return backfill_s


def chain_only_append(store: Store, i: int) -> None:
    """The first version's append: read the head, insert the row, move the head."""
    with store.write() as s:
        h = s.get(LedgerHead, 1)
        assert h is not None
        e = Entry(
            h.seq + 1,
            "2026-01-02T00:00:00.000000+00:00",
            "tenant-0",
            "bench",
            "check",
            canonical({"i": i}),
            h.hash,
            "",
        )
        e = Entry(**{**e.__dict__, "hash": e.expected_hash()})
        s.add(LedgerRow(**{**e.__dict__, "tenant_seq": -(h.seq + 1), "salt": ""}))
        h.seq, h.hash = e.seq, e.hash


def run(url: str, n: int, appends: int, samples: int) -> dict[str, float]:
    store = Store(url)
    build(store, n)
    signer = Signer.generate("bench.straits/ledger")
    keys = Keys(signer)
    out: dict[str, float] = {}

    # appends: the tree's append against the chain-only baseline, alternating in batches
    tree_t, chain_t = [], []
    for i in range(appends):
        tree_t.append(
            timed(
                lambda i=i: ledger.record(
                    store, tenant="tenant-0", actor="bench", kind="check", body={"i": i}
                )
            )[0]
        )
    for i in range(appends):
        chain_t.append(timed(lambda i=i: chain_only_append(store, i))[0])
    # the baseline's rows are not in the tree: remove them so the log verifies again
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger WHERE tenant_seq < 0"))
        last = conn.execute(text("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")).one()
        conn.execute(
            text("UPDATE ledger_head SET seq = :s, hash = :h"), {"s": last[0], "h": last[1]}
        )
    size = n + appends
    out["append_tree_per_s"] = appends / sum(tree_t)
    out["append_chain_per_s"] = appends / sum(chain_t)
    print(
        f"  append, one transaction each: tree {ms(tree_t)} ({out['append_tree_per_s']:,.0f}/s)"
        f"; chain only {ms(chain_t)} ({out['append_chain_per_s']:,.0f}/s); ratio "
        f"{out['append_chain_per_s'] / out['append_tree_per_s']:.2f}x"
    )

    t_cp, _ = timed(lambda: checkpoints.issue(store, signer))
    print(f"  checkpoint signed at {size:,} entries: {t_cp * 1e3:.1f} ms")
    rng = random.Random(7)
    seqs = [rng.randint(1, size) for _ in range(samples)]
    rec_t, ver_t, inc_t = [], [], []
    CPU.clear()
    for seq in seqs:
        dt_r, receipt = timed(lambda seq=seq: make_receipt(store, seq, keys), "receipt")
        rec_t.append(dt_r)
        ver_t.append(timed(lambda r=receipt: verify_receipt(r, [signer.verifier]), "verify")[0])

        def inclusion(seq: int = seq) -> list[bytes]:
            with store.session() as s:
                return tree.proofs(s, inclusions=[(seq - 1, size)]).inclusion(seq - 1, size)

        inc_t.append(timed(inclusion, "inclusion")[0])
    out["receipt_ms"] = statistics.median(rec_t) * 1e3
    io0 = disk_read_bytes()
    for seq in seqs[:50]:
        make_receipt(store, seq, keys)
    io_kb = (disk_read_bytes() - io0) / 50 / 1024
    out["receipt_cpu_ms"] = statistics.median(CPU["receipt"]) * 1e3
    print(
        f"  receipt (prove the entry, inclusion proof, signed checkpoint): {ms(rec_t, 'receipt')}"
    )
    print(f"  receipt verified offline:                                      {ms(ver_t, 'verify')}")
    print(
        f"  inclusion proof alone (one query of O(log n) nodes):           {ms(inc_t, 'inclusion')}"
    )
    print(f"  read from disk per receipt (this process, /proc/self/io):       {io_kb:7.1f} KiB")

    half = size // 2
    with store.session() as s:
        old_root = tree.proofs(s, roots=[half]).root(half)
    from straits.store.note import open_checkpoint

    older = open_checkpoint(
        sign_checkpoint(Checkpoint(signer.name, half, old_root), signer), [signer.verifier]
    )
    quick_t = [
        timed(lambda: verify_heads(store, keys, [older]), "quick")[0] for _ in range(samples)
    ]
    assert verify_heads(store, keys, [older]).ok
    out["quick_ms"] = statistics.median(quick_t) * 1e3
    out["quick_cpu_ms"] = statistics.median(CPU["quick"]) * 1e3
    print(
        f"  older checkpoint ({half:,}) verified by consistency proof, no rescan: "
        f"{ms(quick_t, 'quick')}"
    )

    chain_s, v0 = timed(lambda: verify_chain(ledger.entries(store), ledger.head(store)))
    full_s, v = timed(lambda: verify_store(store, keys, [older]))
    assert v0.ok and v.ok, (v0.problem, v.problem)
    out["chain_walk_s"], out["full_verify_s"] = chain_s, full_s
    print(
        f"  baseline, the first version's chain walk: {chain_s:.2f} s; full verify (chain, "
        f"tree, checkpoints, records): {full_s:.2f} s ({full_s / chain_s:.1f}x the walk)"
    )
    one = ledger.count(store, "tenant-3")
    tenant_s, tv = timed(lambda: verify_tenant(store, keys, "tenant-3"))
    assert tv.ok and tv.checked == one, tv.problem
    out["tenant_verify_s"] = tenant_s
    print(
        f"  a tenant's verify (its {one:,} entries proven, its rows compared): {tenant_s:.2f} s "
        f"({tenant_s / full_s:.2f}x the full verify)"
    )
    out.update(link_cost(store, keys, size, samples))
    print(
        f"  ratios to the chain walk: receipt {chain_s * 1e3 / out['receipt_ms']:,.0f}x "
        f"faster; older checkpoint {chain_s * 1e3 / out['quick_ms']:,.0f}x faster"
    )
    store.close()
    return out


def link_cost(store: Store, keys: Keys, size: int, samples: int) -> dict[str, float]:
    """Proven reads with the predecessor check (``chain_links.broken_links``) and without it, in
    alternation: median ms of each and the ratio (chain64)."""
    from straits.store import proven

    name = "broken_links"  # swapped for one that finds nothing, then put back
    real = getattr(proven, name)
    rng = random.Random(11)
    page = list(ledger.entries(store, since=rng.randint(2, max(2, size - 100)), limit=100))
    mine = list(ledger.tenant_entries(store, "tenant-3", since=1, limit=100))
    seqs = [rng.randint(1, size) for _ in range(samples)]
    reads: dict[str, Callable[[int], Any]] = {
        "entry": lambda i: proven.prove_entry(store, seqs[i], keys),
        "page of 100": lambda i: proven.prove_entries(store, page, keys),
        "tenant's page of 100": lambda i: proven.prove_entries(store, mine, keys),
    }
    out: dict[str, float] = {}
    for label, read in reads.items():
        on: list[float] = []
        off: list[float] = []
        try:
            for i in range(samples):
                setattr(proven, name, lambda s, entries: {})
                off.append(timed(lambda i=i, read=read: read(i))[0])
                setattr(proven, name, real)
                on.append(timed(lambda i=i, read=read: read(i))[0])
        finally:
            setattr(proven, name, real)
        a, b = statistics.median(off) * 1e3, statistics.median(on) * 1e3
        out[f"links_{label}_ratio"] = b / a
        print(
            f"  proven read, {label}: {b:.2f} ms with the prev_hash check, {a:.2f} ms "
            f"without ({b / a:.2f}x)"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument(
        "--postgres",
        help="also run on this PostgreSQL URL (its public schema is dropped and recreated)",
    )
    ap.add_argument("--appends", type=int, default=200)
    ap.add_argument("--samples", type=int, default=200)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    results: dict[tuple[str, int], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="straits-bench-") as tmp:
        for n in sizes:
            print(f"SQLite, {n:,} entries")
            results[("sqlite", n)] = run(
                f"sqlite:///{tmp}/ledger-{n}.db", n, args.appends, args.samples
            )
            Path(f"{tmp}/ledger-{n}.db").unlink()
    if args.postgres:
        from sqlalchemy import create_engine

        for n in sizes:
            engine = create_engine(args.postgres)
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA public")
            engine.dispose()
            print(f"PostgreSQL, {n:,} entries")
            results[("postgresql", n)] = run(args.postgres, n, args.appends, args.samples)
    print(
        "\nsummary: median wall (CPU) ms of a receipt | of an older checkpoint's check | "
        "full verify s / chain walk s"
    )
    for (db, n), r in results.items():
        flag = "" if r["receipt_ms"] < 5 else "  (wall over the 5 ms target)"
        print(
            f"  {db:10} {n:>9,}: {r['receipt_ms']:6.2f} ({r['receipt_cpu_ms']:5.2f}) ms | "
            f"{r['quick_ms']:6.2f} ({r['quick_cpu_ms']:5.2f}) ms | "
            f"{r['full_verify_s']:7.2f} s / {r['chain_walk_s']:6.2f} s{flag}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
