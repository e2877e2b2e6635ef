"""RFC 6962 hashing and proofs: the published vectors (transparency-dev/merkle, the RFC 6962
test data), an independent reference implementation written here from the RFC's recursive
definitions, and property tests that every proof the store computes from node hashes equals
the reference and that no altered proof verifies."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from straits.store import merkle
from straits.store.merkle import ProofError

# --- the published vectors (transparency-dev/merkle testonly/constants.go, proof/verify_test.go)
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
H = bytes.fromhex
# (leaf index 0-based, tree size, proof)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]


# --- an independent reference: RFC 6962 section 2.1, recursively, over the leaf data ------------
def ref_mth(data: list[bytes]) -> bytes:
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + ref_mth(data[:k]) + ref_mth(data[k:])).digest()


def ref_path(m: int, data: list[bytes]) -> list[bytes]:
    n = len(data)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*ref_path(m, data[:k]), ref_mth(data[k:])]
    return [*ref_path(m - k, data[k:]), ref_mth(data[:k])]


def ref_subproof(m: int, data: list[bytes], b: bool) -> list[bytes]:
    n = len(data)
    if m == n:
        return [] if b else [ref_mth(data)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return [*ref_subproof(m, data[:k], b), ref_mth(data[k:])]
    return [*ref_subproof(m - k, data[k:], False), ref_mth(data[:k])]


def ref_proof(m: int, data: list[bytes]) -> list[bytes]:
    return [] if m in (0, len(data)) else ref_subproof(m, data, True)


def stored_hashes(data: list[bytes]) -> dict[tuple[int, int], bytes]:
    """What the store keeps: every perfect subtree's hash, from the builder."""
    out: dict[tuple[int, int], bytes] = {}
    merkle.build(
        (merkle.leaf_hash(d) for d in data), lambda lv, ix, h: out.__setitem__((lv, ix), h)
    )
    return out


# --- vectors -------------------------------------------------------------------------------------
def test_roots_match_the_published_vectors() -> None:
    for n in range(len(LEAVES) + 1):
        assert ref_mth(LEAVES[:n]) == ROOTS[n]
        assert merkle.root(n, stored_hashes(LEAVES[:n])) == ROOTS[n]
        assert merkle.build(merkle.leaf_hash(d) for d in LEAVES[:n]) == ROOTS[n]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, proof: list[bytes]) -> None:
    hashes = stored_hashes(LEAVES[:size])
    assert merkle.inclusion_proof(index, size, hashes) == proof
    merkle.verify_inclusion(index, size, merkle.leaf_hash(LEAVES[index]), proof, ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_vectors(first: int, second: int, proof: list[bytes]) -> None:
    hashes = stored_hashes(LEAVES[:second])
    assert merkle.consistency_proof(first, second, hashes) == proof
    merkle.verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


# --- properties against the reference -------------------------------------------------------------
sizes = st.integers(min_value=1, max_value=70)


@given(sizes, st.data())
def test_every_inclusion_proof_equals_the_reference_and_verifies(
    n: int, data: st.DataObject
) -> None:
    leaves = [i.to_bytes(2, "big") for i in range(n)]
    hashes = stored_hashes(leaves)
    size = data.draw(st.integers(1, n), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = merkle.inclusion_proof(index, size, hashes)
    assert proof == ref_path(index, leaves[:size])
    root = ref_mth(leaves[:size])
    assert merkle.root(size, hashes) == root
    merkle.verify_inclusion(index, size, merkle.leaf_hash(leaves[index]), proof, root)


@given(sizes, st.data())
def test_every_consistency_proof_equals_the_reference_and_verifies(
    n: int, data: st.DataObject
) -> None:
    leaves = [i.to_bytes(2, "big") for i in range(n)]
    hashes = stored_hashes(leaves)
    second = data.draw(st.integers(0, n), label="second")
    first = data.draw(st.integers(0, second), label="first")
    proof = merkle.consistency_proof(first, second, hashes)
    assert proof == ref_proof(first, leaves[:second])
    merkle.verify_consistency(
        first, second, ref_mth(leaves[:first]), ref_mth(leaves[:second]), proof
    )


def _corruptions(proof: list[bytes]) -> list[list[bytes]]:
    out = [[*proof, b"\x00" * 32], [b"\x00" * 32, *proof]]
    if proof:
        out.append(proof[:-1])
        out.append(proof[1:])
        for i in range(len(proof)):
            flipped = bytearray(proof[i])
            flipped[0] ^= 8
            out.append([*proof[:i], bytes(flipped), *proof[i + 1 :]])
    if len(proof) > 1:
        out.append([proof[1], proof[0], *proof[2:]])
    return out


@given(st.integers(2, 40), st.data())
def test_no_altered_inclusion_proof_verifies(n: int, data: st.DataObject) -> None:
    leaves = [i.to_bytes(2, "big") for i in range(n)]
    index = data.draw(st.integers(0, n - 1))
    proof, root = ref_path(index, leaves), ref_mth(leaves)
    leaf = merkle.leaf_hash(leaves[index])
    bad: list[tuple[int, int, bytes, list[bytes]]] = [
        (index ^ 1, n, leaf, proof),
        (index, n // 2, leaf, proof),
        (index, n * 2, leaf, proof),
        (index, n, merkle.leaf_hash(b"other"), proof),
        (index, n, root, proof),
    ]
    bad += [(index, n, leaf, p) for p in _corruptions(proof)]
    for i, sz, lf, p in bad:
        if (i, sz, lf, p) == (index, n, leaf, proof) or i >= sz:
            continue
        if (
            sz == n
            and p == proof
            and i != index
            and ref_path(i, leaves) == proof
            and merkle.leaf_hash(leaves[i]) == lf
        ):
            continue
        with pytest.raises(ProofError):
            merkle.verify_inclusion(i, sz, lf, p, root)


@given(st.integers(3, 40), st.data())
def test_no_altered_consistency_proof_verifies(n: int, data: st.DataObject) -> None:
    leaves = [i.to_bytes(2, "big") for i in range(n)]
    first = data.draw(st.integers(1, n - 1))
    proof = ref_proof(first, leaves)
    r1, r2 = ref_mth(leaves[:first]), ref_mth(leaves)
    for p in _corruptions(proof):
        with pytest.raises(ProofError):
            merkle.verify_consistency(first, n, r1, r2, p)
    for f, s, a, b in (
        (first, n, r2, r1),
        (first, n, r1, r1),
        (first, n * 2, r1, r2),
        (n, first, r2, r1),
    ):
        with pytest.raises(ProofError):
            merkle.verify_consistency(f, s, a, b, proof)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (5, 3), (-1, 4)])
def test_impossible_positions_are_refused(index: int, size: int) -> None:
    with pytest.raises(ProofError):
        merkle.inclusion_ranges(index, size)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, ROOTS[1], [], ROOTS[1])


def test_proofs_read_only_log_n_nodes_at_a_million_entries() -> None:
    n = 1_000_000
    for index in (0, 1, 499_999, 999_999):
        assert len(merkle.inclusion_nodes(index, n)) <= 2 * n.bit_length()
    for first in (1, 3, 524_288, 999_999):
        assert len(merkle.consistency_nodes(first, n)) <= 2 * n.bit_length()
    assert len(merkle.root_nodes(n)) == bin(n).count("1")


def test_hashes_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ProofError):
        merkle.verify_inclusion(0, 2, b"short", [ROOTS[1]], ROOTS[2])
    with pytest.raises(ProofError):
        merkle.verify_consistency(1, 2, ROOTS[1], ROOTS[2], [b"\x00" * 31])


def test_only_the_empty_root_is_a_prefix_of_size_zero() -> None:
    """A consistency 'proof' from size 0 accepted any root: `ledger verify --head 0:<any
    hash>` said 'proven by consistency proof 0 -> N'."""
    merkle.verify_consistency(0, 2, merkle.EMPTY_ROOT, ROOTS[2], [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(0, 2, ROOTS[2], ROOTS[2], [])
