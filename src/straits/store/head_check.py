"""Whether the ledger's head row names its last entry, for the quick check: the full check
(``ledger.verify``) and every append (``ledger._check_tail``) hold the head to it; the quick
check said "verifies" of a head rewound, or re-hashed, by hand (a fresh-eye attack)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from straits.store.tables import LedgerHead, LedgerRow


def head_problem(s: Session, n: int, head_hash: str) -> tuple[int, str, str] | None:
    """(first bad entry, problem, tamper code) where the head row, read as entry ``n`` of hash
    ``head_hash``, is not the log's last entry; None where it is. Three primary-key reads. An
    entry past the head counts only when the head, read again, is still behind it: an append
    commits its entry and the head together, so one made meanwhile (PostgreSQL's READ
    COMMITTED) has moved the head past it too."""
    at_n = s.execute(select(LedgerRow.hash).where(LedgerRow.seq == n)).first() if n else None
    if n and at_n is None:
        return (
            n,
            f"the ledger head records entry {n}, which the log does not hold: entries were "
            "removed from the end, or the head was altered",
            "tail-removed",
        )
    if at_n is not None and str(at_n[0]) != head_hash:
        return (
            n,
            f"the ledger head records entry {n} with another hash: the head or the last "
            "entries were altered",
            "head-altered",
        )
    last = s.execute(select(func.max(LedgerRow.seq))).scalar()
    if last is not None and int(last) > n:
        again = s.execute(select(LedgerHead.seq).where(LedgerHead.id == 1)).scalar()
        if again is None or int(again) < int(last):
            return (
                n + 1,
                f"the log holds entries up to {last} but the ledger head records {n}: the "
                "head was altered",
                "head-altered",
            )
    return None
