"""Every proof and checkpoint the ledger emits, checked by a verifier written here from the
published specs alone (hostile pass proof51), and every mutation of one rejected by Straits'
own verifiers as well as by this one.

The verifier below imports nothing of Straits: RFC 6962 2.1 (the Merkle tree hash, the audit
path ``PATH(m, D[n])`` and the consistency proof ``SUBPROOF(m, D[n], b)``, checked by the
same recursion that defines them, not by RFC 9162's bit-walking loop that ``store/merkle.py``
uses), c2sp.org/signed-note (signature lines ``— name base64(key id || signature)``, the key
id the first four bytes of ``SHA-256(name || 0x0A || 0x01 || public key)``) verified with
``cryptography``'s Ed25519 directly, and c2sp.org/tlog-checkpoint (origin, size, base64 root).
The log is built once (sizes 1..70 checkpointed as it grows, then 71..140 with checkpoints at
powers of two and one past them) and shared by the module.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from straits.store import Store, checkpoints, ledger, merkle, tree
from straits.store.keys import Keys, load_signer
from straits.store.note import Signer
from straits.store.receipts import make_receipt, verify_receipt
from test_ledger_cli import ORIGIN, new_keyfile, straits

# --- the independent verifier --------------------------------------------------------------------
SIG_PREFIX = "\u2014 "  # an em dash and a space (c2sp.org/signed-note)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(data: bytes) -> bytes:
    return sha(b"\x00" + data)


def node(left: bytes, right: bytes) -> bytes:
    return sha(b"\x01" + left + right)


def k_of(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) of leaf hashes."""
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = k_of(len(leaves))
    return node(mth(leaves[:k]), mth(leaves[k:]))


class Rejected(Exception):
    pass


def path_root(m: int, n: int, leaf_hash: bytes, path: list[bytes]) -> bytes:
    """The root that PATH(m, D[n]) gives (RFC 6962 2.1.1: the path lists the deepest sibling
    first, so the recursion takes the last element at each level)."""
    if any(len(h) != 32 for h in path) or len(leaf_hash) != 32:
        raise Rejected("not a SHA-256 hash")
    if not 0 <= m < n:
        raise Rejected("index out of range")
    if n == 1:
        if path:
            raise Rejected("path longer than the tree")
        return leaf_hash
    if not path:
        raise Rejected("path shorter than the tree")
    k = k_of(n)
    if m < k:
        return node(path_root(m, k, leaf_hash, path[:-1]), path[-1])
    return node(path[-1], path_root(m - k, n - k, leaf_hash, path[:-1]))


def verify_inclusion(m: int, n: int, leaf_hash: bytes, path: list[bytes], root: bytes) -> None:
    if path_root(m, n, leaf_hash, path) != root:
        raise Rejected("inclusion")


def _sub(m: int, n: int, b: bool, proof: list[bytes], old: bytes) -> tuple[bytes, bytes]:
    """(MTH(D[0:m]), MTH(D[0:n])) from SUBPROOF(m, D[n], b) (RFC 6962 2.1.2)."""
    if m == n:
        if b:
            if proof:
                raise Rejected("proof longer than the recursion")
            return old, old
        if len(proof) != 1:
            raise Rejected("proof length")
        return proof[0], proof[0]
    if not proof:
        raise Rejected("proof shorter than the recursion")
    k = k_of(n)
    if m <= k:
        o, new = _sub(m, k, b, proof[:-1], old)
        return o, node(new, proof[-1])
    o, new = _sub(m - k, n - k, False, proof[:-1], old)
    return node(proof[-1], o), node(proof[-1], new)


def verify_consistency(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> None:
    if any(len(h) != 32 for h in (old, new, *proof)):
        raise Rejected("not a SHA-256 hash")
    if not 0 <= m <= n:
        raise Rejected("shrinks")
    if m == n or m == 0:
        if proof or (m == n and old != new) or (m == 0 and old != sha(b"")):
            raise Rejected("trivial proof")
        return
    o, r = _sub(m, n, True, proof, old)
    if o != old or r != new:
        raise Rejected("consistency")


@dataclass(frozen=True)
class Head:
    origin: str
    size: int
    root: bytes


def verify_note(note: str, vkey: str) -> Head:
    """A c2sp.org/tlog-checkpoint in a c2sp.org/signed-note, signed by ``vkey``."""
    try:
        return _verify_note(note, vkey)
    except ValueError as exc:  # base64, a size that is no number
        raise Rejected(str(exc)) from None


def _verify_note(note: str, vkey: str) -> Head:
    name, hex_id, b64 = vkey.split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    assert raw[0] == 1 and len(raw) == 33
    assert sha(name.encode() + b"\n\x01" + raw[1:])[:4] == bytes.fromhex(hex_id)
    key = Ed25519PublicKey.from_public_bytes(raw[1:])
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise Rejected("not a note")
    text, sigs = note[: cut + 1], note[cut + 2 : -1].split("\n")
    good = False
    for line in sigs:
        if not line.startswith(SIG_PREFIX):
            raise Rejected("not a signature line")
        who, _, blob = line[len(SIG_PREFIX) :].partition(" ")
        sig = base64.b64decode(blob, validate=True)
        if who != name or sig[:4] != bytes.fromhex(hex_id):
            continue
        try:
            key.verify(sig[4:], text.encode())
        except InvalidSignature:
            raise Rejected("bad signature") from None
        good = True
    if not good:
        raise Rejected("unsigned")
    lines = text.split("\n")
    if len(lines) < 4 or lines[0] != name:
        raise Rejected("origin")
    if lines[1] != str(int(lines[1])):
        raise Rejected("size")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise Rejected("root")
    return Head(lines[0], int(lines[1]), root)


def leaf_of(entry: dict[str, Any]) -> bytes:
    """The leaf as docs/server-and-ledger.md defines it: SHA-256(0x00 || canonical JSON)."""
    fields = ("seq", "tenant_seq", "recorded_at", "tenant", "actor", "kind", "body", "salt")
    data = json.dumps(
        {f: entry[f] for f in fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return leaf(data.encode("utf-8"))


def verify_receipt_doc(doc: dict[str, Any], vkey: str) -> None:
    head = verify_note(doc["checkpoint"], vkey)
    if head.size != doc["tree_size"]:
        raise Rejected("size")
    proof = [base64.b64decode(h, validate=True) for h in doc["inclusion_proof"]]
    verify_inclusion(doc["entry"]["seq"] - 1, head.size, leaf_of(doc["entry"]), proof, head.root)


# --- the log -------------------------------------------------------------------------------------
POWERS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129]
SIZES = sorted(set(range(1, 71)) | {95, 127, 128, 129, 140})
TOP = 140


@dataclass
class Log:
    db: str
    store: Store
    signer: Signer
    keyfile: Path
    vkey: str
    notes: dict[int, str]
    receipts: dict[tuple[int, int], dict[str, Any]]
    leaves: list[bytes]


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    keyfile = new_keyfile(tmp_path_factory)
    signer = load_signer(keyfile)
    keys = Keys(signer)
    db = f"sqlite:///{tmp_path_factory.mktemp('proofs') / 'l.db'}"
    store = Store(db)
    notes: dict[int, str] = {}
    receipts: dict[tuple[int, int], dict[str, Any]] = {}
    for n in range(1, TOP + 1):
        ledger.record(
            store, tenant="ab"[n % 2], actor="t", kind="check", body={"i": n, "\u00e9": "\u2603"}
        )
        if n in SIZES:
            notes[n] = checkpoints.issue(store, signer).note
            for seq in sorted({1, n, (n + 1) // 2, max(1, n - 1)}):
                receipts[(seq, n)] = make_receipt(store, seq, keys)
    entries = list(ledger.entries(store, limit=TOP + 1))
    leaves = [leaf_of(e.leaf_json()) for e in entries]
    return Log(db, store, signer, keyfile, signer.verifier.vkey, notes, receipts, leaves)


# --- everything Straits emits verifies here ------------------------------------------------------
def test_leaf_bytes_match_the_docs(log: Log) -> None:
    entries = list(ledger.entries(log.store, limit=TOP + 1))
    assert [e.leaf_hash() for e in entries] == log.leaves


def test_every_checkpoint_verifies_and_its_root_is_the_tree_of_its_entries(log: Log) -> None:
    for n, note in log.notes.items():
        head = verify_note(note, log.vkey)
        assert (head.origin, head.size, head.root) == (ORIGIN, n, mth(log.leaves[:n]))


def test_every_receipt_verifies(log: Log) -> None:
    for (seq, n), doc in log.receipts.items():
        assert doc["tree_size"] == n and doc["entry"]["seq"] == seq
        verify_receipt_doc(doc, log.vkey)
        assert verify_receipt(doc, [log.signer.verifier]).entry.seq == seq


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_consistency_proofs_between_checkpoints(log: Log, data: st.DataObject) -> None:
    n = data.draw(st.sampled_from(SIZES))
    m = data.draw(st.sampled_from([s for s in SIZES if s <= n] + [s for s in POWERS if s <= n]))
    with log.store.session() as s:
        proof = checkpoints.consistency_proof(s, m, n)
    old, new = verify_note(log.notes[m], log.vkey), verify_note(log.notes[n], log.vkey)
    verify_consistency(m, n, old.root, new.root, proof)
    merkle.verify_consistency(m, n, old.root, new.root, proof)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_inclusion_proofs_any_index_any_size(log: Log, data: st.DataObject) -> None:
    n = data.draw(st.sampled_from(SIZES))
    i = data.draw(st.sampled_from([0, n - 1, n // 2]) | st.integers(0, n - 1))
    with log.store.session() as s:
        proof = tree.proofs(s, inclusions=[(i, n)]).inclusion(i, n)
    root = verify_note(log.notes[n], log.vkey).root
    verify_inclusion(i, n, log.leaves[i], proof, root)
    merkle.verify_inclusion(i, n, log.leaves[i], proof, root)


def test_all_pairs_up_to_70(log: Log) -> None:
    with log.store.session() as s:
        for n in range(1, 71):
            root = log.notes[n]
            new = verify_note(root, log.vkey).root
            for m in range(0, n + 1):
                old = verify_note(log.notes[m], log.vkey).root if m else sha(b"")
                verify_consistency(m, n, old, new, checkpoints.consistency_proof(s, m, n))
            ps = tree.proofs(s, inclusions=[(i, n) for i in range(n)])
            for i in range(n):
                verify_inclusion(i, n, log.leaves[i], ps.inclusion(i, n), new)


def test_cli_checkpoint_and_receipt_verify(log: Log, tmp_path: Path) -> None:
    key = str(log.keyfile)
    for since in (0, 1, 2, 64, 65, 128, 129, TOP):
        r = straits("ledger", "checkpoint", "--db", log.db, "--key", key, "--since", str(since))
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        head = verify_note(doc["checkpoint"], log.vkey)
        assert (head.size, head.root.hex()) == (doc["size"], doc["root_hash"])
        c = doc["consistency"]
        assert (c["from"], c["to"]) == (since, TOP)
        old = verify_note(log.notes[since], log.vkey).root if since else sha(b"")
        proof = [base64.b64decode(h) for h in c["proof"]]
        verify_consistency(since, TOP, old, head.root, proof)
    for seq in (1, 2, 64, 65, 128, 129, TOP):
        out = tmp_path / f"r{seq}.json"
        r = straits("ledger", "receipt", str(seq), "--db", log.db, "--key", key, "-o", str(out))
        assert r.returncode == 0, r.stderr
        verify_receipt_doc(json.loads(out.read_text()), log.vkey)
        r = straits("ledger", "verify-receipt", str(out), "--pubkey", log.vkey)
        assert r.returncode == 0, r.stderr


def test_api_checkpoint_consistency_and_receipts_verify(log: Log) -> None:
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.server.settings import Settings
    from straits.store.tokens import create_token

    admin, _ = create_token(log.store, "a", "admin")
    tenant, _ = create_token(log.store, "b", "viewer")
    app = create_app(log.store, settings=Settings())
    app.state.ledger_keys = Keys(log.signer)
    with TestClient(app, raise_server_exceptions=False) as client:
        for token in (admin, tenant):
            h = {"Authorization": f"Bearer {token}"}
            for since in (0, 1, 64, 65, 70, TOP):
                r = client.get("/v1/ledger/checkpoint", params={"since": since}, headers=h)
                assert r.status_code == 200, r.text
                doc = r.json()
                head = verify_note(doc["checkpoint"], log.vkey)
                assert head.root == mth(log.leaves[: head.size])
                old = verify_note(log.notes[since], log.vkey).root if since else sha(b"")
                proof = [base64.b64decode(x) for x in doc["consistency"]["proof"]]
                verify_consistency(since, head.size, old, head.root, proof)
            for first, second in ((0, 1), (1, 1), (1, 2), (3, 70), (64, 65), (65, 129), (1, TOP)):
                r = client.get(
                    "/v1/ledger/consistency", params={"first": first, "second": second}, headers=h
                )
                assert r.status_code == 200, r.text
                old = verify_note(log.notes[first], log.vkey).root if first else sha(b"")
                new = verify_note(log.notes[second], log.vkey).root
                proof = [base64.b64decode(x) for x in r.json()["proof"]]
                verify_consistency(first, second, old, new, proof)
        h = {"Authorization": f"Bearer {tenant}"}
        for seq in (1, 2, 32, 33, TOP // 2):
            r = client.get(f"/v1/ledger/entries/{seq}/receipt", headers=h)
            assert r.status_code == 200, r.text
            doc = r.json()
            assert (doc["entry"]["tenant"], doc["entry"]["tenant_seq"]) == ("b", seq)
            verify_receipt_doc(doc, log.vkey)
