"""``straits ledger verify``: everything the database holds, checked against the log.

A full check walks every entry once (constant memory) and checks, in order:

1. the hash chain (an entry altered, removed, reordered or replaced; the head row);
2. each entry against its Merkle leaf, and every interior node of the tree against its children
   (an entry altered with the chain recomputed; the tree altered);
3. every stored checkpoint: its signature (with the trusted keys) and its root against the
   stored tree (a log rewritten after it was signed, entries removed from the end);
4. each older head given (``SEQ:HASH`` or a signed checkpoint), through a consistency proof
   to the current tree;
5. every plan and decision row against the entry it points to, and every scenario a plan entry
   records against its digest.

:func:`verify_heads` is the quick check: the given heads and the latest checkpoint against the
stored tree by consistency proofs only (``O(log n)``, no rescan).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from straits.errors import LedgerError
from straits.store import checkpoints, merkle, row_checks, signed_record, tree
from straits.store.canonical import loads_stored
from straits.store.db import Store
from straits.store.head_check import head_problem
from straits.store.head_proofs import Broken, check_head, consistent, size_of
from straits.store.head_proofs import ChainHead as ChainHead
from straits.store.head_proofs import Head as Head
from straits.store.keys import Keys, configured
from straits.store.ledger import Entry, Verification, digest, verify_chain
from straits.store.note import SignedCheckpoint
from straits.store.tables import (
    AlteredRowError,
    LedgerCheckpoint,
    LedgerHead,
    LedgerRow,
    ScenarioRow,
)
from straits.store.tamper import CODES as CODES
from straits.store.tamper import first_unreadable

Progress = Callable[[str, int, int], None]
"""Told how a full verification goes: ``(phase, done, total)``. The phase ``entries`` is
reported at the start, every :data:`EVERY` entries walked and at the end of the walk
(``total``: the entries the head row counts, 0 when there is none); ``tree``,
``checkpoints``, ``heads`` and ``records`` are reported once each, as ``(phase, 0, 0)``, when
they begin. A chain that does not verify ends the report at the walk."""

EVERY = 1000


def _quiet(phase: str, done: int, total: int) -> None:
    return None


def verify_store(
    store: Store,
    keys: Keys | None = None,
    heads: Iterable[Head] = (),
    progress: Progress | None = None,
) -> Verification:
    keys = keys if keys is not None else configured()
    try:
        return _verify_store(store, keys, list(heads), progress or _quiet)
    except AlteredRowError as exc:
        # a value of a type Straits never writes (SQLite keeps text in an INTEGER column):
        # reported as any other tampering, not an error without the entry's number
        with store.session() as s:
            seq = first_unreadable(s) if store.dialect == "sqlite" else None
        return Verification(
            False, 0, 0, "", seq if seq is not None else exc.seq, str(exc), code="value-altered"
        )


def _verify_store(store: Store, keys: Keys, heads: list[Head], progress: Progress) -> Verification:
    with store.session() as s:
        # one snapshot for the head, the entries, the tree and the checkpoints: a server that
        # appends meanwhile adds the next verification's entries, not a false alarm (SQLite:
        # the session's one read transaction; PostgreSQL: asked for)
        if store.dialect == "postgresql":
            s.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        recorded = _head_in(s)
        total = recorded[0] if recorded is not None else 0
        progress("entries", 0, total)
        leaf_problem: list[tuple[int, str, str]] = []

        def next_leaf(leaves: Iterator[tuple[int, bytes]], seq: int) -> tuple[int, bytes] | None:
            try:
                return next(leaves, None)
            except ValueError as exc:  # a stored leaf that is not a hash: the tree was altered
                if not leaf_problem:
                    leaf_problem.append((seq, str(exc), "tree-altered"))
                return None

        def with_leaves(chain: Iterable[Entry]) -> Iterator[Entry]:
            leaves = tree.level_hashes(s, 0)
            for e in chain:
                idx, h = next_leaf(leaves, e.seq) or (None, b"")
                if not leaf_problem and (idx != e.seq - 1 or h != e.leaf_hash()):
                    leaf_problem.append((e.seq, _leaf_message(e.seq, idx), "tree-altered"))
                if e.seq % EVERY == 0:
                    progress("entries", e.seq, total)
                yield e
            extra = next_leaf(leaves, 0) if not leaf_problem else None
            if extra is not None and not leaf_problem:
                leaf_problem.append(
                    (
                        extra[0] + 1,
                        f"the Merkle tree holds a leaf for entry "
                        f"{extra[0] + 1}, which is not in the log: "
                        "entries were removed",
                        "tail-removed",
                    )
                )

        def scenario_ok(ref: str) -> bool:
            row = s.get(ScenarioRow, ref)
            if row is None:
                return False
            try:
                doc = loads_stored(row.body)
            except ValueError:  # not JSON, NULL, too deep
                return False
            # the name beside the body (what plan lists show) is the body's own
            return isinstance(doc, dict) and digest(doc) == ref and row.name == doc.get("name")

        v = verify_chain(with_leaves(_chain(s)), recorded, scenario_ok, head_kept=True)
        if leaf_problem and (v.ok or (v.first_bad or 0) > leaf_problem[0][0]):
            seq, problem, code = leaf_problem[0]
            v = v.replace(ok=False, first_bad=seq, problem=problem, code=code)
        if not v.ok:
            return v
        n = v.entries
        progress("entries", n, total)
        try:
            progress("tree", 0, 0)
            bad = tree.check_levels(s, n)
            if bad is not None:
                raise Broken(
                    bad.first_entry,
                    f"{bad.problem} (entries from {bad.first_entry} on)",
                    "tree-altered",
                )
            root = tree.proofs(s, roots=[n]).root(n) if n else merkle.EMPTY_ROOT
            v = v.replace(root_hash=root.hex())
            progress("checkpoints", 0, 0)
            v = _check_checkpoints(s, keys, n, root, v)
            progress("heads", 0, 0)
            v = v.replace(heads=tuple(check_head(s, h, n, root) for h in heads))
            progress("records", 0, 0)
            _check_rows(s)
        except Broken as exc:
            return _failed(v, exc)
        except AlteredRowError:
            raise  # verify_store names it
        except LedgerError as exc:  # an entry whose body Straits never writes
            return v.replace(ok=False, first_bad=exc.seq, problem=str(exc), code="entry-rewritten")
        except (tree.MissingNodeError, ValueError) as exc:
            return v.replace(ok=False, problem=str(exc), code="tree-altered")
    return v


def _head_in(s: Session) -> tuple[int, str] | None:
    row = s.execute(select(LedgerHead.seq, LedgerHead.hash).where(LedgerHead.id == 1)).first()
    return (int(row[0]), str(row[1])) if row is not None else None


def _chain(s: Session) -> Iterator[Entry]:
    for row in s.scalars(select(LedgerRow).order_by(LedgerRow.seq)).yield_per(500):
        yield Entry.from_row(row)


def _leaf_message(seq: int, idx: int | None) -> str:
    if idx is None or idx > seq - 1:
        return f"the Merkle tree has no leaf for entry {seq}: tree rows were deleted"
    return (
        f"entry {seq} does not match its Merkle leaf: the entry was altered and the chain "
        "re-hashed, or the tree was altered"
    )


def _open_within(row: LedgerCheckpoint, keys: Keys, n: int) -> SignedCheckpoint:
    """A stored checkpoint, its signature checked, that covers no more than the log's ``n``
    entries (one signed beyond them means entries were removed from the end)."""
    try:
        cp = checkpoints.open_row(row, keys)
    except LedgerError as exc:
        raise Broken(None, str(exc), "checkpoint-untrusted") from None
    if cp.checkpoint.size > n:
        raise Broken(
            n + 1,
            f"checkpoint #{row.id} was signed at {cp.checkpoint.size} "
            f"entries but the log has {n}: entries {n + 1} to "
            f"{cp.checkpoint.size} were removed from the end",
            "tail-removed",
        )
    return cp


def _check_checkpoints(
    s: Session, keys: Keys, n: int, root: bytes, v: Verification
) -> Verification:
    rows = s.scalars(
        select(LedgerCheckpoint).order_by(LedgerCheckpoint.size, LedgerCheckpoint.id)
    ).all()
    latest: SignedCheckpoint | None = None
    for row in rows:
        cp = _open_within(row, keys, n)
        consistent(
            s,
            cp.checkpoint.size,
            cp.checkpoint.root,
            n,
            root,
            f"checkpoint #{row.id} ({cp.checkpoint.size} entries)",
        )
        latest = cp
    notes = list(v.notes)
    _check_record(s, keys, n, root, rows, notes)
    if latest is None:
        signatures = "none"
        notes.append("no signed checkpoint yet: `straits ledger checkpoint --key K` issues one")
    elif keys.checks_signatures:
        signatures = "checked"
    else:
        signatures = "not checked"
        notes.append(
            "no public key given (--pubkey or STRAITS_LEDGER_PUBKEY): checkpoint "
            "signatures were not checked, only their roots"
        )
    cp_json = None
    if latest is not None:
        k = latest.key
        cp_json = {
            "size": latest.checkpoint.size,
            "root_hash": latest.checkpoint.root_hex,
            "origin": latest.checkpoint.origin,
            "key": f"{k.name}+{k.id:08x}" if k else None,
            "signed": k is not None,
        }
    return v.replace(checkpoint=cp_json, signatures=signatures, notes=tuple(notes))


def _check_record(
    s: Session, keys: Keys, n: int, root: bytes, rows: Iterable[Any], notes: list[str]
) -> None:
    """With the signing key, what it last signed (its record, outside the database:
    :mod:`.signed_record`) must be a prefix of the log and still be stored: the newest
    checkpoint row deleted passed as the log's latest being the one before it (led30)."""
    if keys.record is None:
        return
    try:
        signed = signed_record.read(keys.record, keys.trusted)
    except LedgerError as exc:
        notes.append(f"not compared with the signing key's record: {exc}")
        return
    if signed is None:
        return
    c, what = signed.checkpoint, f"the checkpoint the signing key last signed ({keys.record})"
    if c.size > n:
        raise Broken(
            n + 1,
            f"{what} was signed at {c.size} entries but the log has {n}: entries {n + 1} to "
            f"{c.size} were removed from the end",
            "tail-removed",
        )
    consistent(s, c.size, c.root, n, root, what)
    if not any(r.size == c.size and r.root == c.root_hex and r.note == signed.note for r in rows):
        raise Broken(
            None,
            f"{what}, of {c.size} entries, is not among the stored checkpoints: its row was "
            "deleted or altered (or the signer stopped before storing it: `straits ledger "
            "checkpoint --key` stores it again)",
            "checkpoint-missing",
        )


def _check_rows(s: Session) -> None:
    found = row_checks.first_problem(s)
    if found is not None:
        raise Broken(*found)


QUICK_NOTE = (
    "quick check: heads and the latest checkpoint against the stored tree by consistency "
    "proofs; entries not rescanned"
)


def verify_heads(store: Store, keys: Keys, heads: Iterable[Head]) -> Verification:
    """The quick check: the latest stored checkpoint and each head given against the stored
    tree, by consistency proofs (one read of ``O(log n)`` node hashes, no rescan)."""
    try:
        return _verify_heads(store, keys, list(heads))
    except AlteredRowError as exc:  # a checkpoint or head column of another type (led30:
        # an error line with no verdict, where the full check says value-altered)
        return Verification(
            False, 0, 0, "", None, str(exc), notes=(QUICK_NOTE,), code="value-altered"
        )


def _verify_heads(store: Store, keys: Keys, heads: list[Head]) -> Verification:
    with store.session() as s:
        # before the head, as in proven.prove_in; the latest by size and the one stored last:
        # a size column lowered below an older one's hid the latest from the quick check
        rows = checkpoints.latest_rows(s)
        row = rows[0] if rows else None
        head_row = s.execute(
            select(LedgerHead.seq, LedgerHead.hash).where(LedgerHead.id == 1)
        ).first()
        n, head_hash = (int(head_row[0]), str(head_row[1])) if head_row else (0, "")
        # the note from the start: a failure's report said "the hash chain of its N entries
        # verifies" of a chain the quick check never walked
        v = Verification(True, n, n, head_hash, notes=(QUICK_NOTE,))
        try:
            if n < 0:
                raise Broken(None, f"the ledger head records {n} entries", "head-altered")
            if head_row is None and s.execute(select(LedgerRow.seq).limit(1)).first():
                raise Broken(None, "the ledger head is missing", "head-missing")
            found = head_problem(s, n, head_hash) if head_row is not None else None
            if found is not None:
                raise Broken(*found)
            opened = [(r, _open_within(r, keys, n)) for r in rows]
            cp = opened[0][1] if opened else None
            sizes = {size_of(h) for h in heads if size_of(h) <= n}
            sizes |= {c.checkpoint.size for _, c in opened}
            nodes = tree.proofs(s, roots=[n], consistencies=[(m, n) for m in sizes])
            root = nodes.root(n) if n else merkle.EMPTY_ROOT
            v = v.replace(root_hash=root.hex())
            for r, c in opened[1:]:
                what = f"checkpoint #{r.id} ({c.checkpoint.size} entries)"
                consistent(s, c.checkpoint.size, c.checkpoint.root, n, root, what, nodes)
            if cp is not None and row is not None:
                consistent(
                    s,
                    cp.checkpoint.size,
                    cp.checkpoint.root,
                    n,
                    root,
                    f"checkpoint #{row.id} ({cp.checkpoint.size} entries)",
                    nodes,
                )
                k = cp.key
                v = v.replace(
                    checkpoint={
                        "size": cp.checkpoint.size,
                        "root_hash": cp.checkpoint.root_hex,
                        "origin": cp.checkpoint.origin,
                        "key": f"{k.name}+{k.id:08x}" if k else None,
                        "signed": k is not None,
                    },
                    signatures="checked" if keys.checks_signatures else "not checked",
                )
            v = v.replace(heads=tuple(check_head(s, x, n, root, nodes) for x in heads))
        except Broken as exc:
            return _failed(v, exc)
        except (tree.MissingNodeError, ValueError) as exc:
            return v.replace(ok=False, problem=str(exc), code="tree-altered")
    return v


def _failed(v: Verification, exc: Broken) -> Verification:
    """``v`` failed as ``exc`` says; an untrusted checkpoint's ``signatures`` is ``untrusted``
    (every check said ``none``, as of a log that had signed nothing: chain64)."""
    sig = "untrusted" if exc.code == "checkpoint-untrusted" else v.signatures
    return v.replace(
        ok=False, first_bad=exc.seq, problem=exc.problem, code=exc.code, signatures=sig
    )
