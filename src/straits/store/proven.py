"""Verified reads: the one way a recorded entry, plan or decision leaves the database.

:func:`prove_entry` reads an entry and proves, from the stored tree, that it is leaf ``seq - 1``
of the current log (an inclusion proof) and that the current log extends the latest signed
checkpoint (a consistency proof, the signature checked with the configured key). A plan is then
taken from its entry, and the copy in the ``plans`` table (its result, tenant, scenario) must
match it: any difference refuses the read with :class:`~straits.errors.LedgerError` naming the
entry. ``export``, ``impact``, the API's plan views and the SkyPilot admission hook all read
plans through here (``records.find_plan``).

What each read proves depends on the keys: with a verifier key, an entry covered by a signed
checkpoint cannot have been changed by anyone without the signing key; an entry recorded after
the latest checkpoint is proven against the stored tree only (``Proof.signed`` is False). With
no key, every read is proven against the stored tree, which catches any edit of an entry or of
a plan or decision row, but not someone who rewrites the tree too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from straits.errors import LedgerError, NotFoundError
from straits.store import checkpoints, merkle, tree
from straits.store.canonical import loads_stored
from straits.store.chain_links import broken_links, chain_problem
from straits.store.db import Store
from straits.store.keys import Keys, configured
from straits.store.ledger import Entry, canonical, digest
from straits.store.note import SignedCheckpoint
from straits.store.tables import DecisionRow, LedgerRow, PlanRow, ScenarioRow


@dataclass(frozen=True)
class Proof:
    """An entry and what proved it."""

    entry: Entry
    tree_size: int
    root: bytes
    checkpoint: SignedCheckpoint | None
    """the latest stored checkpoint the current tree was proven to extend"""
    nodes: tree.Proofs
    """the node hashes read (they also answer the entry's inclusion proof at the
    checkpoint's size when it covers the entry)"""

    @property
    def signed(self) -> bool:
        """Whether a signed checkpoint whose signature was checked covers the entry."""
        cp = self.checkpoint
        return cp is not None and cp.key is not None and cp.checkpoint.size >= self.entry.seq

    def to_json(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "seq": self.entry.seq,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "signed": self.signed,
            "checkpoint_size": cp.checkpoint.size if cp is not None else None,
        }


def prove_in(s: Session, seq: int, keys: Keys) -> Proof:
    """:func:`prove_entry` inside an open session: four indexed reads (the entry, the head,
    the latest checkpoint, the O(log n) tree nodes of every proof involved), and the hash of
    the entry before it (``chain_links.broken_links``)."""
    from straits.store.ledger import MAX_ENTRY

    if not 1 <= seq <= MAX_ENTRY:  # beyond any log (and PostgreSQL's INTEGER)
        raise NotFoundError(f"no ledger entry {seq}")
    # the checkpoint before the head: the log only grows, so a head read after a checkpoint
    # covers it even where each statement sees the latest commit (PostgreSQL's READ COMMITTED)
    cp_row = checkpoints.latest_row(s)
    row: Any = s.execute(select(LedgerRow.__table__).where(LedgerRow.seq == seq)).first()
    head = checkpoints.tree_head_size(s)
    if row is None:
        if not 1 <= seq <= head:
            raise NotFoundError(f"no ledger entry {seq}: the log has {head} entries")
        raise LedgerError(f"ledger entry {seq} does not exist: it was removed", seq)
    entry = Entry.from_row(row)
    if seq > head:
        raise LedgerError(
            f"ledger entry {seq} lies beyond the log's head ({head}): it was "
            "inserted outside the log",
            seq,
        )
    cp = checkpoints.open_row(cp_row, keys) if cp_row is not None else None
    cp_size = cp.checkpoint.size if cp is not None else 0
    if cp is not None and cp_size > head:
        raise LedgerError(
            f"checkpoint #{cp_row.id if cp_row else '?'} was signed at {cp_size} "
            f"entries but the log has {head}: entries were removed from the end",
            head + 1,
        )
    inclusions = [(seq - 1, head)] + ([(seq - 1, cp_size)] if cp_size >= seq else [])
    try:
        p = tree.proofs(
            s,
            roots=[head],
            inclusions=inclusions,
            consistencies=[(cp_size, head)] if cp is not None else [],
        )
    except (tree.MissingNodeError, ValueError) as exc:
        raise LedgerError(f"ledger entry {seq} cannot be proven: {exc}", seq) from None
    root = p.root(head)
    try:
        merkle.verify_inclusion(seq - 1, head, entry.leaf_hash(), p.inclusion(seq - 1, head), root)
    except merkle.ProofError:
        raise LedgerError(
            f"ledger entry {seq} is not the entry the log holds: its content no "
            "longer matches its Merkle leaf (the entry was altered)",
            seq,
        ) from None
    if cp is not None:
        try:
            merkle.verify_consistency(
                cp_size, head, cp.checkpoint.root, root, p.consistency(cp_size, head)
            )
        except merkle.ProofError:
            raise LedgerError(
                f"the log no longer extends the checkpoint signed at {cp_size} "
                f"entries: it was rewritten (ledger entry {seq} cannot be "
                "trusted)",
                seq,
            ) from None
    _check_chain_hash(entry)
    link = broken_links(s, [entry]).get(seq)
    if link is not None:
        raise link
    return Proof(entry, head, root, cp, p)


def _check_chain_hash(entry: Entry) -> None:
    """The entry's chain ``hash`` (not in its Merkle leaf) against its content and
    ``prev_hash``: a proven read serves it (the report's "Entry hash", the console's plan
    page), and an edited one was shown there as the entry's (led50)."""
    problem = chain_problem(entry)
    if problem is not None:
        raise problem


def prove_entries(store: Store, entries: list[Entry], keys: Keys | None = None) -> None:
    """Every entry of ``entries`` (a page of a listing) proven as :func:`prove_in` proves one,
    with one read of the tree's nodes for all; ``LedgerError`` naming the first that is not."""
    first = unproven_entries(store, entries, keys, mark=False)[1]
    if first is not None:
        raise first


def unproven_entries(
    store: Store, entries: list[Entry], keys: Keys | None = None, *, mark: bool = True
) -> tuple[set[int], LedgerError | None]:
    """The numbers of the entries of ``entries`` the log does not prove, each checked as
    :func:`prove_in` checks one, and the first error (the one :func:`prove_entries` raises);
    empty and None when every one is proven. One read of the tree's nodes for all: ``ledger
    show`` marked only the first 1,000 of a page, proven one by one (chain64). A page whose
    tree nodes are missing is marked entry by entry (each its own proof's nodes), unless
    ``mark`` is False: then every entry, as :func:`prove_entries` needs only the error (it
    proved a page of an API listing one entry at a time, one session each: rev64)."""
    if not entries:
        return set(), None
    keys = keys if keys is not None else configured()
    every = {e.seq for e in entries}
    with store.session() as s:
        cp_row = checkpoints.latest_row(s)  # before the head, as in prove_in
        head = checkpoints.tree_head_size(s)
        cp = checkpoints.open_row(cp_row, keys) if cp_row is not None else None
        cp_size = cp.checkpoint.size if cp is not None else 0
        if cp is not None and cp_size > head:
            return every, LedgerError(
                f"a checkpoint was signed at {cp_size} entries but the log has "
                f"{head}: entries were removed from the end",
                head + 1,
            )
        beyond = [e for e in entries if e.seq > head]
        first = (
            LedgerError(
                f"ledger entry {beyond[0].seq} lies beyond the log's head ({head}): "
                "it was inserted outside the log",
                beyond[0].seq,
            )
            if beyond
            else None
        )
        within = [e for e in entries if e.seq <= head]
        split: LedgerError | None = None
        try:
            p = tree.proofs(
                s,
                roots=[head],
                inclusions=[(e.seq - 1, head) for e in within],
                consistencies=[(cp_size, head)] if cp is not None else [],
            )
        except (tree.MissingNodeError, ValueError) as exc:
            error = first or LedgerError(
                f"ledger entries from {entries[0].seq} cannot be proven: {exc}", entries[0].seq
            )
            if len(entries) == 1 or not mark or not _root_readable(s, head, cp_size, cp):
                return every, error
            split = error
        else:
            links = broken_links(s, within)
    if split is not None:
        # the page's nodes are missing but not the root's: halves proven, a failing half
        # split again, so a missing node costs O(log n) proofs, not one per entry (rev64)
        half = len(entries) // 2
        bad = unproven_entries(store, entries[:half], keys)[0]
        return bad | unproven_entries(store, entries[half:], keys)[0], split
    bad = {e.seq for e in beyond}
    root = p.root(head)
    for e in within:
        try:
            merkle.verify_inclusion(
                e.seq - 1, head, e.leaf_hash(), p.inclusion(e.seq - 1, head), root
            )
        except merkle.ProofError:
            bad.add(e.seq)
            first = first or LedgerError(
                f"ledger entry {e.seq} is not the entry the log holds: its "
                "content no longer matches its Merkle leaf (the entry was "
                "altered)",
                e.seq,
            )
    if cp is not None:
        try:
            merkle.verify_consistency(
                cp_size, head, cp.checkpoint.root, root, p.consistency(cp_size, head)
            )
        except merkle.ProofError:
            return every, first or LedgerError(
                f"the log no longer extends the checkpoint signed at {cp_size} "
                "entries: it was rewritten",
                entries[0].seq,
            )
    for e in within:
        problem = chain_problem(e) or links.get(e.seq)
        if problem is not None:
            bad.add(e.seq)
            first = first or problem
    return bad, first


def _root_readable(s: Session, head: int, cp_size: int, cp: object) -> bool:
    """Whether the tree's nodes for the head's root (and the checkpoint's consistency) are
    there: without them no entry of a page is proven, and none is proven alone either."""
    try:
        tree.proofs(s, roots=[head], consistencies=[(cp_size, head)] if cp is not None else [])
    except (tree.MissingNodeError, ValueError):
        return False
    return True


def prove_entry(store: Store, seq: int, keys: Keys | None = None) -> Proof:
    """Entry ``seq``, proven (see the module's docstring), or :class:`LedgerError`."""
    keys = keys if keys is not None else configured()
    with store.session() as s:
        return prove_in(s, seq, keys)


# --- plans and decisions against their entries ---------------------------------------------------
def plan_row_problem(
    row: PlanRow,
    entry: Entry,
    *,
    with_result: bool = True,
    body: dict[str, Any] | None = None,
    scenario_name: str | None = None,
) -> str | None:
    """What differs between a plan row and the entry it points to, or None; without
    ``with_result``, the stored result is not compared (a list, which serves no result, need
    not read it). ``body``: the entry's body already decoded (``entry.content``), so a reader
    that needs it too decodes it once (web33). ``scenario_name``: the ``scenarios.name`` a
    list serves beside the plan, held to the name the entry's plan records (led50: an edited
    one was listed, 200, while `ledger verify` failed it)."""
    where = f"plan {row.id} (ledger entry {entry.seq})"
    if entry.kind != "plan":
        return (
            f"{where}: the entry is a {entry.kind}, not a plan: the plan's ledger_seq was altered"
        )
    body = entry.content if body is None else body
    result = body.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("plan"), dict):
        return f"{where}: the entry records no plan: it was rewritten"
    if row.status != "done":
        return (
            f"{where}: stored status {row.status!r} but only a finished plan is recorded: "
            "the plans table was altered"
        )
    job = _job_problem(row)
    if job is not None:
        return f"{where}: {job}, as no recorded plan's job is: the plans table was altered"
    if result.get("plan_id") != row.id:
        return (
            f"{where}: the entry records plan {result.get('plan_id')}: the plan's "
            "ledger_seq was altered"
        )
    if row.tenant != entry.tenant:
        return (
            f"{where}: stored tenant {row.tenant!r} but the entry records "
            f"{entry.tenant!r}: the plans table was altered"
        )
    if row.actor != entry.actor:  # as a decision's (led30: an edited one passed)
        return (
            f"{where}: stored actor {row.actor!r} but the entry records "
            f"{entry.actor!r}: the plans table was altered"
        )
    inputs = body.get("inputs")
    inputs = inputs if isinstance(inputs, dict) else {}
    if inputs.get("scenario_digest") != row.scenario_digest:
        return (
            f"{where}: its stored scenario is not the one the entry records: the plans "
            "table was altered"
        )
    if not _same_json(row.options, inputs.get("options")):
        return (
            f"{where}: its stored options differ from the ones the entry records: the "
            "plans table was altered"
        )
    named = result["plan"].get("scenario")
    if scenario_name is not None and isinstance(named, str) and scenario_name != named:
        return (
            f"{where}: its scenario's stored name {scenario_name[:60]!r} but the entry "
            f"records {named[:60]!r}: the scenarios table was altered"
        )
    if with_result and row.result is not None and not _same_json(row.result, result["plan"]):
        return (
            f"{where}: its stored result differs from the plan the entry records: the "
            "plans table was altered"
        )
    return None


def _job_problem(row: PlanRow) -> str | None:
    """What a recorded plan's job fields say that a finished, recorded job never does (the
    queue's ``finish`` and ``records.record_plan`` write them so): the API showed an edited
    ``error`` ("revoked: do not run"), ``record: false`` beside the entry, or a cancel asked
    of a finished plan, from the row as it stood (a fresh-eye attack)."""
    if not row.record:
        return "stored record false though it has a ledger entry"
    if row.error is not None:
        return "stored an error"
    if row.cancel_requested:
        return "stored a cancel request"
    if row.finished_at is None:
        return "stored no finishing time"
    return None


def decision_row_problem(row: DecisionRow, entry: Entry) -> str | None:
    where = f"decision {row.id} (ledger entry {entry.seq})"
    if entry.kind != "check":
        return (
            f"{where}: the entry is a {entry.kind}, not a check: the decision's ledger_seq "
            "was altered"
        )
    body = entry.content
    if row.tenant != entry.tenant:
        return (
            f"{where}: stored tenant {row.tenant!r} but the entry records "
            f"{entry.tenant!r}: the decisions table was altered"
        )
    if row.actor != entry.actor:
        return (
            f"{where}: stored actor {row.actor!r} but the entry records "
            f"{entry.actor!r}: the decisions table was altered"
        )
    if _canon_text(row.answer) != canonical(body.get("result")):
        return (
            f"{where}: its stored answer differs from the one the entry records: the "
            "decisions table was altered"
        )
    if _canon_text(row.request) != canonical(body.get("inputs")):
        return (
            f"{where}: its stored request differs from the one the entry records: the "
            "decisions table was altered"
        )
    return None


def has_decision_row(entry: Entry) -> bool:
    """Whether ``entry`` is a check as ``records.record_check`` writes it, in the transaction
    that also writes its one decision row (a ``check`` entry of another shape was appended by
    hand, with no row)."""
    if entry.kind != "check":
        return False
    try:
        body = entry.content
    except LedgerError:
        return False
    return isinstance(body, dict) and {"inputs", "inputs_digest", "result"} <= body.keys()


def missing_decision(entry: Entry, rows: int) -> str | None:
    """What is wrong with ``rows`` decision rows pointing to ``entry``, or None."""
    if rows > 1:
        return (
            f"ledger entry {entry.seq} records one check, but {rows} decision rows point to "
            "it: rows were copied or moved (the decisions table was altered)"
        )
    if rows == 0 and has_decision_row(entry):
        return (
            f"ledger entry {entry.seq} records a check, but no decision row points to it: "
            "the decision was deleted or detached from its entry (the decisions table was "
            "altered)"
        )
    return None


def _canon_text(text: str) -> str:
    try:
        return canonical(loads_stored(text))
    except ValueError:  # not JSON, NULL, nested thousands deep
        return "\x00not JSON"


def _same_json(text: str, obj: Any) -> bool:
    """Whether the stored JSON ``text`` is ``obj`` in canonical form, as
    ``_canon_text(text) == canonical(obj)`` answers it: a text that is ``canonical(obj)``
    already (what Straits writes) is, without decoding it (canonical JSON read back and
    written again is the same text); any other text is decoded and compared as before."""
    want = canonical(obj)
    return text == want or _canon_text(text) == want


@dataclass(frozen=True)
class ProvenPlan:
    proof: Proof
    plan: dict[str, Any]
    """the plan JSON contract, as the entry records it"""
    scenario: dict[str, Any]
    """the stored scenario document, its digest checked against the entry"""
    options: dict[str, Any] | None = None
    """the planner options, as the entry records them (read with the rest: web33)"""


def prove_plan(store: Store, row: PlanRow, keys: Keys | None = None) -> ProvenPlan:
    """A finished, recorded plan as its ledger entry proves it; refuses (``LedgerError``
    naming the entry) when the stored copy or its scenario differ."""
    if row.ledger_seq is None:
        raise LedgerError(f"plan {row.id} is not recorded in the ledger, so nothing proves it")
    keys = keys if keys is not None else configured()
    with store.session() as s:
        try:
            proof = prove_in(s, row.ledger_seq, keys)
        except NotFoundError:  # a row pointing past the log: altered, not a missing plan
            raise LedgerError(
                f"plan {row.id} points to ledger entry {row.ledger_seq}, which does not "
                "exist: the plans table was altered",
                None,
            ) from None
        # the entry's body decoded once, here, for the comparison and the plan (web33)
        body = proof.entry.content if proof.entry.kind == "plan" else None
        problem = plan_row_problem(row, proof.entry, body=body)
        if problem or body is None:
            raise LedgerError(
                f"{problem}; refusing to use it (`straits ledger verify` shows all that differs)",
                proof.entry.seq,
            )
        ref = body["inputs"]["scenario_digest"]
        sc_row = s.get(ScenarioRow, ref)
        doc: Any = None
        if sc_row is not None:
            try:
                doc = loads_stored(sc_row.body)
            except ValueError:  # not JSON, NULL, too deep
                doc = None
        if not isinstance(doc, dict) or digest(doc) != ref:
            raise LedgerError(
                f"plan {row.id} (ledger entry {proof.entry.seq}): the scenario it "
                f"records ({ref[:12]}...) was altered or removed",
                proof.entry.seq,
            )
        options = body["inputs"].get("options")
        return ProvenPlan(
            proof,
            dict(body["result"]["plan"]),
            doc,
            dict(options) if isinstance(options, dict) else None,
        )
