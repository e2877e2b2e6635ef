"""Heads of the log proven against the stored Merkle tree: an older head a user kept
(``SEQ:HASH``, a chain hash or a root) or a signed checkpoint, each by a consistency proof to
the current tree (and a chain-hash head by its chain, for the quick check). Used by both of
``straits ledger verify``'s checks (:mod:`straits.store.integrity`) and by exported logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from straits.store import merkle, tree
from straits.store.ledger import Entry, verify_chain
from straits.store.note import SignedCheckpoint
from straits.store.tables import LedgerRow


@dataclass(frozen=True)
class ChainHead:
    """A head published before checkpoints existed (``SEQ:HASH``): the chain hash of entry
    SEQ, or the Merkle root of the first SEQ entries."""

    seq: int
    hash: str

    def label(self) -> str:
        return f"{self.seq}:{self.hash}"


Head = ChainHead | SignedCheckpoint


def head_label(h: Head) -> str:
    if isinstance(h, ChainHead):
        return h.label()
    return f"checkpoint {h.checkpoint.size}:{h.checkpoint.root_hex}"


class Broken(Exception):
    """A check failed: the first entry it names (or None), what is wrong, and its code."""

    def __init__(self, seq: int | None, problem: str, code: str) -> None:
        self.seq, self.problem, self.code = seq, problem, code


def consistent(
    s: Session,
    first: int,
    first_root: bytes,
    n: int,
    root: bytes,
    what: str,
    nodes: tree.Proofs | None = None,
) -> None:
    """``first_root`` is the root of the first ``first`` entries: checked by a consistency
    proof from the stored tree (raises ``Broken``); ``nodes`` may hold the hashes already."""
    p = nodes if nodes is not None else tree.proofs(s, consistencies=[(first, n)])
    try:
        merkle.verify_consistency(first, n, first_root, root, p.consistency(first, n))
    except merkle.ProofError:
        raise Broken(
            None,
            f"the log is not an extension of {what}: its first {first} "
            "entries were rewritten since",
            "history-rewritten",
        ) from None


def check_head(
    s: Session, h: Head, n: int, root: bytes, nodes: tree.Proofs | None = None
) -> dict[str, Any]:
    if isinstance(h, ChainHead):
        if h.seq > n:
            raise Broken(
                n + 1,
                f"the head {h.seq}:{h.hash[:16]}... records {h.seq} entries "
                f"but the log has {n}: entries {n + 1} to {h.seq} were removed "
                "from the end",
                "tail-removed",
            )
        row = s.get(LedgerRow, h.seq) if h.seq else None
        if row is not None and row.hash == h.hash:
            if nodes is not None:  # the quick check: the chain to it was not walked (below)
                chain_prefix(s, h, n, root)
            return {"head": h.label(), "proven_by": "chain hash of entry " + str(h.seq)}
        try:
            as_root = bytes.fromhex(h.hash)
        except ValueError:
            as_root = b""
        if len(as_root) == merkle.HASH_SIZE:
            try:
                consistent(s, h.seq, as_root, n, root, "", nodes)
                return {"head": h.label(), "proven_by": f"consistency proof {h.seq} -> {n}"}
            except Broken:
                pass
        raise Broken(
            h.seq,
            f"the head {h.seq}:{h.hash[:16]}... is neither the chain hash of "
            f"entry {h.seq} nor the Merkle root of the first {h.seq} entries: "
            "the head is forged, or the log was rewritten",
            "head-forged",
        )
    cp = h.checkpoint
    if cp.size > n:
        raise Broken(
            n + 1,
            f"the checkpoint given signs {cp.size} entries but the log has "
            f"{n}: entries {n + 1} to {cp.size} were removed from the end",
            "tail-removed",
        )
    consistent(s, cp.size, cp.root, n, root, f"the checkpoint given ({cp.size} entries)", nodes)
    return {
        "head": head_label(h),
        "proven_by": f"consistency proof {cp.size} -> {n}",
        "key": f"{h.key.name}+{h.key.id:08x}" if h.key else None,
    }


def chain_prefix(s: Session, h: ChainHead, n: int, root: bytes) -> None:
    """For the quick check, a chain-hash head proven as the full check proves it, up to it
    only: the chain of entries 1 to SEQ ends in that hash, and the tree of their leaves is a
    prefix of the stored tree (a consistency proof). The chain has no shortcut: ``O(SEQ)``.
    Comparing entry SEQ's stored hash alone said a log whose first entries were altered
    (their hash columns kept) extended the published head."""
    q = select(LedgerRow).where(LedgerRow.seq <= h.seq).order_by(LedgerRow.seq)
    builder = merkle.TreeBuilder()

    def chain() -> Iterator[Entry]:
        for r in s.scalars(q).yield_per(500):
            e = Entry.from_row(r)
            for _ in builder.add(e.leaf_hash()):
                pass
            yield e

    v = verify_chain(chain())
    if not v.ok or v.entries != h.seq or v.head_hash != h.hash:
        raise Broken(
            v.first_bad,
            f"the log's first {h.seq} entries no longer end in the head "
            f"{h.seq}:{h.hash[:16]}...: {v.problem or 'they were rewritten'}",
            "history-rewritten",
        )
    consistent(s, h.seq, builder.root(), n, root, f"the head {h.seq}:{h.hash[:16]}...")


def size_of(h: Head) -> int:
    return h.seq if isinstance(h, ChainHead) else h.checkpoint.size
