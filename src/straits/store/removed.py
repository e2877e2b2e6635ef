"""Entries the log holds whose rows are gone: a number at or below the log's head (the size of
its tree), or below a tenant's last entry, with no row in the ``ledger`` table.

A deleted entry was read as one never recorded: the API answered ``404 no ledger entry`` for
it, a tenant's list skipped its number, and ``ledger show`` left it out, exit 0 (or said
``no ledger entry N``, exit 2: bad input), while a signed checkpoint and the Merkle tree still
covered it (atk69). Every read of an entry by its number and every list goes through here: a
number the log holds with no row is :class:`RemovedEntryError` (a ``LedgerError``: exit 1,
``409``), a number beyond it is still no entry. A tenant's last entry deleted leaves no gap in
its numbering: only its verification (``tenant_verify``: entries missing after its last one)
tells it.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from straits.errors import LedgerError
from straits.store import checkpoints
from straits.store.db import Store
from straits.store.ledger import MAX_ENTRY
from straits.store.tables import LedgerRow


class RemovedEntryError(LedgerError):
    """An entry the log holds whose row was deleted from the database. ``tenant_seq`` is its
    number in its tenant's numbering where a tenant asked for it (``seq``, the global number,
    is then unknown: None)."""

    def __init__(self, message: str, seq: int | None = None, tenant_seq: int | None = None):
        self.tenant_seq = tenant_seq
        super().__init__(message, seq)


def removed(seq: int, head: int) -> RemovedEntryError:
    return RemovedEntryError(
        f"ledger entry {seq} was removed from the database: the log (its tree of {head} "
        "entries) still holds it",
        seq,
    )


def tenant_removed(tenant: str, n: int) -> RemovedEntryError:
    return RemovedEntryError(
        f"ledger entry {n} of tenant {tenant!r} was removed from the database, or moved to "
        "another tenant: the tenant has entries numbered after it",
        tenant_seq=n,
    )


def head_size(store: Store) -> int:
    with store.session() as s:
        return checkpoints.tree_head_size(s)


def global_seq(store: Store, tenant: str | None, n: int) -> int | None:
    """The global number of entry ``n`` as the caller numbers it (``tenant`` None: the global
    number itself), None when there is no such entry; :class:`RemovedEntryError` when the
    log holds it but its row is gone (``n`` at or below the head; for a tenant, below the
    number of its last entry)."""
    if not 1 <= n <= MAX_ENTRY:
        return None
    # what shows the entry was made is read before the entry: on PostgreSQL (READ COMMITTED)
    # each statement sees what is committed when it starts, so an entry appended between a
    # read of "no row" and a read of a head that holds it was reported removed (atk77: 16 of
    # 1,801 entries followed as they were appended). Read after, the entry is visible unless
    # it was deleted.
    with store.session() as s:
        if tenant is None:
            head = checkpoints.tree_head_size(s)
            if s.get(LedgerRow, n) is not None:
                return n
            if n <= head:
                raise removed(n, head)
            _not_cut(s)
            return None
        after = s.execute(
            select(LedgerRow.seq)
            .where(LedgerRow.tenant == tenant, LedgerRow.tenant_seq > n)
            .limit(1)
        ).first()
        seq = s.scalar(
            select(LedgerRow.seq).where(LedgerRow.tenant == tenant, LedgerRow.tenant_seq == n)
        )
        if seq is not None:
            if not 1 <= seq <= MAX_ENTRY:  # renumbered outside any log (rev65: a 500)
                raise LedgerError(
                    f"ledger entry {n} of tenant {tenant!r} is numbered {seq} in the log, "
                    "outside it: the ledger table was altered"
                )
            return int(seq)
        if after is None:
            _not_cut(s)
    if after is not None:
        raise tenant_removed(tenant, n)
    return None


def not_cut(store: Store) -> None:
    """Nothing, when the stored log is at least as long as its latest checkpoint; otherwise
    the ``LedgerError`` a proven read of an entry gives (entries removed from the end). Asked
    before an answer that finds no entry (a number past the head, a page with no entry): a
    log cut below its signed checkpoint, its tree and head cut to match, answered them as a
    log that never held those entries (404, an empty page, ``ledger show`` exit 0), where a
    read that found a row was a 409 (led63)."""
    with store.session() as s:
        _not_cut(s)


def _not_cut(s: Session) -> None:
    # the checkpoint before the head, as ``proven.prove_in`` reads them: the log only grows,
    # so a head read after a checkpoint covers it even where each statement sees the latest
    # commit (PostgreSQL's READ COMMITTED). Read the other way, an append and a checkpoint
    # signed over it, committed between the two reads, was a "cut" log (rev63)
    row = checkpoints.latest_row(s)
    head = checkpoints.tree_head_size(s)
    # the size column, unsigned: a row whose size was raised (or forged) is an altered
    # database too, a 409 either way; ``ledger verify`` tells which
    if row is not None and int(row.size) > head:
        raise LedgerError(
            f"a checkpoint was signed at {row.size} entries but the log has {head}: "
            "entries were removed from the end",
            head + 1,
        )


def first_gap(numbers: Iterable[int], start: int, step: int = 1) -> int | None:
    """The first number missing from ``numbers`` (a tenant's entries in order, ascending with
    ``step`` 1 or descending with -1) counted from ``start``; a number repeated is no gap (the
    entry's proof fails instead)."""
    expected = start
    for n in numbers:
        if (n - expected) * step > 0:
            return expected
        expected = n + step
    return None


def missing(store: Store, since: int, end: int, at_most: int) -> list[int]:
    """The numbers from ``since`` to ``end`` (both included) with no row, the first
    ``at_most`` of them: one count over the primary key when none is missing."""
    if end < since:
        return []
    window = (LedgerRow.seq >= since, LedgerRow.seq <= end)
    with store.session() as s:
        have = int(s.scalar(select(func.count()).select_from(LedgerRow).where(*window)) or 0)
        if have == end - since + 1:
            return []
        out: list[int] = []
        expected = since
        for (seq,) in s.execute(select(LedgerRow.seq).where(*window).order_by(LedgerRow.seq)):
            while expected < seq and len(out) < at_most:
                out.append(expected)
                expected += 1
            if len(out) >= at_most:
                return out
            expected = int(seq) + 1
        while expected <= end and len(out) < at_most:
            out.append(expected)
            expected += 1
    return out
