"""The audit ledger: append-only, hash-chained, and a Merkle tree log (RFC 6962).

Each entry holds who recorded what, when, for which tenant, and a body: the digest of the
inputs (and the inputs themselves, or the digest of a stored scenario), the rule packs'
versions and digests, the regime and date asked about, and the decision or plan.

Two structures cover the entries, both written in the entry's own transaction:

* the **hash chain** (kept from the first version): an entry's ``hash`` is the SHA-256 of the
  canonical JSON of its fields and the previous entry's hash; the head row keeps the last
  number and hash;
* the **Merkle tree** (``store/tree.py``): leaf ``seq - 1`` is ``SHA-256(0x00 || leaf data)``,
  the leaf data being the canonical JSON of the entry's fields, its per-tenant number and a
  random salt. Inclusion proofs (receipts), consistency proofs (an older checkpoint is a prefix
  of today's log) and signed checkpoints (``store/checkpoints.py``) are computed from it.

An append is one transaction under the database-wide write lock (``Store.write``): it reads
the head, inserts the entry, its tree nodes and moves the head, or does nothing at all.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.orm import Session

from straits.errors import LedgerError, StraitsError
from straits.store import merkle, tree
from straits.store.canonical import canonical as canonical  # re-exported: its old home
from straits.store.canonical import digest as digest
from straits.store.canonical import loads_stored, utf8
from straits.store.contention import refuses_writes
from straits.store.db import Store
from straits.store.tables import MAX_TENANT as MAX_TENANT  # re-exported: its old home
from straits.store.tables import LedgerHead, LedgerRow
from straits.store.verification import Verification as Verification  # re-exported

GENESIS = "0" * 64
MAX_ENTRY = 2**31 - 1
"""the largest entry number a database holds: ``ledger.seq`` is a 32-bit INTEGER on
PostgreSQL, where a larger number in a query is an error (``integer out of range``: a 500 of
``GET /v1/ledger/entries/3000000000``), not an entry that is not there"""
KINDS = ("check", "plan", "admission", "replay")


@dataclass(frozen=True)
class Entry:
    seq: int
    recorded_at: str
    tenant: str
    actor: str
    kind: str
    body: str
    """canonical JSON text"""
    prev_hash: str
    hash: str
    tenant_seq: int = 0
    salt: str = ""

    def expected_hash(self) -> str:
        """The chain hash (unchanged since the first version, so published heads still
        verify)."""
        return digest(
            {
                "seq": self.seq,
                "recorded_at": self.recorded_at,
                "tenant": self.tenant,
                "actor": self.actor,
                "kind": self.kind,
                "body": self.body,
                "prev_hash": self.prev_hash,
            }
        )

    def leaf_data(self) -> bytes:
        return leaf_data(
            self.seq,
            self.tenant_seq,
            self.recorded_at,
            self.tenant,
            self.actor,
            self.kind,
            self.body,
            self.salt,
        )

    def leaf_hash(self) -> bytes:
        return merkle.leaf_hash(self.leaf_data())

    @property
    def content(self) -> dict[str, Any]:
        """The body as an object; ``LedgerError`` when it is not one (Straits only writes
        canonical JSON objects, so the entry was rewritten)."""
        try:
            doc = loads_stored(self.body)
        except ValueError:  # not JSON, a NULL body, nested thousands deep: altered
            doc = None
        if not isinstance(doc, dict):
            raise LedgerError(
                f"ledger entry {self.seq}: its body is not a JSON object (the entry was rewritten)",
                self.seq,
            )
        return doc

    def to_json(self) -> dict[str, Any]:
        """The export form: every stored field, the body as text so the hashes can be
        recomputed from the export alone."""
        return {
            "seq": self.seq,
            "tenant_seq": self.tenant_seq,
            "recorded_at": self.recorded_at,
            "tenant": self.tenant,
            "actor": self.actor,
            "kind": self.kind,
            "body": self.body,
            "salt": self.salt,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    def leaf_json(self) -> dict[str, Any]:
        """What a receipt carries: the fields of the leaf, nothing about other entries."""
        return {
            "seq": self.seq,
            "tenant_seq": self.tenant_seq,
            "recorded_at": self.recorded_at,
            "tenant": self.tenant,
            "actor": self.actor,
            "kind": self.kind,
            "body": self.body,
            "salt": self.salt,
        }

    @classmethod
    def from_row(cls, r: LedgerRow) -> Entry:
        return cls(
            r.seq,
            r.recorded_at,
            r.tenant,
            r.actor,
            r.kind,
            r.body,
            r.prev_hash,
            r.hash,
            r.tenant_seq,
            r.salt,
        )

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Entry:
        """From the export form (exports made before the tree have no ``tenant_seq`` or
        ``salt``: 0 and '' stand for them). Each field has the JSON type the export writes
        (``ValueError`` naming it): a string was read as a number (``"seq": "2"``, any digits
        ``int()`` reads) and a number or a list as a string, so a retyped export verified."""
        return cls(
            _int(d, "seq", least=1),
            _text(d, "recorded_at"),
            _text(d, "tenant"),
            _text(d, "actor"),
            _text(d, "kind"),
            _text(d, "body"),
            _text(d, "prev_hash", ""),
            _text(d, "hash", ""),
            _int(d, "tenant_seq", 0, least=0),
            _text(d, "salt", ""),
        )


_MISSING = object()


def _int(d: dict[str, Any], field: str, default: Any = _MISSING, *, least: int) -> int:
    v = d[field] if default is _MISSING else d.get(field, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        raise ValueError(f"{field}: {str(v)[:40]!r} is not an entry number")
    return v


def _text(d: dict[str, Any], field: str, default: Any = _MISSING) -> str:
    v = d[field] if default is _MISSING else d.get(field, default)
    if not isinstance(v, str):
        raise ValueError(f"{field}: expected a string, not {type(v).__name__}")
    try:
        return utf8(v)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


def leaf_data(
    seq: int,
    tenant_seq: int,
    recorded_at: str,
    tenant: str,
    actor: str,
    kind: str,
    body: str,
    salt: str,
) -> bytes:
    """The bytes of an entry's Merkle leaf: the canonical JSON of its fields (a format: it
    never changes, or old receipts stop verifying)."""
    return canonical(
        {
            "seq": seq,
            "tenant_seq": tenant_seq,
            "recorded_at": recorded_at,
            "tenant": tenant,
            "actor": actor,
            "kind": kind,
            "body": body,
            "salt": salt,
        }
    ).encode("utf-8")


#: who an entry is for and by: one line of printable text (``ledger show`` prints them to a
#: terminal, the console and receipts show them)
# surrogates too: bytes that were not UTF-8 in argv (Python keeps them as lone surrogates),
# which no database can store (a UnicodeEncodeError traceback on SQLite and PostgreSQL)
_WHO = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]+")
MAX_ACTOR = 200


def check_who(tenant: str | None, actor: str | None) -> None:
    """Refuse a tenant or actor name with a control character (an ESC sequence retitled the
    terminal of whoever ran ``ledger show``; a newline split its row) or bytes that are not
    UTF-8, empty or too long. ``actor=None`` checks a tenant filter (``--tenant ''`` showed an
    empty table, exit 0, for a name no entry can have)."""
    from straits.errors import InputError

    for value, option, cap in ((tenant, "--tenant", MAX_TENANT), (actor, "--actor", MAX_ACTOR)):
        if value is not None and (not _WHO.fullmatch(value) or len(value) > cap):
            raise InputError(
                f"{value[:60]!r} cannot name who an entry is for or by",
                path=option,
                expected=f"1 to {cap} characters of one line of printable text",
            )


def append(
    session: Session,
    *,
    tenant: str,
    actor: str,
    kind: str,
    body: dict[str, Any],
    before_commit: Callable[[Entry], None] | None = None,
) -> Entry:
    """Append one entry inside ``session``, which must come from :meth:`Store.write` (the
    write lock is what keeps concurrent appends in one chain and one tree). ``before_commit``
    is called with the entry after it and its tree nodes are written and before the
    transaction commits (tests use it to kill a process mid-append)."""
    if kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {kind!r}")
    check_who(tenant, actor)
    head = session.get(LedgerHead, 1)
    _check_tail(session, head)
    seq, prev = (head.seq + 1, head.hash) if head is not None else (1, GENESIS)
    tenant_seq = (
        session.scalar(select(func.max(LedgerRow.tenant_seq)).where(LedgerRow.tenant == tenant))
        or 0
    ) + 1
    now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    entry = Entry(
        seq, now, tenant, actor, kind, canonical(body), prev, "", tenant_seq, secrets.token_hex(16)
    )
    entry = Entry(**{**entry.__dict__, "hash": entry.expected_hash()})
    session.add(LedgerRow(**entry.__dict__))
    try:
        tree.add_leaf(session, seq - 1, entry.leaf_hash())
        if head is None:
            session.add(LedgerHead(id=1, seq=seq, hash=entry.hash))
        else:
            head.seq, head.hash = seq, entry.hash
        session.flush()
    except (tree.MissingNodeError, ValueError, IntegrityError, DataError, ProgrammingError) as exc:
        # DataError/ProgrammingError: PostgreSQL refusing a value for an altered column's type
        # (SQLite stores it, or fails a constraint: IntegrityError); a role that may not write
        # is the store's error, not an altered log
        if isinstance(exc, DBAPIError) and refuses_writes(exc):
            raise
        detail = (str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)).splitlines()[0]
        raise LedgerError(
            f"cannot append entry {seq}: the log's tables disagree ({detail}); "
            f"the database was altered{_SEE_VERIFY}",
            seq,
        ) from None
    if before_commit is not None:
        before_commit(entry)
    return entry


_SEE_VERIFY = "; nothing was recorded (`straits ledger verify` shows what differs)"


def _check_tail(session: Session, head: LedgerHead | None) -> None:
    """The head row must name the last entry (its number and hash), or an append would chain
    onto a head that is not the log's: a head rewound, advanced, re-hashed or deleted by hand
    made the append fail with a traceback (a duplicate tree node) or, for a changed hash,
    silently extend a chain that no longer verifies. Two primary-key reads."""
    last = session.execute(
        select(LedgerRow.seq, LedgerRow.hash).order_by(LedgerRow.seq.desc()).limit(1)
    ).first()
    stored = (head.seq, head.hash) if head is not None else None
    if (None if last is None else (last[0], last[1])) == stored:
        return
    what = "no head row" if stored is None else f"head {stored[0]}:{str(stored[1])[:12]}"
    tail = "no entry" if last is None else f"entry {last[0]}:{str(last[1])[:12]}"
    raise LedgerError(
        f"refusing to append: the log has {what} but its last is {tail}: the "
        f"ledger_head or ledger table was altered{_SEE_VERIFY}",
        None if last is None else int(last[0]),
    )


def record(store: Store, *, tenant: str, actor: str, kind: str, body: dict[str, Any]) -> Entry:
    """Append one entry in a transaction of its own."""
    with store.write() as session:
        return append(session, tenant=tenant, actor=actor, kind=kind, body=body)


# --- reading -------------------------------------------------------------------------------------
def entries(
    store: Store, *, tenant: str | None = None, since: int = 1, limit: int | None = None
) -> Iterator[Entry]:
    """Entries in order, optionally one tenant's only."""
    if since > MAX_ENTRY:
        return
    with store.session() as s:
        q = select(LedgerRow).where(LedgerRow.seq >= since).order_by(LedgerRow.seq)
        if tenant is not None:
            q = q.where(LedgerRow.tenant == tenant)
        if limit is not None:
            q = q.limit(limit)
        for row in s.scalars(q).yield_per(500):
            yield Entry.from_row(row)


def tenant_entries(
    store: Store, tenant: str, *, since: int = 1, limit: int | None = None
) -> Iterator[Entry]:
    """One tenant's entries in the tenant's own numbering (``tenant_seq``) from ``since``."""
    if since > MAX_ENTRY:
        return
    with store.session() as s:
        q = (
            select(LedgerRow)
            .where(LedgerRow.tenant == tenant, LedgerRow.tenant_seq >= since)
            .order_by(LedgerRow.tenant_seq)
        )
        if limit is not None:
            q = q.limit(limit)
        for row in s.scalars(q).yield_per(500):
            yield Entry.from_row(row)


def seq_of(store: Store, tenant: str, tenant_seq: int) -> int | None:
    """The global number of a tenant's entry ``tenant_seq``."""
    if not 1 <= tenant_seq <= MAX_ENTRY:
        return None
    with store.session() as s:
        return s.scalar(
            select(LedgerRow.seq).where(
                LedgerRow.tenant == tenant, LedgerRow.tenant_seq == tenant_seq
            )
        )


def get_entry(store: Store, seq: int) -> Entry | None:
    if not 1 <= seq <= MAX_ENTRY:
        return None
    with store.session() as s:
        row = s.get(LedgerRow, seq)
        return Entry.from_row(row) if row is not None else None


def head(store: Store) -> tuple[int, str] | None:
    with store.session() as s:
        h = s.get(LedgerHead, 1)
        return (h.seq, h.hash) if h is not None else None


def count(store: Store, tenant: str | None = None) -> int:
    with store.session() as s:
        q = select(func.count()).select_from(LedgerRow)
        if tenant is not None:
            q = q.where(LedgerRow.tenant == tenant)
        return int(s.scalar(q) or 0)


# --- verification --------------------------------------------------------------------------------
def verify_chain(
    chain: Iterable[Entry],
    recorded_head: tuple[int, str] | None = None,
    scenario_digest_ok: Callable[[str], bool] | None = None,
    *,
    head_kept: bool = False,
) -> Verification:
    """Walk ``chain`` in order and name the first entry that was altered, removed or
    reordered. ``recorded_head`` (the stored head, or a published one) catches a removed
    tail; ``head_kept`` says a head should exist (the database keeps one);
    ``scenario_digest_ok`` checks the stored scenario a plan entry points to."""
    prev, expected, n, last = GENESIS, 1, 0, GENESIS

    def bad(seq: int, problem: str, code: str) -> Verification:
        return Verification(False, n, expected - 1, last, seq, problem, code=code)

    for e in chain:
        if e.seq != expected:
            if e.seq > expected:
                return bad(
                    expected,
                    f"entry {expected} is missing: it was removed (the chain "
                    f"goes from {expected - 1} to {e.seq})",
                    "entry-missing",
                )
            return bad(
                e.seq,
                f"entry {e.seq} appears out of order after entry "
                f"{expected - 1}: entries were reordered",
                "entry-reordered",
            )
        if e.expected_hash() != e.hash:
            return bad(
                e.seq,
                f"entry {e.seq} was altered: its content no longer matches its hash",
                "entry-altered",
            )
        if e.prev_hash != prev and e.seq == 1:
            return bad(
                1, "entry 1 does not start from the genesis hash: it was replaced", "entry-replaced"
            )
        if e.prev_hash != prev:
            return bad(
                expected - 1,
                f"entry {expected - 1} does not match the hash entry "
                f"{e.seq} recorded for it: entry {expected - 1} was "
                "altered and re-hashed, or replaced",
                "entry-rehashed",
            )
        if scenario_digest_ok is not None and e.kind == "plan":
            try:
                inputs = e.content.get("inputs")
            except StraitsError as exc:
                return bad(e.seq, str(exc), "entry-rewritten")
            ref = inputs.get("scenario_digest") if isinstance(inputs, dict) else None
            if not isinstance(ref, str):
                return bad(
                    e.seq,
                    f"entry {e.seq} is a plan that records no scenario: the entry was rewritten",
                    "entry-rewritten",
                )
            if not scenario_digest_ok(ref):
                return bad(
                    e.seq,
                    f"entry {e.seq}: the scenario it records ({ref[:12]}...) "
                    "was altered or removed",
                    "scenario-altered",
                )
        prev, last, expected, n = e.hash, e.hash, expected + 1, n + 1
    if recorded_head is not None:
        hseq, hhash = recorded_head
        if hseq > n:
            return bad(
                n + 1,
                f"entries {n + 1} to {hseq} were removed from the end (the "
                f"head records {hseq} entries)",
                "tail-removed",
            )
        if hseq < n or hhash != last:
            return bad(
                hseq,
                f"the ledger head records entry {hseq} with another hash: the "
                "head or the last entries were altered",
                "head-altered",
            )
    elif n and head_kept:
        return bad(n, "the ledger head is missing", "head-missing")
    return Verification(True, n, n, last)


def verify(store: Store, keys: Any = None) -> Verification:
    """Verify everything the store holds against the log: the chain, the Merkle tree, the
    signed checkpoints (with ``keys``, default: the configured ones), and the plans, decisions
    and scenarios the entries record (``store/integrity.py``)."""
    from straits.store.integrity import verify_store

    return verify_store(store, keys)
