"""Receipts: one entry, its inclusion proof and a signed checkpoint, checkable offline.

A receipt is JSON::

    {"receipt": "straits-ledger-receipt/1",
     "entry": {"seq", "tenant_seq", "recorded_at", "tenant", "actor", "kind", "body", "salt"},
     "tree_size": N, "inclusion_proof": ["<base64 hash>", ...],
     "checkpoint": "<signed note: origin, N, base64 root, signature>"}

:func:`verify_receipt` needs nothing but the receipt and the log's verifier key: it checks the
checkpoint's signature, recomputes the entry's leaf hash and folds the proof up to the signed
root (RFC 9162). What a receipt reveals beyond the tenant's own entry: the entry's position in
the log (``seq``), the log's size at the checkpoint, and ``log2(N)`` sibling hashes, which are
hashes of other entries' salted leaves or of subtrees: they say how many entries the log held,
never whose they were or what they said.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from straits.errors import InputError, LedgerError
from straits.store import checkpoints, merkle, tree
from straits.store.canonical import utf8
from straits.store.db import Store
from straits.store.keys import Keys, configured
from straits.store.ledger import Entry
from straits.store.note import NoteError, SignedCheckpoint, Verifier, open_checkpoint
from straits.store.proven import prove_in

FORMAT = "straits-ledger-receipt/1"
ENTRY_FIELDS = ("seq", "tenant_seq", "recorded_at", "tenant", "actor", "kind", "body", "salt")


def make_receipt(store: Store, seq: int, keys: Keys | None = None) -> dict[str, Any]:
    """The receipt of entry ``seq``: the entry proven (``proven``: inclusion in the current
    tree, which extends the latest signed checkpoint), then its inclusion proof against that
    checkpoint, or against a new one signed now when none covers the entry yet."""
    keys = keys if keys is not None else configured()
    with store.session() as s:
        proof = prove_in(s, seq, keys)
        cp = proof.checkpoint
        covered = (
            cp is not None
            and cp.checkpoint.size >= seq
            and (keys.signer is None or cp.checkpoint.origin == keys.signer.name)
        )
        if covered and cp is not None:
            size = cp.checkpoint.size
            path = proof.nodes.inclusion(seq - 1, size)
    if not covered or cp is None:
        cp = checkpoints.covering(store, keys, seq)
        size = cp.checkpoint.size
        with store.session() as s:
            path = tree.proofs(s, inclusions=[(seq - 1, size)]).inclusion(seq - 1, size)
    try:  # never hand out a receipt that does not verify
        merkle.verify_inclusion(seq - 1, size, proof.entry.leaf_hash(), path, cp.checkpoint.root)
    except merkle.ProofError:
        raise LedgerError(
            f"ledger entry {seq} is not in the log checkpoint {size} signed: the "
            "log was rewritten after it",
            seq,
        ) from None
    return {
        "receipt": FORMAT,
        "entry": proof.entry.leaf_json(),
        "tree_size": size,
        "inclusion_proof": [base64.b64encode(h).decode() for h in path],
        "checkpoint": cp.note,
    }


@dataclass(frozen=True)
class ReceiptCheck:
    entry: Entry
    checkpoint: SignedCheckpoint

    def to_json(self) -> dict[str, Any]:
        cp, key = self.checkpoint.checkpoint, self.checkpoint.key
        return {
            "ok": True,
            "seq": self.entry.seq,
            "tenant_seq": self.entry.tenant_seq,
            "tenant": self.entry.tenant,
            "kind": self.entry.kind,
            "recorded_at": self.entry.recorded_at,
            "log": cp.origin,
            "tree_size": cp.size,
            "root_hash": cp.root_hex,
            "key": f"{key.name}+{key.id:08x}" if key else None,
        }


def _bad(message: str, path: str | None = None) -> InputError:
    return InputError(
        message, path=path, expected=f"a {FORMAT} document (`straits ledger receipt`)"
    )


def parse_receipt(doc: Any) -> tuple[Entry, int, list[bytes], str]:
    """The parts of a receipt, shape-checked (``InputError`` naming the field)."""
    if not isinstance(doc, dict):
        raise _bad("a receipt is a JSON object")
    if doc.get("receipt") != FORMAT:
        raise _bad(f"unknown receipt format {str(doc.get('receipt'))[:40]!r}", "receipt")
    e = doc.get("entry")
    if not isinstance(e, dict):
        raise _bad("missing", "entry")
    for f in ENTRY_FIELDS:
        want = int if f in ("seq", "tenant_seq") else str
        if not isinstance(e.get(f), want) or isinstance(e.get(f), bool):
            raise _bad(f"expected {'an integer' if want is int else 'a string'}", f"entry.{f}")
        if want is str:
            try:
                utf8(e[f])
            except ValueError as exc:
                raise _bad(str(exc), f"entry.{f}") from None
    size, proof, note = doc.get("tree_size"), doc.get("inclusion_proof"), doc.get("checkpoint")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise _bad("expected a positive integer", "tree_size")
    if not isinstance(proof, list) or len(proof) > 64:
        raise _bad("expected a list of at most 64 base64 hashes", "inclusion_proof")
    hashes = []
    for i, h in enumerate(proof):
        try:
            raw = base64.b64decode(h, validate=True) if isinstance(h, str) else b""
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != merkle.HASH_SIZE:
            raise _bad("expected the base64 of a 32-byte hash", f"inclusion_proof[{i}]")
        hashes.append(raw)
    if not isinstance(note, str):
        raise _bad("expected the signed checkpoint text", "checkpoint")
    entry = Entry(
        e["seq"],
        e["recorded_at"],
        e["tenant"],
        e["actor"],
        e["kind"],
        e["body"],
        "",
        "",
        e["tenant_seq"],
        e["salt"],
    )
    return entry, size, hashes, note


def verify_receipt(doc: Any, verifiers: list[Verifier]) -> ReceiptCheck:
    """Check a receipt with nothing but the log's verifier key(s). ``InputError`` when it is
    malformed; ``LedgerError`` when it does not prove what it says."""
    entry, size, hashes, note = parse_receipt(doc)
    try:
        cp = open_checkpoint(note, verifiers)
    except NoteError as exc:
        raise LedgerError(
            f"the receipt's checkpoint is not signed by the log's key: {exc}", entry.seq
        ) from None
    if cp.checkpoint.size != size:
        raise LedgerError(
            f"the receipt claims a log of {size} entries but its checkpoint "
            f"signs {cp.checkpoint.size}",
            entry.seq,
        )
    if not 1 <= entry.seq <= size:
        raise LedgerError(f"entry {entry.seq} cannot be in a log of {size} entries", entry.seq)
    try:
        merkle.verify_inclusion(entry.seq - 1, size, entry.leaf_hash(), hashes, cp.checkpoint.root)
    except merkle.ProofError as exc:
        raise LedgerError(
            f"entry {entry.seq} is not in the signed log of {size} entries: the "
            f"entry or its proof was altered ({exc})",
            entry.seq,
        ) from None
    return ReceiptCheck(entry, cp)
