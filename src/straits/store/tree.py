"""The Merkle tree over the ledger, kept in the database (table ``ledger_nodes``).

Appending entry ``n`` writes its leaf and the hash of every perfect subtree it completes (one on
average, ``log n`` at most), reading only the left siblings it combines with. A proof then reads
the ``O(log n)`` perfect subtrees :mod:`straits.store.merkle` says it is made of, in one query,
and hashes only the few ``log n`` nodes on the tree's right edge that are not perfect: a receipt
at a million entries takes about a millisecond, whatever the log's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, Select, and_, or_, select
from sqlalchemy.orm import Session

from straits.store import merkle
from straits.store.merkle import Node
from straits.store.tables import LedgerNode

#: nodes asked for in one query (well under SQLite's bound-parameter limit)
FETCH_CHUNK = 400


class MissingNodeError(LookupError):
    """A node the tree must hold is not in the table: rows were deleted."""

    def __init__(self, node: Node) -> None:
        self.node = node
        level, idx = node
        first, last = idx << level, ((idx + 1) << level) - 1
        super().__init__(
            f"the Merkle tree has no hash for entries {first + 1} to {last + 1} "
            f"(node {level}/{idx}): tree rows were deleted"
        )


def add_leaf(session: Session, index: int, leaf: bytes) -> None:
    """Store leaf ``index`` (0-based) and every perfect subtree it completes. The left siblings
    it combines with are the subtrees at the index's trailing one-bits: one query reads them."""
    ones = (index ^ (index + 1)).bit_length() - 1
    siblings = fetch(session, [(level, (index >> level) - 1) for level in range(ones)])
    h = leaf
    nodes = [LedgerNode(level=0, idx=index, hash=leaf.hex())]
    for level in range(ones):
        h = merkle.node_hash(siblings[(level, (index >> level) - 1)], h)
        nodes.append(LedgerNode(level=level + 1, idx=index >> (level + 1), hash=h.hex()))
    session.add_all(nodes)


def fetch_query(nodes: Iterable[Node]) -> Select[int, int, str]:
    """One ``level = L AND idx IN (...)`` term per level: SQLite (multi-index OR) and PostgreSQL
    both answer it from the primary key; a row-value ``(level, idx) IN`` made SQLite scan the
    whole table (190 ms a proof at 10^5 entries)."""
    by_level: dict[int, list[int]] = {}
    for level, idx in nodes:
        by_level.setdefault(level, []).append(idx)
    return select(LedgerNode.level, LedgerNode.idx, LedgerNode.hash).where(
        or_(
            *(
                and_(LedgerNode.level == level, LedgerNode.idx.in_(idxs))
                for level, idxs in by_level.items()
            )
        )
    )


def fetch(session: Session | Connection, nodes: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of ``nodes``; :class:`MissingNodeError` names the first missing."""
    wanted = sorted(set(nodes))
    out: dict[Node, bytes] = {}
    if not wanted:
        return out
    for i in range(0, len(wanted), FETCH_CHUNK):
        for level, idx, h in session.execute(fetch_query(wanted[i : i + FETCH_CHUNK])):
            out[(level, idx)] = _unhex(h, (level, idx))
    for node in wanted:
        if node not in out:
            raise MissingNodeError(node)
    return out


def _unhex(h: str, node: Node) -> bytes:
    try:
        raw = bytes.fromhex(h)
    except (ValueError, TypeError):  # TypeError: not text (SQLite keeps a BLOB in the column)
        raw = b""
    if len(raw) != merkle.HASH_SIZE:
        level, idx = node
        raise ValueError(
            f"the stored hash of tree node {level}/{idx} is not a SHA-256 hash: "
            "the tree was altered"
        )
    return raw


@dataclass(frozen=True)
class Proofs:
    """Roots and proofs for several questions answered from one fetch of node hashes."""

    hashes: dict[Node, bytes]

    def root(self, size: int) -> bytes:
        return merkle.root(size, self.hashes)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(index, size, self.hashes)

    def consistency(self, first: int, second: int) -> list[bytes]:
        return merkle.consistency_proof(first, second, self.hashes)


def proofs(
    session: Session | Connection,
    *,
    roots: Iterable[int] = (),
    inclusions: Iterable[tuple[int, int]] = (),
    consistencies: Iterable[tuple[int, int]] = (),
) -> Proofs:
    """Fetch, in one query, every node needed for the roots of the sizes in ``roots``, the
    inclusion proofs ``(index, size)`` and the consistency proofs ``(first, second)``."""
    needed: set[Node] = set()
    for size in roots:
        needed |= merkle.root_nodes(size)
    for index, size in inclusions:
        needed |= merkle.inclusion_nodes(index, size)
    for first, second in consistencies:
        needed |= merkle.consistency_nodes(first, second)
    return Proofs(fetch(session, needed))


# --- building and checking from the entries ------------------------------------------------------
def level_hashes(
    session: Session | Connection, level: int, *, chunk: int = 20000
) -> Iterator[tuple[int, bytes]]:
    """(idx, hash) of one level in order, read in keyset pages (no long-lived cursor)."""
    after = -1
    while True:
        rows = session.execute(
            select(LedgerNode.idx, LedgerNode.hash)
            .where(LedgerNode.level == level, LedgerNode.idx > after)
            .order_by(LedgerNode.idx)
            .limit(chunk)
        ).all()
        for idx, h in rows:
            yield idx, _unhex(h, (level, idx))
        if len(rows) < chunk:
            return
        after = rows[-1][0]


@dataclass(frozen=True)
class TreeProblem:
    node: Node
    problem: str

    @property
    def first_entry(self) -> int:
        level, idx = self.node
        return (max(idx, 0) << max(level, 0)) + 1  # a node at a negative place: from entry 1


def check_levels(session: Session | Connection, size: int) -> TreeProblem | None:
    """Check every stored interior node against its two children (level 0 is checked against
    the entries by the caller), and that no node lies beyond ``size`` leaves."""
    negative = session.execute(
        select(LedgerNode.level, LedgerNode.idx)
        .where(or_(LedgerNode.level < 0, LedgerNode.idx < 0))
        .limit(1)
    ).first()
    if negative is not None:  # no node of the tree is there: a row put in by hand (led29)
        return TreeProblem(
            (negative[0], negative[1]),
            "the Merkle tree holds a node at a negative level or index: the tree was altered",
        )
    level, width = 1, size // 2
    while True:
        below = level_hashes(session, level - 1)
        got = level_hashes(session, level)
        for i in range(width):
            (li, left), (ri, right) = next(below, (-1, b"")), next(below, (-1, b""))
            if (li, ri) != (2 * i, 2 * i + 1):
                return TreeProblem(
                    (level - 1, 2 * i),
                    f"the Merkle tree lacks a node under entries {(2 * i << (level - 1)) + 1}..",
                )
            idx, h = next(got, (-1, b""))
            if idx != i:
                return TreeProblem(
                    (level, i), "a Merkle tree node is missing: tree rows were deleted"
                )
            if h != merkle.node_hash(left, right):
                return TreeProblem(
                    (level, i),
                    "a Merkle tree node does not match its children: the tree was altered",
                )
        extra = next(got, None)
        if extra is not None:
            return TreeProblem(
                (level, extra[0]),
                "the Merkle tree holds nodes beyond the last entry: entries were removed",
            )
        if width == 0:
            stray = session.execute(
                select(LedgerNode.level, LedgerNode.idx).where(LedgerNode.level > level).limit(1)
            ).first()
            if stray is not None:
                return TreeProblem(
                    (stray[0], stray[1]),
                    "the Merkle tree holds nodes beyond the last entry: entries were removed",
                )
            return None
        level, width = level + 1, width // 2
