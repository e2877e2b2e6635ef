"""What a failed verification found, for programs: the codes ``Verification.code`` takes
(docs/server-and-ledger.md), and the scan that finds the first ledger entry holding a value of
a type Straits never writes (SQLite keeps any value in any column)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

#: ``Verification.code``: what a failed verification found (docs/server-and-ledger.md)
CODES = (
    "entry-missing",  # an entry deleted
    "entry-reordered",
    "entry-altered",  # its content no longer matches its hash
    "entry-replaced",  # entry 1 does not start from the genesis hash
    "entry-rehashed",  # altered and re-hashed: the next entry's prev_hash differs
    "entry-rewritten",  # a body Straits never writes
    "scenario-altered",
    "tail-removed",  # entries removed from the end
    "head-altered",
    "head-missing",
    "tree-altered",  # a leaf or node of the Merkle tree
    "checkpoint-untrusted",
    "checkpoint-missing",  # what the signing key last signed (its record) is not stored
    "history-rewritten",  # not an extension of a checkpoint
    "head-forged",
    "plan-row",
    "decision-row",
    "value-altered",  # a value of a type Straits never writes (text in a number column)
)


#: the ledger's columns and the SQLite type each holds when Straits wrote it
_TYPES = {"tenant_seq": "integer", "recorded_at": "text", "tenant": "text", "actor": "text"}
_TYPES |= {"kind": "text", "body": "text", "prev_hash": "text", "hash": "text", "salt": "text"}


def first_unreadable(s: Session) -> int | None:
    """The first entry holding a value of a type Straits never writes there, or text that is
    not UTF-8 (SQLite keeps any bytes as TEXT: ``CAST(x'ff' AS TEXT)``)."""
    where = " OR ".join(f"typeof({c}) <> '{t}'" for c, t in _TYPES.items())
    found = s.execute(text(f"SELECT min(seq) FROM ledger WHERE {where}")).scalar()
    if isinstance(found, int):
        return found
    texts = ", ".join(f"CAST({c} AS BLOB)" for c, t in _TYPES.items() if t == "text")
    for row in s.execute(text(f"SELECT seq, {texts} FROM ledger ORDER BY seq")):
        try:
            for value in row[1:]:
                if value is not None:
                    bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return int(row[0])
    return None
