"""The answer of a ledger verification (``ledger verify``, full, quick or of an export)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    first_bad: int | None = None
    problem: str | None = None
    root_hash: str | None = None
    """the Merkle root of the log's ``entries`` entries (hex)"""
    checkpoint: dict[str, Any] | None = None
    """the latest signed checkpoint checked: size, root, key, signed (whether its signature
    was checked)"""
    signatures: str = "none"
    """``checked`` (a trusted key verified every checkpoint), ``not checked`` (no key was
    given), ``none`` (no checkpoint to check) or ``untrusted`` (a stored checkpoint failed its
    signature or its signed text: ``code`` ``checkpoint-untrusted``)"""
    heads: tuple[dict[str, Any], ...] = ()
    """the older heads and checkpoints given, each with what proved it"""
    notes: tuple[str, ...] = ()
    code: str | None = None
    """what was found, for programs: one of ``tamper.CODES`` (None when ok)"""

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "code": self.code,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "root_hash": self.root_hash,
            "first_bad": self.first_bad,
            "problem": self.problem,
            "checkpoint": self.checkpoint,
            "signatures": self.signatures,
            "heads": list(self.heads),
            "notes": list(self.notes),
        }

    def replace(self, **changes: Any) -> Verification:
        return Verification(**{**self.__dict__, **changes})
