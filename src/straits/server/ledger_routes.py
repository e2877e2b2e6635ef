"""The /v1/ledger routes: entries, receipts, checkpoints, proofs and verification.

Numbers are in the caller's view: a tenant's token sees its own entries numbered 1, 2, 3 (the
``seq`` of its views, its ``X-Straits-Ledger-Seq`` headers and its receipt route), never the
global sequence or the live head; an admin token sees the global numbers. A receipt necessarily
carries the entry's global position and the log's size at its checkpoint (docs/server-and-
ledger.md says what that reveals). Checkpoints served here are the ones the log has issued; only
an admin can have a fresh one signed.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from straits.errors import BusyError, InputError, LedgerError, NotFoundError, RequestError
from straits.server.auth import Caller, refuse
from straits.server.problems import openapi_responses as problems_doc
from straits.server.problems import problem
from straits.server.query import DIGITS, Whole
from straits.store import checkpoints, integrity, ledger, removed
from straits.store.db import Store
from straits.store.keys import Keys
from straits.store.ledger import Entry
from straits.store.proven import prove_entries
from straits.store.receipts import make_receipt
from straits.store.removed import RemovedEntryError
from straits.store.tables import MAX_TENANT
from straits.store.tenant_verify import verify_tenant
from straits.store.tokens import Principal

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
MAX_SEQ = 2**53


VERIFY_SLOTS = 2
"""full verifications (an admin's of the log, a tenant's of its entries) run at once per
server: each reads every entry in its scope, seconds to minutes; more callers get 503 with
Retry-After instead of holding every API thread and the database"""
_SLOTS_LOCK = threading.Lock()


def verify_slots(state: Any) -> threading.BoundedSemaphore:
    """The app's slots for full verifications (``app.state.verify_slots``, made on first use)."""
    with _SLOTS_LOCK:
        slots = getattr(state, "verify_slots", None)
        if slots is None:
            slots = state.verify_slots = threading.BoundedSemaphore(VERIFY_SLOTS)
        return slots


@contextmanager
def verify_slot(state: Any) -> Iterator[None]:
    """One of the app's full-verification slots, or :class:`BusyError` (503) when all are
    taken: the API's verify and the console's "verify each of your entries" share them."""
    slots = verify_slots(state)
    if not slots.acquire(blocking=False):
        raise BusyError(
            f"{VERIFY_SLOTS} full verifications are running; try again shortly, or ask for "
            "the quick check (quick=true)",
            retry_after=10,
        )
    try:
        yield
    finally:
        slots.release()


def _keys(request: Request) -> Keys:
    keys: Keys = request.app.state.ledger_keys
    return keys


def tenant_view(e: Entry) -> dict[str, Any]:
    """An entry as its tenant sees it: numbered within the tenant, nothing about others."""
    return {
        "seq": e.tenant_seq,
        "recorded_at": e.recorded_at,
        "tenant": e.tenant,
        "actor": e.actor,
        "kind": e.kind,
        "body": e.body,
        "content": e.content,
        "receipt": f"/v1/ledger/entries/{e.tenant_seq}/receipt",
    }


def admin_view(e: Entry) -> dict[str, Any]:
    return {**e.to_json(), "content": e.content, "receipt": f"/v1/ledger/entries/{e.seq}/receipt"}


def view_number(who: Principal, e: Entry) -> int:
    """The number of ``e`` in the caller's view (for ``X-Straits-Ledger-Seq``)."""
    return e.seq if who.is_admin else e.tenant_seq


def unproven_view(store: Store, who: Principal | None, exc: LedgerError) -> tuple[str, int | None]:
    """A :class:`LedgerError` as the caller may see it: an admin gets what differs and the
    global entry number; anyone else only that a record of theirs is not served, with their
    own entry number (the message names global numbers and the log's size)."""
    if who is not None and who.is_admin:
        return str(exc), exc.seq
    if isinstance(exc, RemovedEntryError) and exc.tenant_seq is not None:
        gone = exc.tenant_seq  # raised for the caller's own number (``removed.global_seq``)
        return (
            f"your ledger entry {gone} was removed from the database, or moved to another "
            "tenant: the log still holds it, so your entries are not served as if it was "
            "never recorded; an admin token's GET /v1/ledger/verify shows what else changed",
            gone,
        )
    try:
        e = ledger.get_entry(store, exc.seq) if exc.seq is not None and exc.seq > 0 else None
    except LedgerError:  # the entry's own row cannot be read (AlteredRowError)
        e = None
    n = e.tenant_seq if e is not None and who is not None and e.tenant == who.tenant else None
    mine = f" (your ledger entry {n})" if n is not None else ""
    return (
        f"this record{mine} is not what the ledger proves: the database was altered, so "
        "it is not served; an admin token's GET /v1/ledger/verify shows what differs",
        n,
    )


def _global_seq(request: Request, who: Principal, n: int) -> int:
    """The global number of the caller's entry ``n``: 404 when there is none, 409 when the
    log holds it but its row was deleted (``store/removed.py``)."""
    store: Store = request.app.state.store
    seq = removed.global_seq(store, None if who.is_admin else who.tenant, n)
    if seq is None:
        mine = "" if who.is_admin else f" of tenant {who.tenant!r}"
        raise NotFoundError(f"no ledger entry {n}{mine}")
    return seq


@router.get("/verify", operation_id="verifyLedger", responses={200: {"model": dict[str, Any]}})
def verify_ledger(
    request: Request,
    who: Caller,
    quick: Annotated[
        bool,
        Query(
            description="The quick check only: the latest checkpoint against the stored "
            "tree by a consistency proof, no rescan (an admin's answer says where it breaks; "
            "a tenant's, whether it holds and how many entries are theirs)."
        ),
    ] = False,
) -> dict[str, Any]:
    """Admins: the full verification (chain, tree, checkpoints, records) or, with `quick`, the
    consistency of the stored tree with the latest checkpoint. Others: their tenant's
    verification (each of its entries proven against the tree and the latest checkpoint, its
    numbers without a gap, its plan and decision rows against their entries; `first_bad` in
    its own numbering) or, with `quick`, whether the quick check holds and how many entries
    are theirs. Never a head or a global number."""
    store: Store = request.app.state.store
    if not quick:
        with verify_slot(request.app.state):
            if who.is_admin:
                return integrity.verify_store(store, _keys(request)).to_json()
            return verify_tenant(store, _keys(request), who.tenant).to_json()
    v = integrity.verify_heads(store, _keys(request), [])
    if who.is_admin:
        return v.to_json()
    return {
        "ok": v.ok,
        "entries": ledger.count(store, who.tenant),
        "signatures": v.signatures,
        "problem": None if v.ok else "the ledger failed verification; an admin token shows where",
    }


@router.get(
    "/entries",
    operation_id="listLedgerEntries",
    responses={200: {"model": list[dict[str, Any]]}, **problems_doc(409)},
)
def ledger_entries(
    request: Request,
    response: Response,
    who: Caller,
    since: Annotated[int, Query(ge=1, le=MAX_SEQ), DIGITS] = 1,
    limit: Annotated[int, Query(ge=1, le=1000), DIGITS] = 100,
    tenant: Annotated[
        str | None, Query(max_length=MAX_TENANT, description="Admins: one tenant's entries.")
    ] = None,
) -> list[dict[str, Any]]:
    """Entries in order from `since`: your tenant's, numbered 1, 2, 3 within it; every
    tenant's with their stored fields and global numbers for admins. Each has `body` (the
    canonical JSON text the hashes cover) and `content` (the same as a JSON object). The next
    page is in the `Link` header (`rel="next"`)."""
    from straits.server.listing import link_next

    store: Store = request.app.state.store
    if tenant is not None and not who.is_admin and tenant != who.tenant:
        raise refuse(
            request,
            403,
            f"a token of tenant {who.tenant!r} cannot read the entries of {tenant!r}",
            who,
        )
    if who.is_admin:
        rows = list(ledger.entries(store, tenant=tenant, since=since, limit=limit + 1))
        views = [admin_view(e) for e in rows[:limit]]
    else:  # a tenant is served only what the log proves (an admin the rows, to verify)
        rows = list(ledger.tenant_entries(store, who.tenant, since=since, limit=limit + 1))
        gap = removed.first_gap((e.tenant_seq for e in rows), since)
        shown = [e for e in rows[:limit] if gap is None or e.tenant_seq < gap]
        prove_entries(store, shown, _keys(request))  # an entry altered before the gap first
        if not rows:  # nothing to prove: still not a log cut below its checkpoint
            removed.not_cut(store)
        if gap is not None and gap <= since + limit - 1:  # a number of this page has no row
            raise removed.tenant_removed(who.tenant, gap)
        views = [tenant_view(e) for e in rows[:limit]]
    if len(rows) > limit:
        link_next(request, response, since=int(views[-1]["seq"]) + 1)
    return views


@router.get(
    "/entries/{seq}",
    operation_id="getLedgerEntry",
    responses={200: {"model": dict[str, Any]}, **problems_doc(409)},
)
def ledger_entry(request: Request, who: Caller, seq: Whole) -> dict[str, Any]:
    """One entry (your tenant's number; global for admins)."""
    if not 1 <= seq <= MAX_SEQ:
        raise NotFoundError(f"no ledger entry {seq}")
    e = ledger.get_entry(request.app.state.store, _global_seq(request, who, seq))
    assert e is not None
    if who.is_admin:
        return admin_view(e)
    prove_entries(request.app.state.store, [e], _keys(request))
    return tenant_view(e)


@router.get(
    "/entries/{seq}/receipt",
    operation_id="getLedgerReceipt",
    responses={200: {"model": dict[str, Any]}, **problems_doc(409)},
)
async def ledger_receipt(request: Request, who: Caller, seq: Whole) -> Any:
    """The receipt of one of your entries: the entry, its inclusion proof and a signed
    checkpoint, for `straits ledger verify-receipt FILE --pubkey KEY` (offline)."""
    if not 1 <= seq <= MAX_SEQ:
        raise NotFoundError(f"no ledger entry {seq}")
    store: Store = request.app.state.store
    keys = _keys(request)
    global_seq = await run_in_threadpool(_global_seq, request, who, seq)

    def make() -> dict[str, Any]:
        return make_receipt(store, global_seq, keys)

    try:
        return await run_in_threadpool(make)
    except checkpoints.NoCheckpointError:
        return problem(409, no_receipt_yet(seq), instance=request.url.path)


def no_receipt_yet(n: int) -> str:
    """Why entry ``n`` (the caller's number) has no receipt: the store's message names the
    entry's global number, which a tenant is never shown."""
    return (
        f"no receipt yet: no signed checkpoint covers entry {n} yet, and this server has no "
        "signing key to issue one"
    )


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@router.get(
    "/checkpoint",
    operation_id="getLedgerCheckpoint",
    responses={200: {"model": dict[str, Any]}, **problems_doc(404, 409)},
)
def ledger_checkpoint(
    request: Request,
    who: Caller,
    since: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_SEQ,
            description="Add a consistency proof from this size (a witness's last).",
        ),
        DIGITS,
    ] = None,
    fresh: Annotated[
        bool, Query(description="Admins: sign the current head now (needs the server's key).")
    ] = False,
) -> Any:
    """The latest checkpoint the log issued (c2sp.org/tlog-checkpoint signed note), with a
    consistency proof from `since` when asked: what witnesses record (`straits ledger
    witness`)."""
    store: Store = request.app.state.store
    keys = _keys(request)
    if fresh:
        if not who.is_admin:
            raise refuse(
                request, 403, "only an admin token can have a fresh checkpoint signed", who
            )
        if keys.signer is None:
            return problem(
                409,
                "this server has no ledger signing key (STRAITS_LEDGER_KEY)",
                instance=request.url.path,
                expected="a server started with STRAITS_LEDGER_KEY",
            )
        cp = checkpoints.issue(store, keys.signer, keys.verifiers, keys.record)
    else:
        found = checkpoints.latest(store, keys)
        if found is None:
            raise NotFoundError("the log has issued no checkpoint yet")
        cp = found
    out: dict[str, Any] = {
        "checkpoint": cp.note,
        "origin": cp.checkpoint.origin,
        "size": cp.checkpoint.size,
        "root_hash": cp.checkpoint.root_hex,
        "consistency": None,
    }
    if since is not None:
        size = cp.checkpoint.size
        if since > size:
            raise RequestError(
                f"since={since} is beyond the checkpoint's {size} entries", path="since"
            )
        with store.session() as s:
            proof = _b64(checkpoints.consistency_proof(s, since, size))
        out["consistency"] = {"from": since, "to": size, "proof": proof}
    return out


@router.get(
    "/consistency", operation_id="getLedgerConsistency", responses={200: {"model": dict[str, Any]}}
)
def ledger_consistency(
    request: Request,
    who: Caller,
    first: Annotated[int, Query(ge=0, le=MAX_SEQ), DIGITS],
    second: Annotated[int, Query(ge=0, le=MAX_SEQ), DIGITS],
) -> dict[str, Any]:
    """A consistency proof between two sizes of the log (RFC 9162): for anyone else only up
    to the latest checkpoint's size; admins up to the current head."""
    store: Store = request.app.state.store
    with store.session() as s:
        if who.is_admin:
            limit = checkpoints.tree_head_size(s)
        else:  # the size its signature covers: the row's column is anyone's to edit
            row = checkpoints.latest_row(s)
            signed = checkpoints.open_row(row, _keys(request)) if row is not None else None
            limit = signed.checkpoint.size if signed is not None else 0
        if not first <= second <= limit:
            bound = "the head" if who.is_admin else "the latest checkpoint"
            raise InputError(
                f"no proof from {first} to {second}: sizes must satisfy first <= "
                f"second <= {limit} ({bound})",
                path="second",
            )
        proof = _b64(checkpoints.consistency_proof(s, first, second))
    return {"first": first, "second": second, "proof": proof}
