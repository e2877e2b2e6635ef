"""What the log's signing key last signed, kept beside the key, outside the database.

The database writer can change every row, ``ledger_checkpoints`` included: a checkpoint row
deleted, or its ``size`` column lowered, hid from the signer the checkpoint it had to extend,
and the log signed a second root for a size it had signed (atk78). So the signer keeps its own
record: the last checkpoint it signed, as its signed note, in ``KEYFILE.signed`` (mode 0600,
replaced atomically and fsynced), or in the file ``$STRAITS_LEDGER_SIGNED`` names (a key
mounted read-only, or handed over a pipe). Before each signature the tree head must extend
that checkpoint (the same root at the same size, or a consistency proof from it); the record is
written before the new checkpoint is stored and returned, so no signature leaves the signer
that its record does not hold.

Without a record (the first signature after an upgrade, or a record lost) every checkpoint the
database holds that a trusted key signed is checked first: its signature, its columns against
its signed text, one root per size, and a consistency proof from each size to the head.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from straits.errors import LedgerError, OutputError
from straits.store import merkle, tree
from straits.store.note import NoteError, SignedCheckpoint, Verifier, open_checkpoint

log = logging.getLogger(__name__)

RECORD_ENV = "STRAITS_LEDGER_SIGNED"
SUFFIX = ".signed"
#: a signed note is a few hundred bytes (an origin of at most 200 characters, a signature)
MAX_RECORD_BYTES = 4096
#: consistency proofs fetched in one query when the stored checkpoints are checked
PROOF_BATCH = 256
_warned: set[str] = set()


def record_path(key: str | Path) -> Path | None:
    """Where the signer of the key file ``key`` records what it signed: ``$STRAITS_LEDGER_SIGNED``,
    else ``KEY.signed`` beside a key that is a file; None for a key read from a pipe (then
    every signature checks the stored checkpoints it must extend, and a warning says so)."""
    env = os.environ.get(RECORD_ENV, "").strip()
    if env:
        return Path(env)
    p = Path(key)
    try:
        regular = stat.S_ISREG(os.stat(p).st_mode)
    except OSError:
        regular = False
    if regular:
        return p.with_name(p.name + SUFFIX)
    if str(p) not in _warned:
        _warned.add(str(p))
        log.warning(
            "the ledger signing key %s is not a file, so what it signs is recorded nowhere "
            "outside the database: set %s to a file the signer may write",
            p,
            RECORD_ENV,
        )
    return None


def read(path: Path, trusted: list[Verifier]) -> SignedCheckpoint | None:
    """The checkpoint recorded in ``path`` (None when there is none), its signature checked
    against the trusted keys; ``LedgerError`` when it is not one they signed."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _unreadable(path, "not a regular file")
        os.set_blocking(fd, True)
        raw = b""
        while len(raw) <= MAX_RECORD_BYTES:
            chunk = os.read(fd, MAX_RECORD_BYTES + 1 - len(raw))
            if not chunk:
                break
            raw += chunk
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_RECORD_BYTES:
        raise _unreadable(path, f"over {MAX_RECORD_BYTES} bytes")
    try:
        return open_checkpoint(raw.decode("utf-8"), trusted)
    except (UnicodeDecodeError, NoteError) as exc:
        raise _unreadable(path, f"not a checkpoint signed by the log's key ({exc})") from None


def _unreadable(path: Path, why: str) -> LedgerError:
    return LedgerError(
        f"the record of what the signing key last signed ({path}) cannot be used: {why}; "
        "refusing to sign (restore it, or, after `straits ledger verify`, remove it: the "
        "checkpoints stored in the database are then checked instead)"
    )


def write(path: Path, cp: SignedCheckpoint) -> None:
    """Replace the record with ``cp`` (0600, through a temporary file, fsynced). A record that
    cannot be written is an error: nothing is then signed."""
    from straits.fileio import replace_file

    try:
        replace_file(path, cp.note.encode("utf-8"), private=True)
    except OSError as exc:
        raise OutputError(
            f"cannot record what the signing key signs in {path}: {exc.strerror or exc}; "
            f"nothing was signed (set {RECORD_ENV} to a file the signer may write)"
        ) from None


def check_extends(s: Session, base: SignedCheckpoint, size: int, root: bytes, what: str) -> None:
    """``LedgerError`` unless the tree of ``size`` entries and ``root`` extends ``base``: the
    same root at its size, or a consistency proof from it (read from the stored tree)."""
    b = base.checkpoint
    if size < b.size:
        raise LedgerError(
            f"{what} was signed at {b.size} entries but the log has {size}: entries were "
            "removed; refusing to sign a smaller log",
            size + 1,
        )
    if size == b.size:
        if root != b.root:
            raise LedgerError(
                f"the log of {size} entries no longer has the root of {what}: it was "
                "rewritten; refusing to sign a second root for the same size",
                size,
            )
        return
    if b.size == 0:
        return
    try:
        proof = tree.proofs(s, consistencies=[(b.size, size)]).consistency(b.size, size)
        merkle.verify_consistency(b.size, size, b.root, root, proof)
    except (merkle.ProofError, tree.MissingNodeError, ValueError):
        raise LedgerError(
            f"the log of {size} entries does not extend {what} ({b.size} entries): its "
            "history was rewritten; refusing to sign it (`straits ledger verify` shows where)",
            None,
        ) from None


def _stored(s: Session, trusted: list[Verifier]) -> Iterator[tuple[int, SignedCheckpoint]]:
    """Every stored checkpoint a trusted key signed, with its row id, its columns checked
    against its signed text (rows no trusted key signed are not the log's signatures)."""
    from straits.store.tables import LedgerCheckpoint

    t = LedgerCheckpoint.__table__
    from straits.store.checkpoints import columns_differ

    q = select(t.c.id, t.c.size, t.c.root, t.c.origin, t.c.key_id, t.c.note).order_by(t.c.id)
    for row in s.execute(q).yield_per(1000):
        try:
            cp = open_checkpoint(str(row.note), trusted)
        except NoteError:
            continue
        wrong = columns_differ(row, cp)
        if wrong:
            raise LedgerError(
                f"stored checkpoint #{row.id}: its {wrong} column does not match its signed "
                "text (the row was altered); refusing to sign"
            )
        yield int(row.id), cp


def check_stored(s: Session, trusted: list[Verifier], size: int, root: bytes) -> None:
    """With no record of its own: every stored checkpoint a trusted key signed must be
    extended by the tree of ``size`` entries and ``root`` (one root per size, a consistency
    proof from each size), or ``LedgerError``."""
    roots: dict[int, tuple[int, SignedCheckpoint]] = {}
    for row_id, cp in _stored(s, trusted):
        c = cp.checkpoint
        seen = roots.setdefault(c.size, (row_id, cp))
        if seen[1].checkpoint.root != c.root:
            raise LedgerError(
                f"stored checkpoints #{seen[0]} and #{row_id} sign two different roots for "
                f"{c.size} entries: the log was forked; refusing to sign",
                c.size,
            )
    sizes = sorted(roots)
    if sizes and sizes[-1] > size:
        row_id, cp = roots[sizes[-1]]
        check_extends(s, cp, size, root, f"checkpoint #{row_id}")
    for i in range(0, len(sizes), PROOF_BATCH):
        batch = [n for n in sizes[i : i + PROOF_BATCH] if 0 < n < size]
        try:
            p = tree.proofs(s, consistencies=[(n, size) for n in batch])
        except (tree.MissingNodeError, ValueError):
            p = None
        for n in batch:
            row_id, cp = roots[n]
            try:
                if p is None:
                    raise ValueError("nodes missing")
                merkle.verify_consistency(n, size, cp.checkpoint.root, root, p.consistency(n, size))
            except (merkle.ProofError, tree.MissingNodeError, ValueError):
                raise LedgerError(
                    f"the log of {size} entries does not extend checkpoint #{row_id} ({n} "
                    "entries): its history was rewritten; refusing to sign it (`straits "
                    "ledger verify` shows where)",
                    None,
                ) from None
    if size in roots:
        row_id, cp = roots[size]
        check_extends(s, cp, size, root, f"checkpoint #{row_id}")
