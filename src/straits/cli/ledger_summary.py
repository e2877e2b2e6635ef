"""The one line ``straits ledger show`` prints for an entry: a check's decisions, an admission's
verdict, a replay's count, a plan's status, cost and placements. Read from the entry's content,
whatever its shape: an entry rewritten into another shape reads as altered, not a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from straits.errors import LedgerError

if TYPE_CHECKING:
    from straits.store import Store
    from straits.store.ledger import Entry


def summary(e: Entry) -> str:
    try:  # a result of another shape (the entry was rewritten) was a traceback
        return _summary_of(e)
    except (AttributeError, TypeError, ValueError):
        return "(a result of another shape: the entry was altered)"


def _summary_of(e: Entry) -> str:
    body = e.content
    result = body.get("result")
    if e.kind == "check":
        answers = result if isinstance(result, list) else [result]
        return ", ".join(str(a.get("decision")) for a in answers if isinstance(a, dict))
    if e.kind == "admission":
        inputs = body.get("inputs") or {}
        verdict = "allowed" if (result or {}).get("allowed") else "rejected"
        return (
            f"{verdict} launch of {inputs.get('workload')}/{inputs.get('stage')} "
            f"(plan {str(inputs.get('plan_id', ''))[:8]})"
        )
    if e.kind == "replay":
        done = (result or {}).get("replayed") or {}
        # a replay that skipped every entry read '0 would change, of 0 decisions' and no more
        skipped = len(s) if isinstance(s := (result or {}).get("skipped"), list) else 0
        # "3 of 5 decisions and 2 placements would change" read as 2 placements changing
        return (
            f"rules replay since {body.get('date')}: {(result or {}).get('changed')} would "
            f"change, of {done.get('decisions', 0)} decisions and "
            f"{done.get('placements', 0)} plan placements replayed"
        ) + (f"; {skipped} entries could not be replayed" if skipped else "")
    plan: dict[str, Any] = (result or {}).get("plan") or {}
    return (
        f"{plan.get('status')} ${plan.get('total_cost_usd', 0):,.0f} "
        f"{len(plan.get('assignments', []))} placed, {len(plan.get('unplaced', []))} "
        f"unplaced (plan {str((result or {}).get('plan_id', ''))[:8]})"
    )


#: entries proven one by one, to mark which of a page were altered, at most
MARK_AT_MOST = 1000


def unproven(store: Store, rows: list[Entry]) -> tuple[set[int], LedgerError | None]:
    """The entries of ``rows`` the log does not prove (``store.proven``: each against the tree
    and the latest checkpoint) and the first error; empty and None when all are proven.
    ``ledger show`` printed an entry whose tenant and decision were rewritten in the database
    as the log's own, exit 0, though ``ledger verify`` and receipts found it altered."""
    from straits.store.proven import prove_entries

    try:
        prove_entries(store, rows)
        return set(), None
    except LedgerError as exc:
        first = exc
    bad: set[int] = set()
    for e in rows[:MARK_AT_MOST]:
        try:
            prove_entries(store, [e])
        except LedgerError:
            bad.add(e.seq)
    return bad, first
