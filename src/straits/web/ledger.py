"""The console's ledger views: verification as the caller may see it, and receipts.

As in the API (``server/ledger_routes.py``), a tenant sees its own entries numbered 1, 2, 3
within the tenant, never the global numbers or the head; an admin sees every entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from straits.errors import NotFoundError
from straits.store import integrity, ledger
from straits.store.db import Store
from straits.store.keys import Keys
from straits.store.tokens import Principal


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


def verification(store: Store, who: Principal, keys: Keys) -> Check:
    """The quick check of the log (the stored tree against the latest signed checkpoint, by a
    consistency proof): an admin sees where it breaks, a tenant whether it holds."""
    v = integrity.verify_heads(store, keys, [])
    mine = ledger.count(store, None if who.is_admin else who.tenant)
    signed = "" if v.signatures == "checked" else f"; signatures {v.signatures}"
    if v.ok:
        scope = "entries" if who.is_admin else "entries of yours"
        return Check(
            True, f"the log is consistent with its latest checkpoint: {mine} {scope}{signed}"
        )
    if who.is_admin:
        return Check(False, f"the log fails verification: {v.problem}")
    return Check(False, "the log fails verification; an admin sees where")


def tenant_verification(store: Store, who: Principal, keys: Keys) -> Check:
    """A tenant's own verification (``store/tenant_verify.py``): each of its entries proven,
    its numbers without a gap, its records against their entries; in its own numbering."""
    from straits.store.tenant_verify import verify_tenant

    v = verify_tenant(store, keys, who.tenant)  # the caller holds a verification slot
    signed = "" if v.signatures == "checked" else f"; signatures {v.signatures}"
    if v.ok:
        return Check(True, f"each of your {v.entries} entries is proven in the log{signed}")
    if v.first_bad is None:  # no entry of yours to name: removed after your last, a row, a fork
        return Check(
            False,
            f"your entries do not verify: {v.problem} ({v.checked} of your {v.entries} entries "
            "checked before it was found)",
        )
    return Check(
        False, f"your entry #{v.first_bad} does not verify: {v.problem} ({v.checked} before it do)"
    )


def global_seq(store: Store, who: Principal, n: int) -> int:
    """The global number of entry ``n`` as the caller numbers it (a tenant: its own number).
    A number outside 1..MAX_SEQ is no entry, as in the API (past 2**63 the database cannot
    even compare it: SQLite raised OverflowError, a 500); one the log holds with its row
    deleted is ``RemovedEntryError`` (``store/removed.py``)."""
    from straits.server.ledger_routes import MAX_SEQ
    from straits.store.removed import global_seq as seq_of

    if not 1 <= n <= MAX_SEQ:
        raise NotFoundError(f"no ledger entry {n}")
    # a number the log holds whose row was deleted is a LedgerError (409), not "no entry"
    seq = seq_of(store, None if who.is_admin else who.tenant, n)
    if seq is None:
        raise NotFoundError(f"no ledger entry {n}")
    return seq


def receipt_json(store: Store, who: Principal, n: int, keys: Keys) -> dict[str, Any]:
    """The receipt of the caller's entry ``n``: the entry, its inclusion proof and a signed
    checkpoint (``straits ledger verify-receipt FILE --pubkey KEY`` checks it offline)."""
    from straits.store.receipts import make_receipt

    return make_receipt(store, global_seq(store, who, n), keys)
