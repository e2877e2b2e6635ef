"""Every mutation of a proof, receipt or checkpoint the ledger emits is rejected by Straits' own
verifiers (the Python API, `ledger verify-receipt`, `ledger verify --head`, `ledger witness`)
and by the independent verifier of test_proofs_independent.py; and on any proof, index and size
the two verifiers agree (hostile pass proof51)."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from straits.errors import InputError, LedgerError
from straits.store import merkle, tree
from straits.store.note import Signer
from straits.store.receipts import verify_receipt
from test_ledger_cli import ORIGIN, straits
from test_proofs_independent import (
    SIZES,
    TOP,
    Log,
    Rejected,
    log,
    verify_consistency,
    verify_inclusion,
    verify_note,
    verify_receipt_doc,
)

__all__ = ["log"]  # the module's log, built here once

Mutation = Callable[[list[bytes]], list[bytes]]


def flip(h: bytes, at: int = 0) -> bytes:
    return h[:at] + bytes([h[at] ^ 1]) + h[at + 1 :]


PROOF_MUTATIONS: dict[str, Mutation] = {
    "flip first": lambda p: [flip(p[0]), *p[1:]],
    "flip last byte of last": lambda p: [*p[:-1], flip(p[-1], 31)],
    "drop first": lambda p: p[1:],
    "drop last": lambda p: p[:-1],
    "add zero first": lambda p: [bytes(32), *p],
    "add zero last": lambda p: [*p, bytes(32)],
    "repeat last": lambda p: p + p[-1:],
    "swap first two": lambda p: p[1:2] + p[:1] + p[2:],
    "reverse": lambda p: p[::-1],
    "short hash": lambda p: [p[0][:31], *p[1:]],
}


def agree(straits_check: Callable[..., None], own_check: Callable[..., None], *args: Any) -> bool:
    """Both verifiers' verdicts on ``args``; a disagreement fails the test."""
    try:
        straits_check(*args)
        theirs = True
    except merkle.ProofError:
        theirs = False
    try:
        own_check(*args)
        ours = True
    except Rejected:
        ours = False
    assert theirs == ours, f"Straits says {theirs}, the independent verifier {ours}"
    return ours


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_inclusion_mutations_and_agreement(log: Log, data: st.DataObject) -> None:
    n = data.draw(st.sampled_from(SIZES))
    i = data.draw(st.sampled_from([0, n - 1]) | st.integers(0, n - 1))
    with log.store.session() as s:
        ps = tree.proofs(s, roots=[n], inclusions=[(i, n)])
    proof, root, lf = ps.inclusion(i, n), ps.root(n), log.leaves[i]
    assert agree(merkle.verify_inclusion, verify_inclusion, i, n, lf, proof, root)
    for name, bad in mutated(proof):
        assert not agree(merkle.verify_inclusion, verify_inclusion, i, n, lf, bad, root), name
    # another index or size with the same proof, leaf and root: both must say the same
    j = data.draw(st.integers(0, TOP))
    m = data.draw(st.integers(1, TOP + 1))
    ok = agree(merkle.verify_inclusion, verify_inclusion, j, m, lf, proof, root)
    if m == n and j != i:  # another size may share the path by chance: only agreement asked
        assert not ok


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_consistency_mutations_and_agreement(log: Log, data: st.DataObject) -> None:
    n = data.draw(st.sampled_from(SIZES))
    m = data.draw(st.sampled_from([1, n, n - 1, max(1, n // 2)]) | st.integers(1, n))
    with log.store.session() as s:
        ps = tree.proofs(s, roots=[m, n], consistencies=[(m, n)])
    proof, old, new = ps.consistency(m, n), ps.root(m), ps.root(n)
    assert agree(merkle.verify_consistency, verify_consistency, m, n, old, new, proof)
    for name, bad in mutated(proof):
        assert not agree(merkle.verify_consistency, verify_consistency, m, n, old, new, bad), name
    for m2, n2 in ((m + 1, n), (m - 1, n), (m, n + 1), (m, n - 1)):
        if 0 <= m2 <= n2 and (m2, n2) != (m, n):
            # RFC 6962 roots do not commit to their size: a proof 1 -> 3 is also one 1 -> 4
            # between the same roots (the signed checkpoint binds the size); only agreement
            agree(merkle.verify_consistency, verify_consistency, m2, n2, old, new, proof)
    if old != new:  # the roots swapped
        assert not agree(merkle.verify_consistency, verify_consistency, m, n, new, old, proof)


# --- notes and receipts ---------------------------------------------------------------------
OTHER = Signer.generate(ORIGIN)  # the log's name, another key
STRANGER = Signer.generate("elsewhere.example/log")


def _text(note: str) -> str:
    return note[: note.rfind("\n\n") + 1]


def _sig_line(note: str) -> str:
    return note[note.rfind("\n\n") + 2 :]


def _resign_text(note: str, edit: Callable[[list[str]], list[str]]) -> str:
    """The note with its text edited and the log's signature line kept."""
    lines = _text(note).split("\n")
    return "\n".join(edit(lines)) + "\n" + _sig_line(note)


def _flip_sig(note: str) -> str:
    line = _sig_line(note)
    head, _, b64 = line.rstrip("\n").rpartition(" ")
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 1
    return _text(note) + "\n" + head + " " + base64.b64encode(bytes(raw)).decode() + "\n"


NOTE_MUTATIONS: dict[str, Callable[[str, Log], str]] = {
    "another key, same name": lambda note, lg: OTHER.sign(_text(note)),
    "another log's key": lambda note, lg: STRANGER.sign(
        _text(note).replace(ORIGIN, STRANGER.name, 1)
    ),
    "flipped signature byte": lambda note, lg: _flip_sig(note),
    "origin line changed": lambda note, lg: _resign_text(note, lambda ls: [ls[0] + "x", *ls[1:]]),
    "origin line with a trailing space": lambda note, lg: _resign_text(
        note, lambda ls: [ls[0] + " ", *ls[1:]]
    ),
    "size line changed": lambda note, lg: _resign_text(
        note, lambda ls: [ls[0], str(int(ls[1]) + 1), *ls[2:]]
    ),
    "root line changed": lambda note, lg: _resign_text(
        note, lambda ls: [ls[0], ls[1], base64.b64encode(bytes(32)).decode(), *ls[3:]]
    ),
    "an extension line added": lambda note, lg: _resign_text(
        note, lambda ls: [*ls[:3], "extra", *ls[3:]]
    ),
    "trailing garbage line": lambda note, lg: note + "garbage\n",
    "trailing blank line": lambda note, lg: note + "\n",
    "trailing bytes without newline": lambda note, lg: note + "x",
    "trailing note": lambda note, lg: note + "\n" + STRANGER.sign("x\n"),
    "signature line dropped": lambda note, lg: _text(note) + "\n",
}


@pytest.mark.parametrize("name", sorted(NOTE_MUTATIONS))
def test_note_mutations_are_rejected_everywhere(log: Log, name: str, tmp_path: Path) -> None:
    n = 65
    note = log.notes[n]
    bad = NOTE_MUTATIONS[name](note, log)
    assert bad != note
    with pytest.raises(Rejected):
        verify_note(bad, log.vkey)
    from straits.store.note import NoteError, open_checkpoint

    with pytest.raises(NoteError):
        open_checkpoint(bad, [log.signer.verifier])
    # a receipt carrying it
    doc = copy.deepcopy(log.receipts[(33, n)])
    doc["checkpoint"] = bad
    receipt_refused(log, doc, tmp_path)
    # as a head to verify the log against, and as a checkpoint offered to a witness
    cp = tmp_path / "cp"
    cp.write_text(bad)
    pub = str(log.keyfile) + ".pub"
    r = straits("ledger", "verify", "--db", log.db, "--pubkey", pub, "--quick", "--head", str(cp))
    assert r.returncode in (1, 2), (r.returncode, r.stdout)
    r = straits(
        "ledger",
        "witness",
        "--pubkey",
        pub,
        "--state",
        str(tmp_path / "w.json"),
        "--checkpoint",
        str(cp),
    )
    assert r.returncode in (1, 2), (r.returncode, r.stdout)
    assert not (tmp_path / "w.json").exists() or "65" not in (tmp_path / "w.json").read_text()


def _proof(doc: dict[str, Any], mutate: Mutation) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    hashes = [base64.b64decode(h) for h in out["inclusion_proof"]]
    out["inclusion_proof"] = [base64.b64encode(h).decode() for h in mutate(hashes)]
    return out


def _proof_edit(mutate: Mutation) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda doc: _proof(doc, mutate)


def _field(path: str, value: Callable[[Any], Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(doc: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(doc)
        where = out
        *parents, last = path.split(".")
        for p in parents:
            where = where[p]
        where[last] = value(where[last])
        return out

    return edit


RECEIPT_MUTATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    **{f"proof: {k}": _proof_edit(m) for k, m in PROOF_MUTATIONS.items()},
    "seq + 1": _field("entry.seq", lambda v: v + 1),
    "seq - 1": _field("entry.seq", lambda v: v - 1),
    "tenant_seq + 1": _field("entry.tenant_seq", lambda v: v + 1),
    "tree_size + 1": _field("tree_size", lambda v: v + 1),
    "tree_size - 1": _field("tree_size", lambda v: v - 1),
    "body": _field("entry.body", lambda v: v.replace("33", "34")),
    "salt": _field("entry.salt", lambda v: v[::-1]),
    "tenant": _field("entry.tenant", lambda v: "z"),
}


@pytest.mark.parametrize("name", sorted(RECEIPT_MUTATIONS))
@pytest.mark.parametrize("where", [(33, 65), (1, 64), (64, 64), (65, 65), (65, 129), (128, 129)])
def test_receipt_mutations_are_rejected_everywhere(
    log: Log, name: str, where: tuple[int, int], tmp_path: Path
) -> None:
    doc = log.receipts.get(where, None)
    if doc is None:
        pytest.skip("no receipt at that place")
    bad = RECEIPT_MUTATIONS[name](doc)
    if bad == doc:
        pytest.skip("the mutation changes nothing here")
    with pytest.raises((Rejected, ValueError, KeyError)):
        verify_receipt_doc(bad, log.vkey)
    receipt_refused(log, bad, tmp_path)


@pytest.mark.parametrize("name", sorted(PROOF_MUTATIONS))
@pytest.mark.parametrize("since", [1, 64, 65, 129])
def test_witness_rejects_a_mutated_consistency_proof(
    log: Log, name: str, since: int, tmp_path: Path
) -> None:
    pub, state = str(log.keyfile) + ".pub", str(tmp_path / "w.json")
    first = tmp_path / "first"
    first.write_text(log.notes[since])
    r = straits("ledger", "witness", "--pubkey", pub, "--state", state, "--checkpoint", str(first))
    assert r.returncode == 0, r.stderr
    r = straits("ledger", "checkpoint", "--db", log.db, "--pubkey", pub, "--since", str(since))
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    hashes = [base64.b64decode(h) for h in doc["consistency"]["proof"]]
    assert doc["size"] == TOP and len(hashes) >= 1
    if len(hashes) < 2 and name in ("swap first two", "reverse"):
        pytest.skip("one hash")
    doc["consistency"]["proof"] = [
        base64.b64encode(h).decode() for h in PROOF_MUTATIONS[name](hashes)
    ]
    offer = tmp_path / "offer.json"
    offer.write_text(json.dumps(doc))
    before = Path(state).read_text()
    r = straits("ledger", "witness", "--pubkey", pub, "--state", state, "--checkpoint", str(offer))
    assert r.returncode in (1, 2), (r.returncode, r.stdout)
    assert Path(state).read_text() == before  # nothing accepted


@pytest.mark.parametrize(
    "name", ["proof: flip first", "proof: drop last", "seq + 1", "body", "tenant", "tree_size + 1"]
)
def test_a_witness_and_a_head_refuse_a_receipt_that_does_not_verify(
    log: Log, name: str, tmp_path: Path
) -> None:
    """`witness --checkpoint their-receipt.json` said `accepted` (exit 0) and `verify --head
    receipt.json` verified, for a receipt whose entry or proof was altered: the receipt is now
    checked whole, `rejected` / exit 1, nothing recorded; a receipt unaltered is accepted."""
    pub, state = str(log.keyfile) + ".pub", tmp_path / "w.json"
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(log.receipts[(33, 65)]))
    bad.write_text(json.dumps(RECEIPT_MUTATIONS[name](log.receipts[(33, 65)])))
    r = straits(
        "ledger",
        "witness",
        "--pubkey",
        pub,
        "--state",
        str(state),
        "--checkpoint",
        str(bad),
        "--json",
    )
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert json.loads(r.stdout)["checkpoints"][0]["status"] == "rejected"
    assert not state.exists() or "65" not in state.read_text()
    r = straits("ledger", "verify", "--db", log.db, "--pubkey", pub, "--quick", "--head", str(bad))
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    r = straits(
        "ledger", "witness", "--pubkey", pub, "--state", str(state), "--checkpoint", str(good)
    )
    assert r.returncode == 0, r.stderr
    r = straits("ledger", "verify", "--db", log.db, "--pubkey", pub, "--quick", "--head", str(good))
    assert r.returncode == 0, r.stderr
    malformed = tmp_path / "malformed.json"
    doc = copy.deepcopy(log.receipts[(33, 65)])
    doc["inclusion_proof"][0] = "x"
    malformed.write_text(json.dumps(doc))
    for args in (
        ("witness", "--pubkey", pub, "--state", str(state), "--checkpoint", str(malformed)),
        ("verify", "--db", log.db, "--pubkey", pub, "--quick", "--head", str(malformed)),
    ):
        r = straits("ledger", *args)
        assert r.returncode == 2 and str(malformed) in r.stderr and "inclusion_proof[0]" in r.stderr


def mutated(proof: list[bytes]) -> list[tuple[str, list[bytes]]]:
    """Each mutation of ``PROOF_MUTATIONS`` that changes ``proof`` (a swap or reversal needs
    two distinct orders, an empty proof only grows), named."""
    out = []
    for name, mutate in PROOF_MUTATIONS.items():
        if len(proof) < 2 and name in ("swap first two", "reverse"):
            continue
        if not proof and name not in ("add zero first", "add zero last"):
            continue
        if name == "reverse" and proof == proof[::-1]:
            continue
        out.append((name, mutate(proof)))
    return out


def receipt_refused(log: Log, doc: dict[str, Any], tmp_path: Path) -> None:
    """Straits' own receipt check refuses ``doc``, as a library call and as `ledger
    verify-receipt` (exit 1 rejected, 2 malformed)."""
    with pytest.raises((LedgerError, InputError)):
        verify_receipt(doc, [log.signer.verifier])
    f = tmp_path / "r.json"
    f.write_text(json.dumps(doc))
    r = straits("ledger", "verify-receipt", str(f), "--pubkey", log.vkey)
    assert r.returncode in (1, 2), (r.returncode, r.stdout)
