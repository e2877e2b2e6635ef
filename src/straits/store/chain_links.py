"""An entry's chain hashes as a proven read holds them (``proven``): its ``hash`` against its
content and ``prev_hash`` (led50), and its ``prev_hash`` against the stored ``hash`` of the entry
before it in the global chain (chain64). Neither is in the entry's Merkle leaf, and both are
served: the report's and the console's "Entry hash", ``ledger show``, the API's entries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from straits.errors import LedgerError
from straits.store.ledger import GENESIS, Entry
from straits.store.tables import LedgerRow


def chain_problem(entry: Entry) -> LedgerError | None:
    """What is wrong with ``entry``'s stored chain ``hash`` against its own fields, or None."""
    if entry.hash != entry.expected_hash():
        return LedgerError(
            f"ledger entry {entry.seq}: its stored chain hash or prev_hash does not match its "
            "content (the entry was altered)",
            entry.seq,
        )
    return None


def broken_links(s: Session, entries: list[Entry]) -> dict[int, LedgerError]:
    """The entries of ``entries`` whose ``prev_hash`` is not their predecessor's stored
    ``hash`` (the genesis hash for entry 1): a forger who rewrote an entry's ``prev_hash``
    and recomputed its ``hash`` (plain SHA-256) passed :func:`chain_problem` (rev50).
    A page's entries are checked against each other, and the predecessors it lacks read in
    one query, in the session that reads the tree (one row for a page of consecutive
    entries; a tenant's entries need not be adjacent in the global chain). Both hashes are
    written once, the predecessor committed with or before the entry, so no append can make
    an intact log fail here. A predecessor whose own stored hash does not match its content
    is the one altered (its reads refuse it), not the entry after it that records its true
    hash. A predecessor with no row refuses the entry after it too (led65: a writer who deleted
    entry N and rewrote N+1's ``prev_hash`` had N+1 served as proven): the store removes no
    ledger row by design (no compaction, no pruning below a checkpoint), so a missing
    predecessor is a deletion, found in the one query above, and N+1's link cannot be held."""
    known: dict[int, str] = {e.seq: e.hash for e in entries}
    want = sorted({e.seq - 1 for e in entries if e.seq > 1} - known.keys())
    for i in range(0, len(want), 500):  # SQLite's older limit on bound parameters: 999
        rows = s.execute(
            select(LedgerRow.seq, LedgerRow.hash).where(LedgerRow.seq.in_(want[i : i + 500]))
        ).all()
        known.update((int(r[0]), str(r[1])) for r in rows)
    mine = {e.seq: e for e in entries}
    bad: dict[int, LedgerError] = {}
    for e in entries:
        prev = GENESIS if e.seq == 1 else known.get(e.seq - 1)
        if prev is None:
            bad[e.seq] = LedgerError(
                f"ledger entry {e.seq}: the entry before it was removed from the database, "
                "so its prev_hash cannot be held to that entry's hash (the log was cut "
                "there, and this entry may have been re-hashed to hide it)",
                e.seq,
            )
            continue
        if e.prev_hash == prev:
            continue
        before = mine.get(e.seq - 1) if e.seq > 1 else None
        if e.seq > 1 and before is None:  # read whole only here: a tampered log
            row: Any = s.execute(
                select(LedgerRow.__table__).where(LedgerRow.seq == e.seq - 1)
            ).first()
            before = Entry.from_row(row) if row is not None else None
        if before is not None and e.prev_hash == before.expected_hash():
            continue  # the predecessor's stored hash was edited: it is the altered one
        bad[e.seq] = LedgerError(
            f"ledger entry {e.seq}: its prev_hash is not the stored hash of the entry before "
            "it (the entry was altered and re-hashed, or its predecessor was)",
            e.seq,
        )
    return bad
