"""The one line ``straits ledger show`` prints for an entry: a check's decisions, an admission's
verdict, a replay's count, a plan's status, cost and placements. Read from the entry's content,
whatever its shape: an entry rewritten into another shape reads as altered, not a traceback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from straits.errors import LedgerError

if TYPE_CHECKING:
    from straits.cli.output import Format
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


def unproven(store: Store, rows: list[Entry]) -> tuple[set[int], LedgerError | None]:
    """The entries of ``rows`` the log does not prove (``store.proven``: each against the tree,
    the latest checkpoint and its chain neighbour) and the first error; empty and None when
    all are proven. ``ledger show`` printed an entry whose tenant and decision were rewritten
    in the database as the log's own, exit 0, though ``ledger verify`` and receipts found it
    altered (atk66). Every entry of the page is marked, in one read of the tree: only the
    first 1,000 were, proven one by one, and an altered one past them printed unmarked
    (chain64)."""
    from straits.store.proven import unproven_entries
    from straits.store.removed import not_cut

    bad, first = unproven_entries(store, rows)
    if not rows:  # nothing to prove: still not a log cut below its checkpoint
        not_cut(store)
    return bad, first


def shown_json(e: Entry | int, bad: set[int]) -> dict[str, Any]:
    """An entry as ``ledger show`` prints it; ``unproven: true`` on one the log does not
    prove (its stored fields are shown as they are, for whoever investigates), and a number
    the log holds whose row was deleted as ``{seq, unproven: true, removed: true}``."""
    if isinstance(e, int):
        return {"seq": e, "unproven": True, "removed": True}
    body = readable_body(e)
    if body is None:  # shown as stored (JSON and YAML printed nothing, only the error; led63)
        return {**e.to_json(), "body": e.body, "unproven": True}
    return {**e.to_json(), "body": body, **({"unproven": True} if e.seq in bad else {})}


def readable_body(e: Entry) -> dict[str, Any] | None:
    """``e``'s body as an object, None when it is text that is no JSON object or holds NaN or
    Infinity (Python's JSON reads them, no output writes them: an "internal error", nothing
    printed). Straits writes neither, so such an entry is unproven (rev63)."""
    from straits.jsonout import first_non_finite

    try:
        body = e.content
    except LedgerError:
        return None
    return body if first_non_finite(body) is None else None


def entry_or_removed(store: Store, seq: int) -> Entry:
    """Entry ``seq``; a number the log holds whose row was deleted is a LedgerError (exit 1:
    it said ``no ledger entry N``, exit 2, as of a number never recorded; atk69), one beyond
    the log's head bad input (exit 2)."""
    from straits.errors import InputError
    from straits.store import ledger
    from straits.store.removed import global_seq

    e = ledger.get_entry(store, seq)
    if e is None and global_seq(store, None, seq) is None:  # raises RemovedEntryError
        raise InputError(f"no ledger entry {seq}", path="SEQ")
    assert e is not None
    return e


def removed_rows(
    store: Store, rows: list[Entry], *, since: int, limit: int, tenant: str | None
) -> tuple[list[Entry | int], LedgerError | None]:
    """``rows`` (a page ``ledger show`` lists) with the numbers the log holds whose rows were
    deleted put in their places, and the first such problem: the numbers from ``since`` to
    the page's last entry (to the log's head when the page is its last) with no row, and,
    with ``tenant``, a number missing from the tenant's own numbering (an entry deleted or
    moved to another tenant). They were left out, exit 0 (atk69)."""
    from straits.store.removed import first_gap, head_size, missing, removed, tenant_removed

    head = head_size(store)
    end = rows[-1].seq if rows and len(rows) >= limit else max([head] + [e.seq for e in rows])
    gone = missing(store, since, end, limit)
    merged: list[Entry | int] = [*rows, *gone]
    merged.sort(key=lambda e: e if isinstance(e, int) else e.seq)
    if gone:
        return merged, removed(gone[0], head)
    if tenant is not None and rows:
        start = 1 if since == 1 else rows[0].tenant_seq
        gap = first_gap((e.tenant_seq for e in rows), start)
        if gap is not None:
            return merged, tenant_removed(tenant, gap)
    return merged, None


def first_of(a: LedgerError | None, b: LedgerError | None) -> LedgerError | None:
    """The problem at the lower entry of two (either may be None)."""
    if a is None or b is None:
        return a or b
    return b if b.seq is not None and (a.seq is None or b.seq < a.seq) else a


def show_tenant_view(items: list[dict[str, Any]], fmt: Format, since: int) -> None:
    """``ledger show --server`` for a non-admin token: ``seq`` is the tenant's own entry number
    (docs/server-and-ledger.md, Tenancy)."""
    from straits.cli.common import console, emit

    if fmt != "table":  # as a local `ledger show -o json` prints: body as an object
        emit(
            [
                {
                    **{k: v for k, v in d.items() if k != "content"},
                    "body": d.get("content", d.get("body")),
                }
                for d in items
            ],
            fmt,
        )
        return
    from rich.markup import escape
    from rich.table import Table

    from straits.store.ledger import Entry as LedgerEntry

    t = Table(
        title=f"Ledger of tenant {escape(str(items[0]['tenant'])) if items else '-'} "
        f"({len(items)} entries from its entry {since}; numbered within the tenant)",
        title_justify="left",
    )
    for col in ("tenant #", "recorded (UTC)", "actor", "kind", "result"):
        t.add_column(col, justify="right" if col == "tenant #" else "left")
    for d in items:
        e = LedgerEntry.from_json({**d, "tenant_seq": d["seq"]})
        t.add_row(
            str(e.tenant_seq), e.recorded_at[:19], escape(e.actor), e.kind, escape(summary(e))
        )
    console.print(t)
