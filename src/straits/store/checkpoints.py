"""Signed checkpoints of the ledger: issued with the signing key, kept in ``ledger_checkpoints``.

A checkpoint commits to the log's first ``size`` entries (origin, size, RFC 6962 root). The log
signs a new one when asked (``straits ledger checkpoint``, or a receipt for an entry no stored
checkpoint covers yet) and never signs two different roots for one size: issuing reuses the
latest checkpoint when the log has not grown. Stored checkpoints are trusted for what their
signatures say, never for being in the table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from straits.errors import InputError, LedgerError
from straits.store import signed_record, tree
from straits.store.db import Store
from straits.store.keys import Keys
from straits.store.merkle import EMPTY_ROOT
from straits.store.note import (
    Checkpoint,
    NoteError,
    SignedCheckpoint,
    Signer,
    Verifier,
    open_checkpoint,
    parse_note,
    sign_checkpoint,
)
from straits.store.tables import LedgerCheckpoint, LedgerHead


class NoCheckpointError(InputError):
    """No signed checkpoint covers an entry and no signing key is configured to issue one."""


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes


def tree_head_size(session: Session) -> int:
    size = session.execute(select(LedgerHead.seq).where(LedgerHead.id == 1)).scalar()
    return int(size) if size is not None else 0


def tree_head(session: Session) -> TreeHead:
    """The size and root of the stored tree (from the stored nodes, nothing verified);
    ``LedgerError`` when the nodes of the root were deleted or are not hashes."""
    size = tree_head_size(session)
    if size < 0:
        raise LedgerError(f"the log's head records {size} entries: the head was altered")
    if size == 0:
        return TreeHead(0, EMPTY_ROOT)
    try:
        return TreeHead(size, tree.proofs(session, roots=[size]).root(size))
    except (tree.MissingNodeError, ValueError) as exc:
        raise LedgerError(f"the log of {size} entries has no root to sign: {exc}") from None


def consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    """An RFC 9162 consistency proof from the stored tree; ``LedgerError`` when the nodes it
    needs were deleted or are not hashes (the tree was altered)."""
    try:
        return tree.proofs(session, consistencies=[(first, second)]).consistency(first, second)
    except (tree.MissingNodeError, ValueError) as exc:
        raise LedgerError(f"no consistency proof from {first} to {second}: {exc}") from None


def latest_row(session: Session, *, min_size: int = 0) -> LedgerCheckpoint | None:
    """The latest stored checkpoint (a Core row with the table's columns: cheaper than an
    ORM object on every proven read)."""
    t = LedgerCheckpoint.__table__
    q = select(t).order_by(t.c.size.desc(), t.c.id.desc()).limit(1)
    # no bound unless asked: a lone row whose size was made negative is read (and found
    # altered), not passed over as if the log had issued no checkpoint
    row: Any = session.execute(q.where(t.c.size >= min_size) if min_size > 0 else q).first()
    return cast(LedgerCheckpoint | None, row)


@lru_cache(maxsize=256)
def _open(note: str, trusted: tuple[Verifier, ...] | None) -> SignedCheckpoint:
    """The same note under the same keys always opens the same way: every proven read of an
    unchanged log checks the latest checkpoint's signature once per process."""
    return open_checkpoint(note, list(trusted) if trusted is not None else None)


def open_row(row: LedgerCheckpoint, keys: Keys) -> SignedCheckpoint:
    """A stored checkpoint, its signature checked when keys are known (``LedgerError`` when
    it does not verify: the row was forged or altered)."""
    try:
        cp = _open(row.note, tuple(keys.trusted) if keys.checks_signatures else None)
    except NoteError as exc:
        raise LedgerError(
            f"stored checkpoint #{row.id} (size {row.size}) is not trustworthy: {exc}"
        ) from None
    wrong = columns_differ(row, cp)
    if wrong:
        raise LedgerError(
            f"stored checkpoint #{row.id}: its {wrong} column does not match its signed "
            "text (the row was altered)"
        )
    return cp


def columns_differ(row: Any, cp: SignedCheckpoint) -> str | None:
    """The first of a stored checkpoint's columns (``size``, ``root``, ``origin``,
    ``key_id``) that its signed note does not say, or None. ``key_id`` is the key whose
    signature was checked, else one of the note's signatures by the origin's name: an edited
    ``origin`` or ``key_id`` passed every check (led30), and issuing reads ``origin``."""
    c = cp.checkpoint
    if c.size != row.size:
        return "size"
    if c.root_hex != row.root:
        return "root"
    if c.origin != row.origin:
        return "origin"
    if cp.key is not None:
        ids = {cp.key.id}
    else:
        try:
            ids = {g.id for g in parse_note(cp.note).signatures if g.name == c.origin}
        except NoteError:
            ids = set()
    if not isinstance(row.key_id, str) or row.key_id not in {f"{i:08x}" for i in ids}:
        return "key_id"
    return None


def issue(
    store: Store,
    signer: Signer,
    verifiers: tuple[Verifier, ...] = (),
    record: Path | None = None,
) -> SignedCheckpoint:
    """Sign the current tree head (or return the latest checkpoint if the log has not grown
    since). The tree is not re-verified here; ``ledger verify`` does that.

    The head must extend what this key signed before, which the database writer can hide (a
    checkpoint row deleted, or its ``size`` lowered): so the signer's own ``record`` of the
    last checkpoint it signed, outside the database (:mod:`straits.store.signed_record`), is
    checked first and written before the new checkpoint is stored; without one, every stored
    checkpoint a trusted key signed is checked. The latest stored checkpoint (by size and by
    row id) must also be signed by ``signer`` or one of ``verifiers`` (earlier keys of the
    log) and be extended by the head: a row the database writer inserted would otherwise have
    the log sign the history it rewrote."""
    trust = Keys(signer, verifiers)
    with store.write() as s:
        head = tree_head(s)
        signed = signed_record.read(record, trust.trusted) if record is not None else None
        if signed is not None:
            what = f"the checkpoint this key last signed ({record})"
            signed_record.check_extends(s, signed, head.size, head.root, what)
        elif record is not None:  # no record yet: what the database holds is checked whole
            signed_record.check_stored(s, trust.trusted, head.size, head.root)
        rows = latest_rows(s)
        opened = [(row, open_row(row, trust)) for row in rows]  # before trusting their sizes
        for row, stored in opened:
            signed_record.check_extends(s, stored, head.size, head.root, f"checkpoint #{row.id}")
        if (
            signed is not None
            and signed.checkpoint.size == head.size
            and signed.checkpoint.origin == signer.name
        ):
            _store_once(s, signed, signer)  # signed, but its row was deleted or never stored
            return signed
        for row, stored in opened:
            if row.size == head.size and row.origin == signer.name:
                return stored
        new = Checkpoint(signer.name, head.size, head.root)
        try:
            note = sign_checkpoint(new, signer)
        except NoteError as exc:
            raise InputError(str(exc), path="--key") from None
        made = SignedCheckpoint(new, note, signer.verifier)
        if record is not None:
            signed_record.write(record, made)  # before the signature leaves the signer
        _store_once(s, made, signer)
        return made


def latest_rows(s: Session) -> list[LedgerCheckpoint]:
    """The stored checkpoint of the largest size and the one stored last (the same row, unless
    a size column was edited to hide the latest)."""
    t = LedgerCheckpoint.__table__
    by_id: Any = s.execute(select(t).order_by(t.c.id.desc()).limit(1)).first()
    by_size = latest_row(s)
    rows = [r for r in (by_size, cast(LedgerCheckpoint | None, by_id)) if r is not None]
    return rows[:1] if len(rows) == 2 and rows[0].id == rows[1].id else rows


def _store_once(s: Session, cp: SignedCheckpoint, signer: Signer) -> None:
    t = LedgerCheckpoint.__table__
    c = cp.checkpoint
    found = s.execute(
        select(t.c.id).where(t.c.size == c.size, t.c.root == c.root_hex, t.c.note == cp.note)
    ).first()
    if found is None:
        s.add(
            LedgerCheckpoint(
                size=c.size,
                root=c.root_hex,
                origin=c.origin,
                key_id=f"{signer.verifier.id:08x}",
                note=cp.note,
            )
        )


def latest(store: Store, keys: Keys, *, min_size: int = 0) -> SignedCheckpoint | None:
    """The latest stored checkpoint (of at least ``min_size`` entries), signature checked when
    keys are known."""
    with store.session() as s:
        row = latest_row(s, min_size=min_size)
        return open_row(row, keys) if row is not None else None


def covering(store: Store, keys: Keys, size: int) -> SignedCheckpoint:
    """A signed checkpoint of at least ``size`` entries: the latest stored one when it covers
    them (a read, no signature made), else a new one when the signing key is at hand."""
    cp = latest(store, keys)
    if (
        cp is not None
        and cp.checkpoint.size >= size
        and (keys.signer is None or cp.checkpoint.origin == keys.signer.name)
    ):
        return cp
    if keys.signer is not None:
        return issue(store, keys.signer, keys.verifiers, keys.record)
    raise NoCheckpointError(
        f"no signed checkpoint covers entry {size} yet, and no "
        "signing key is configured to issue one",
        path="--key",
        expected="the ledger key (--key or STRAITS_LEDGER_KEY), or a "
        "checkpoint issued by `straits ledger checkpoint` "
        "since",
    )
