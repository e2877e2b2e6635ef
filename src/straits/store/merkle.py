"""RFC 6962 / RFC 9162 Merkle tree hashing and proofs, as pure functions.

Leaf hash ``SHA-256(0x00 || data)``, node hash ``SHA-256(0x01 || left || right)``, the empty
tree's hash ``SHA-256("")``; a tree of ``n`` leaves splits at the largest power of two below
``n`` (RFC 9162 section 2.1.1). Proofs (section 2.1.3 and 2.1.4) are lists of hashes of
subtrees; every such subtree is a run of *perfect* subtrees (``2**level`` leaves starting at a
multiple of ``2**level``), so a log that keeps the hash of every perfect subtree answers any
proof by reading ``O(log n)`` stored hashes, never by rehashing the leaves. This module says
which perfect subtrees a proof needs (:func:`inclusion_nodes`, :func:`consistency_nodes`) and
assembles the proof from their hashes; the store fetches them (``store/tree.py``).

Verification follows RFC 9162's algorithms literally and needs nothing but the hashes.

Why not a library: the proofs must be computed from node hashes kept in Straits' own database
in the same transaction as each entry (SQLite or PostgreSQL); the Python Merkle libraries keep
their own storage, and the verifier side is the 40 lines of RFC 9162 below. The tests check all
of it against the RFC 6962 vectors published by transparency-dev/merkle and against an
independent reference written in the test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]
"""A perfect subtree: (level, index); it holds leaves ``[index * 2**level, (index + 1) *
2**level)``."""
Range = tuple[int, int]
"""Leaves ``[start, end)``."""


class ProofError(ValueError):
    """A proof does not verify, or its sizes make no sense."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --- which subtrees a proof is made of ----------------------------------------------------------
def perfect_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees whose hashes make up ``MTH(D[start:end])``, left to right, for a
    range that occurs in the RFC 6962 recursion (its left parts are perfect)."""
    out: list[Node] = []
    while start < end:
        size = end - start
        if size & (size - 1) == 0 and start % size == 0:
            out.append((size.bit_length() - 1, start // size))
            break
        k = split(size)
        out.append((k.bit_length() - 1, start // k))
        start += k
    return out


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """RFC 9162 PATH(index, D[size]) as leaf ranges, from the leaf's sibling up."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    out: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start += k
    out.reverse()
    return out


def consistency_ranges(first: int, second: int) -> list[Range]:
    """RFC 9162 PROOF(first, D[second]) as leaf ranges (empty when first is 0 or equal)."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    out: list[Range] = []
    start, end, m, whole = 0, second, first, True
    while True:
        n = end - start
        if m == n:
            if not whole:
                out.append((start, end))
            break
        k = split(n)
        if m <= k:
            out.append((start + k, end))
            end = start + k
        else:
            out.append((start, start + k))
            start, m, whole = start + k, m - k, False
    out.reverse()
    return out


def nodes_for(ranges: Iterable[Range]) -> set[Node]:
    return {node for a, b in ranges for node in perfect_nodes(a, b)}


def range_hash(start: int, end: int, hashes: Mapping[Node, bytes]) -> bytes:
    """``MTH(D[start:end])`` from the hashes of its perfect subtrees (``ProofError`` for a
    range that is no range: a negative size read from an altered head)."""
    if not 0 <= start <= end:
        raise ProofError(f"no tree of leaves {start} to {end}")
    if start == end:
        return EMPTY_ROOT
    parts = [hashes[node] for node in perfect_nodes(start, end)]
    acc = parts[-1]
    for h in reversed(parts[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_nodes(index: int, size: int) -> set[Node]:
    return nodes_for(inclusion_ranges(index, size))


def consistency_nodes(first: int, second: int) -> set[Node]:
    return nodes_for(consistency_ranges(first, second))


def root_nodes(size: int) -> set[Node]:
    if size < 0:
        raise ProofError(f"no tree of {size} leaves")
    return set(perfect_nodes(0, size))


def inclusion_proof(index: int, size: int, hashes: Mapping[Node, bytes]) -> list[bytes]:
    return [range_hash(a, b, hashes) for a, b in inclusion_ranges(index, size)]


def consistency_proof(first: int, second: int, hashes: Mapping[Node, bytes]) -> list[bytes]:
    return [range_hash(a, b, hashes) for a, b in consistency_ranges(first, second)]


def root(size: int, hashes: Mapping[Node, bytes]) -> bytes:
    return range_hash(0, size, hashes)


# --- verification (RFC 9162 2.1.3.2 and 2.1.4.2) -------------------------------------------------
def _check_hashes(*hashes: bytes) -> None:
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise ProofError(f"a hash of {len(h)} bytes; SHA-256 hashes have {HASH_SIZE}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` gives for ``leaf`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    _check_hashes(leaf, *proof)
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes
) -> None:
    """Raise :class:`ProofError` unless ``leaf`` is leaf ``index`` of the tree ``root_hash``
    of ``size`` leaves."""
    if root_from_inclusion(index, size, leaf, proof) != root_hash:
        raise ProofError(f"leaf {index} is not in the tree of {size} leaves with that root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Raise :class:`ProofError` unless the tree ``first_root`` of ``first`` leaves is a prefix
    of the tree ``second_root`` of ``second`` leaves."""
    if not 0 <= first <= second:
        raise ProofError(f"a log cannot shrink from {first} to {second} entries")
    _check_hashes(first_root, second_root, *proof)
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError(f"two different roots for the same size {first}")
        return
    if first == 0:
        if proof:
            raise ProofError("a proof from the empty tree must be empty")
        if first_root != EMPTY_ROOT:  # any root was taken for the empty tree's
            raise ProofError("the root of the empty tree is the hash of nothing")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the tree is deep")
    if fr != first_root:
        raise ProofError(f"the first {first} entries do not hash to the older root")
    if sr != second_root:
        raise ProofError(f"the proof does not lead to the root of the {second}-entry tree")


# --- building ------------------------------------------------------------------------------------
@dataclass
class TreeBuilder:
    """Adds leaves one at a time and reports each perfect subtree as it completes; keeps only
    the right edge (``O(log n)`` hashes), so trees of any size are built in constant memory."""

    size: int = 0
    edge: list[tuple[int, bytes]] = field(default_factory=list)
    """(level, hash) of the perfect subtrees of the right edge, biggest first"""

    def add(self, leaf: bytes) -> Iterator[tuple[int, int, bytes]]:
        """Add a leaf hash; yields (level, index, hash) of the leaf and of every subtree it
        completes."""
        index, level, h = self.size, 0, leaf
        self.size += 1
        yield 0, index, h
        while self.edge and self.edge[-1][0] == level:
            _, left = self.edge.pop()
            h, level, index = node_hash(left, h), level + 1, index >> 1
            yield level, index, h
        self.edge.append((level, h))

    def root(self) -> bytes:
        if not self.edge:
            return EMPTY_ROOT
        acc = self.edge[-1][1]
        for _, h in reversed(self.edge[:-1]):
            acc = node_hash(h, acc)
        return acc


def build(
    leaves: Iterable[bytes], on_node: Callable[[int, int, bytes], None] | None = None
) -> bytes:
    """The root of the tree of ``leaves`` (leaf hashes), calling ``on_node`` for each perfect
    subtree."""
    t = TreeBuilder()
    for leaf in leaves:
        for node in t.add(leaf):
            if on_node is not None:
                on_node(*node)
    return t.root()
