"""The full ``ledger verify`` with and without the indexes on ``decisions.ledger_seq`` and
``plans.ledger_seq`` (migration 0005), on the same filled SQLite database.

The log is built as ``ledger_proofs.py`` builds it (``n`` check entries, default 10^5), with the
decision row each check entry has, as ``records.record_check`` writes it. Then, alternating on
the same file, with the indexes and with them dropped (the schema before 0005: the baseline):
the full verify (``verify_store``); its record scans alone (every decision and plan row against
its entry, every check entry against its row: ``row_checks.first_problem``); and the two queries
of those scans that the index serves (the count of decision rows per entry, the check entries
without a row) alone. Figures are wall clock and this process's CPU time (SQLite runs
in-process); on a shared, loaded machine they are indicative, the ratio being measured in the
same run on the same file.

Run: python benchmarks/ledger_verify_index.py [--entries 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_proofs import BATCH, build
from straits.store import Store
from straits.store.canonical import canonical
from straits.store.integrity import verify_store
from straits.store.keys import Keys
from straits.store.note import Signer
from straits.store.row_checks import first_problem
from straits.store.tables import DecisionRow

INDEXES = {
    "ix_decisions_ledger_seq": "decisions (ledger_seq)",
    "ix_plans_ledger_seq": "plans (ledger_seq)",
}

QUERIES = {
    "duplicate rows": "SELECT ledger_seq, count(*) FROM decisions GROUP BY ledger_seq "
    "HAVING count(*) > 1 ORDER BY ledger_seq LIMIT 1",
    "entries without a row": "SELECT ledger.seq FROM ledger LEFT OUTER JOIN decisions ON "
    "decisions.ledger_seq = ledger.seq WHERE ledger.kind = 'check' AND decisions.id IS NULL",
}


def add_decisions(store: Store, n: int) -> None:
    """The decision row of each check entry ``build`` wrote, in entry order."""
    with store.engine.begin() as conn:
        rows = []
        for seq in range(1, n + 1):
            rows.append(
                {
                    "tenant": f"tenant-{seq % 8}",
                    "actor": "bench",
                    "request": canonical({"requests": [{"i": seq}]}),
                    "answer": canonical({"decision": "allow", "requires": [], "reasons": []}),
                    "ledger_seq": seq,
                }
            )
            if len(rows) == BATCH:
                conn.execute(insert(DecisionRow), rows)
                rows.clear()
        if rows:
            conn.execute(insert(DecisionRow), rows)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def indexed(store: Store, on: bool) -> None:
    with store.engine.begin() as conn:
        for name, where in INDEXES.items():
            if on:
                conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {where}"))
            else:
                conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        conn.exec_driver_sql("ANALYZE")


def timed(fn: object) -> tuple[float, float]:
    c, t = time.process_time(), time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    keys = Keys(Signer.generate("bench.straits/ledger"))
    with tempfile.TemporaryDirectory(prefix="straits-bench-") as tmp:
        store = Store(f"sqlite:///{tmp}/ledger.db")
        build(store, args.entries)
        add_decisions(store, args.entries)
        v = verify_store(store, keys)
        assert v.ok, v
        print(f"SQLite, {args.entries:,} check entries and decision rows")
        for on in (True, False):
            indexed(store, on)
            with store.engine.connect() as conn:
                for label, sql in QUERIES.items():
                    plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").fetchall()
                    state = "with" if on else "without"
                    print(f"  {label}, {state} the index: " + "; ".join(str(r[-1]) for r in plan))
        figures: dict[tuple[bool, str], list[tuple[float, float]]] = {}
        for _ in range(args.rounds):
            for on in (False, True):
                indexed(store, on)
                figures.setdefault((on, "verify"), []).append(
                    timed(lambda: verify_store(store, keys))
                )
                with store.session() as s:
                    figures.setdefault((on, "rows"), []).append(timed(lambda: first_problem(s)))
                with store.engine.connect() as conn:
                    figures.setdefault((on, "sql"), []).append(
                        timed(
                            lambda: [conn.exec_driver_sql(q).fetchall() for q in QUERIES.values()]
                        )
                    )
        indexed(store, True)
        store.engine.dispose()
    print(f"  median of {args.rounds} rounds, wall s (CPU s):")
    parts = (
        ("verify", "full verify"),
        ("rows", "record scans only"),
        ("sql", "their two SQL joins"),
    )
    for part, label in parts:
        line = {}
        for on in (False, True):
            walls, cpus = zip(*figures[(on, part)], strict=True)
            line[on] = statistics.median(walls), statistics.median(cpus)
        base, new = line[False], line[True]
        print(
            f"  {label:18}: without index {base[0]:6.2f} ({base[1]:6.2f}); with index "
            f"{new[0]:6.2f} ({new[1]:6.2f}); ratio without / with {base[0] / new[0]:.2f}x "
            f"(CPU {base[1] / new[1]:.2f}x)"
        )


if __name__ == "__main__":
    main()
