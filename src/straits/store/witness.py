"""Witnessing: a second party records the checkpoints it is shown and catches a split view.

A witness keeps, per log (origin), the latest checkpoint it accepted and a bounded number of
the others (the first, trusted on first use, and the largest before the latest:
:func:`straits.store.witness_state.compact`), in a JSON state file of its own. A new
checkpoint is accepted only if the log's key signed it and it is consistent with what the
witness saw before:

* the same size as one still kept: the same root, or it is a **split view** (the log signed
  two different trees of one size: the two signed notes are the evidence);
* a larger size than the latest: a consistency proof from the latest to it must verify (taken
  from the document itself, as ``GET /v1/ledger/checkpoint?since=N`` returns it, or asked of the
  log: its database or its server);
* a smaller size (one no longer kept included): a consistency proof from it to the latest
  must verify.

A log that showed one party one history and another party another cannot produce those proofs,
so the parties' witnesses disagree, and comparing their checkpoints (each feeds the other's to
``straits ledger witness``) names the fork. The first checkpoint of a log is trusted on first
use, as SSH does with host keys; say so to whoever relies on it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from straits.errors import InputError, RemoteError
from straits.store import merkle
from straits.store.note import NoteError, SignedCheckpoint, Verifier, open_checkpoint
from straits.store.witness_state import read_state, write_state

ProofSource = Callable[[int, int], list[bytes]]
"""(first, second) -> the log's consistency proof between those sizes"""


@dataclass(frozen=True)
class Offered:
    """A checkpoint as offered: the note and, maybe, a consistency proof the log attached."""

    note: str
    source: str
    proof: tuple[int, int, list[bytes]] | None = None
    receipt: dict[str, Any] | None = None
    """the receipt it came in, checked whole (entry, proof and checkpoint) before its
    checkpoint is: an altered receipt was `accepted` for its checkpoint alone (proof51)"""

    def receipt_problem(self, verifiers: list[Verifier]) -> str | None:
        """Why the receipt it came in does not verify (None when it does, or is none)."""
        if self.receipt is None:
            return None
        from straits.errors import LedgerError
        from straits.store.receipts import verify_receipt

        try:
            verify_receipt(self.receipt, verifiers)
        except LedgerError as exc:
            return str(exc)
        return None


@dataclass(frozen=True)
class Outcome:
    source: str
    status: str
    """accepted | seen | older-consistent | split-view | inconsistent |
    unprovable-after-compaction | unproven | rejected | rolled-back"""
    message: str
    size: int | None = None
    evidence: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("accepted", "seen", "older-consistent")

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "ok": self.ok,
            "size": self.size,
            "message": self.message,
            "evidence": self.evidence,
        }


def went_back(outcome: Outcome, refused_since: int | None) -> Outcome:
    """``outcome`` of a log's latest checkpoint, fetched after the log refused the witness's
    own ``since`` (``refused_since``, the size it had accepted): a checkpoint of the same log
    seen before, a prefix of one, or one it cannot prove (the log no longer holds the tree
    the proof would end at) is the log gone back to an older tree (rolled back, or
    its newer checkpoints deleted), not an older checkpoint offered by a peer. Another log's
    (trust on first use) and every other verdict stand."""
    if refused_since is None or outcome.status not in ("seen", "older-consistent", "unproven"):
        return outcome
    return Outcome(
        outcome.source,
        "rolled-back",
        f"the log's latest checkpoint has {outcome.size} entries, fewer than the "
        f"{refused_since} this witness accepted of it: the log went back (rolled back, or "
        "its newer checkpoints removed)",
        outcome.size,
    )


def parse_offer(text: str, source: str) -> Offered:
    """A signed checkpoint note, a receipt (its checkpoint) or the checkpoint route's JSON
    (its checkpoint and consistency proof)."""
    text = text.removeprefix("\ufeff")  # a byte-order mark an editor saved (JSON or note)
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        # CRLF line ends (a checkpoint published through git's autocrlf, or saved by a
        # Windows editor) were "forged or unsigned": a note never holds a CR, and the
        # signature is checked on the text as restored, so restoring it accepts no forgery
        return Offered(_lf(text), source)
    from straits.loading import parse_json

    doc = parse_json(text, source=source)  # each key once, as a receipt's
    note = doc.get("checkpoint") if isinstance(doc, dict) else None
    if not isinstance(note, str):
        raise InputError(
            "no checkpoint in it",
            source=source,
            path="checkpoint",
            expected="a signed checkpoint, a receipt or the answer of GET /v1/ledger/checkpoint",
        )
    receipt = None
    if "receipt" in doc:  # a receipt: its shape now, its proof with the keys (receipt_problem)
        from straits.store.receipts import parse_receipt

        try:
            parse_receipt(doc)
        except InputError as exc:  # named after the file it came in
            raise InputError(
                exc.detail, source=source, path=exc.path, expected=exc.expected
            ) from None
        receipt = doc
    proof = None
    c = doc.get("consistency")
    if isinstance(c, dict):
        try:
            # whole numbers and 32-byte hashes only: a hash of another size is no proof, and
            # was reported as a split view (``int()`` also took 7.9, true and " 7")
            hashes = [proof_hash(h, "a hash of the proof") for h in c.get("proof") or []]
            sizes = (c["from"], c["to"])
            if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in sizes):
                raise ValueError("not a proof")
            proof = (sizes[0], sizes[1], hashes)
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise InputError(
                "a malformed consistency proof", source=source, path="consistency"
            ) from None
    return Offered(_lf(note), source, proof, receipt)


def _lf(note: str) -> str:
    """The note as signed, from a file an editor saved with CRLF line ends (a note never
    holds a CR, so this accepts nothing forged: the signature is checked on the result)."""
    return note.replace("\r\n", "\n")


def proof_hash(value: Any, where: str) -> bytes:
    """One hash of a consistency proof, the base64 of 32 bytes (``ValueError`` naming
    ``where`` otherwise: a number was a TypeError traceback, and a hash of another size, no
    proof at all, was reported as a split view)."""
    try:
        raw = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != merkle.HASH_SIZE:
        raise ValueError(f"{where} is not the base64 of a 32-byte hash")
    return raw


class Witness:
    """The witness's state file and the checks above."""

    def __init__(self, path: Path) -> None:
        """The state in ``path`` (empty when there is none). Hold
        :func:`straits.store.witness_state.locked` from here until :meth:`save`: two runs on
        one state must take turns."""
        self.path = path
        self.state: dict[str, Any] = read_state(path)

    def save(self) -> None:
        write_state(self.path, self.state)

    def offer(
        self, offer: Offered, verifiers: list[Verifier], proofs: ProofSource | None
    ) -> Outcome:
        try:
            cp = open_checkpoint(offer.note, verifiers)
        except NoteError as exc:
            return Outcome(
                offer.source, "rejected", f"not a checkpoint signed by the log's key: {exc}"
            )
        bad_receipt = offer.receipt_problem(verifiers)
        if bad_receipt is not None:
            return Outcome(offer.source, "rejected", f"the receipt does not verify: {bad_receipt}")
        c = cp.checkpoint
        log = self.state["logs"].setdefault(c.origin, {"seen": [], "latest": None})
        for seen in log["seen"]:
            if seen["size"] == c.size:
                if seen["root"] == c.root_hex:
                    return Outcome(offer.source, "seen", f"checkpoint {c.size} seen before", c.size)
                return Outcome(
                    offer.source,
                    "split-view",
                    f"SPLIT VIEW: log {c.origin} signed two different trees of "
                    f"{c.size} entries ({seen['root'][:16]}... seen "
                    f"{seen['seen_at']} from {seen['source']}; "
                    f"{c.root_hex[:16]}... now from {offer.source})",
                    c.size,
                    [seen["note"], cp.note],
                )
        latest = log["latest"]
        kept = log.get("roots", {}).get(str(c.size))
        if kept is not None and latest is not None and c.size < latest["size"]:
            return self._against_root(offer, cp, kept, latest)
        if latest is None:
            self._record(log, cp, offer.source, latest=True)
            return Outcome(
                offer.source,
                "accepted",
                f"first checkpoint of log {c.origin} ({c.size} entries): trusted on first use",
                c.size,
            )
        lo_size, lo_root, hi_size, hi_root = (
            (latest["size"], bytes.fromhex(latest["root"]), c.size, c.root)
            if c.size > latest["size"]
            else (c.size, c.root, latest["size"], bytes.fromhex(latest["root"]))
        )
        proof = None
        if offer.proof is not None and offer.proof[:2] == (lo_size, hi_size):
            proof = offer.proof[2]
        elif proofs is not None:
            try:
                proof = proofs(lo_size, hi_size)
            except (InputError, RemoteError, LookupError, ValueError, OSError) as exc:
                return Outcome(
                    offer.source,
                    "unproven",
                    f"the log gave no consistency proof {lo_size} -> {hi_size}: {exc}",
                    c.size,
                )
        if proof is None:
            return Outcome(
                offer.source,
                "unproven",
                f"checkpoint {c.size} cannot be checked against the {latest['size']} "
                f"seen before without a consistency proof {lo_size} -> {hi_size} "
                "(give --db or --log, or fetch GET /v1/ledger/checkpoint?since="
                f"{latest['size']})",
                c.size,
            )
        try:
            merkle.verify_consistency(lo_size, hi_size, lo_root, hi_root, proof)
        except merkle.ProofError as exc:
            if c.size < latest["size"] and c.size <= log.get("forgotten_upto", -1):
                return Outcome(
                    offer.source,
                    "unprovable-after-compaction",
                    f"SPLIT VIEW or rewritten log: checkpoint {c.size} is not consistent "
                    f"with checkpoint {latest['size']} seen {latest['seen_at']} ({exc}); "
                    f"this witness may have seen a tree of {c.size} entries but no longer "
                    "keeps its root (its state was compacted), so it cannot prove two trees "
                    "were signed for that size",
                    c.size,
                    [latest["note"], cp.note],
                )
            return Outcome(
                offer.source,
                "inconsistent",
                f"SPLIT VIEW or rewritten log: checkpoint {c.size} is not consistent "
                f"with checkpoint {latest['size']} seen {latest['seen_at']} ({exc})",
                c.size,
                [latest["note"], cp.note],
            )
        newer = c.size > latest["size"]
        self._record(log, cp, offer.source, latest=newer)
        if newer:
            return Outcome(
                offer.source,
                "accepted",
                f"checkpoint {c.size} extends {latest['size']} (consistency proven)",
                c.size,
            )
        return Outcome(
            offer.source,
            "older-consistent",
            f"checkpoint {c.size} is a prefix of {latest['size']} (consistency proven)",
            c.size,
        )

    def _against_root(
        self, offer: Offered, cp: SignedCheckpoint, kept: str, latest: dict[str, Any]
    ) -> Outcome:
        """A size whose note was compacted away but whose root is kept: every root kept was
        proven consistent with the latest checkpoint, so the latest's signed note commits the
        log to it, and another root for that size is a split view (fix90)."""
        c = cp.checkpoint
        if kept == c.root_hex:
            return Outcome(
                offer.source, "seen", f"checkpoint {c.size} seen before (its root kept)", c.size
            )
        return Outcome(
            offer.source,
            "split-view",
            f"SPLIT VIEW: log {c.origin} signed two different trees of {c.size} entries "
            f"({kept[:16]}... seen before, its note compacted away, and committed to by "
            f"checkpoint {latest['size']} seen {latest['seen_at']} from {latest['source']}; "
            f"{c.root_hex[:16]}... now from {offer.source})",
            c.size,
            [latest["note"], cp.note],
        )

    def _record(
        self, log: dict[str, Any], cp: SignedCheckpoint, source: str, *, latest: bool
    ) -> None:
        item = {
            "size": cp.checkpoint.size,
            "root": cp.checkpoint.root_hex,
            "note": cp.note,
            "source": source,
            "seen_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        log["seen"].append(item)
        log["seen"].sort(key=lambda x: x["size"])
        if latest:
            log["latest"] = item

    def latest_size(self, origin: str | None = None) -> int | None:
        logs = self.state["logs"]
        if origin is None and len(logs) == 1:
            origin = next(iter(logs))
        latest = logs.get(origin, {}).get("latest") if origin else None
        return int(latest["size"]) if latest else None
