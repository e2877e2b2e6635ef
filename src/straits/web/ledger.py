"""The console's ledger views: verification as the caller may see it, and receipts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from straits.errors import NotFoundError
from straits.store import ledger
from straits.store.db import Store
from straits.store.tokens import Principal


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


def verification(store: Store, who: Principal) -> Check:
    """The whole log's verification (an admin sees where it breaks; a tenant whether it
    holds)."""
    result = ledger.verify(store)
    if result.ok:
        mine = ledger.count(store, None if who.is_admin else who.tenant)
        scope = "entries" if who.is_admin else "of them yours"
        return Check(True, f"the log verifies: {result.entries} entries, {mine} {scope}")
    if who.is_admin:
        return Check(False, f"the log fails verification at entry {result.first_bad}: "
                            f"{result.problem}")
    return Check(False, "the log fails verification; an admin sees where")


def receipt_json(store: Store, who: Principal, seq: int) -> dict[str, Any]:
    """What proves entry ``seq`` to its tenant: the entry with every stored field."""
    entry = ledger.get_entry(store, seq)
    if entry is None or not (who.is_admin or entry.tenant == who.tenant):
        raise NotFoundError(f"no ledger entry {seq}")
    return {"entry": entry.to_json()}
