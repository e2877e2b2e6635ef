"""Lists that page: opaque cursors (keyset pagination, stable while rows are added) and the
RFC 8288 ``Link: <...>; rel="next"`` header, as GitHub's API gives them. A list answer stays a
JSON array; the next page's URL is in the header (``httpx.Response.links["next"]``)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import defer

from straits.errors import LedgerError, RequestError
from straits.limits import as_utc
from straits.store.db import Store
from straits.store.keys import Keys
from straits.store.ledger import Entry
from straits.store.owner import id_prefix
from straits.store.owner import owned_ids as owned_ids
from straits.store.proven import plan_row_problem, prove_entries
from straits.store.records import plan_job_json, refuse_detached
from straits.store.tables import LedgerRow, PlanRow, ScenarioRow


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The values of a cursor this server made, or a 400 naming the parameter. The server's
    cursors hold printable ASCII text only (a time and an id): a forged one holding a lone
    surrogate reached the database driver (a UnicodeEncodeError, a 500), one holding an
    object or a NUL was taken as an id."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != arity:
            raise ValueError("wrong shape")
        if not all(isinstance(v, str) and v.isascii() and v.isprintable() for v in values):
            raise ValueError("not the server's text")
        return values
    except (ValueError, UnicodeDecodeError):
        raise RequestError(
            "not a cursor this server gave",
            path="cursor",
            expected='the cursor of a Link: rel="next" header',
        ) from None


def link_next(request: Request, response: Response, **params: Any) -> None:
    """Set ``Link: <same URL with params>; rel="next"``."""
    url = request.url.include_query_params(**{k: v for k, v in params.items() if v is not None})
    response.headers["Link"] = f'<{url}>; rel="next"'


@dataclass(frozen=True)
class PlanFilter:
    tenant: str | None = None
    status: str | None = None
    scenario: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def __post_init__(self) -> None:
        # an inverted range matches nothing: an empty 200 read as "no plans then" (a
        # hostile-input review), where the client swapped the two
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise RequestError(
                f"until ({self.until.isoformat()}) is not after since ({self.since.isoformat()})",
                path="until",
                expected="a time after since (since is inclusive, until exclusive)",
            )


def list_plans(
    store: Store,
    f: PlanFilter,
    limit: int,
    cursor: str | None,
    keys: Keys | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of plans, newest first, each with its scenario's name; and the cursor of the
    next page (None on the last).

    Nothing on the page is taken from the ``plans`` table unproven: a plan is listed under a
    tenant only when it is that tenant's as ``store/owner.py`` decides (a row whose ``tenant``
    or whose entry's was edited to another's never shows in that other's list, and stays in
    its owner's, which is then refused as below), the page's entries are proven in
    one read of the tree, and a recorded plan whose row differs from its entry (its status,
    tenant, scenario or options edited) refuses the page (``LedgerError``, a 409 naming the
    entry), as reading that plan alone does. Plans not recorded have no entry to prove them."""
    q = (
        select(PlanRow, ScenarioRow.name, LedgerRow)
        .options(defer(PlanRow.result))  # a list shows no plan bodies
        .join(ScenarioRow, ScenarioRow.digest == PlanRow.scenario_digest)
        .join(LedgerRow, LedgerRow.seq == PlanRow.ledger_seq, isouter=True)
        .order_by(PlanRow.created_at.desc(), PlanRow.id.desc())
    )
    if f.status is not None:
        q = q.where(PlanRow.status == f.status)
    if f.scenario is not None:
        q = q.where(ScenarioRow.name == f.scenario)
    if f.since is not None:
        q = q.where(PlanRow.created_at >= f.since)
    if f.until is not None:
        q = q.where(PlanRow.created_at < f.until)
    if cursor is not None:
        at, last_id = decode_cursor(cursor, 2)
        try:
            t = dt.datetime.fromisoformat(str(at))
        except ValueError:
            raise RequestError("not a cursor this server gave", path="cursor") from None
        q = q.where(
            or_(PlanRow.created_at < t, and_(PlanRow.created_at == t, PlanRow.id < str(last_id)))
        )
    with store.session() as s:
        more: bool | None = None  # with a tenant: from its plans' ids, read before the page
        if f.tenant is not None:
            ids = owned_ids(s, q, f.tenant, limit + 1)
            more = len(ids) > limit
            q = q.where(PlanRow.id.in_(ids))
        rows = list(s.execute(q.limit(limit + 1)))
    page = rows[:limit]
    entries: dict[int, Entry] = {}
    for row, _, ledger_row in page:
        refuse_detached(row)
        if row.ledger_seq is None:
            continue
        if ledger_row is None:
            raise LedgerError(
                f"plan {row.id} points to ledger entry {row.ledger_seq}, which does not "
                "exist: the plans table or the ledger was altered",
                row.ledger_seq,
            )
        entries[row.ledger_seq] = Entry.from_row(ledger_row)
    prove_entries(store, list(entries.values()), keys)
    items = []
    for row, name, _ in page:
        if row.ledger_seq is not None:
            problem = plan_row_problem(
                row, entries[row.ledger_seq], with_result=False, scenario_name=name
            )
            if problem:
                raise LedgerError(
                    problem + "; refusing to list it (`straits ledger verify` shows all "
                    "that differs)",
                    row.ledger_seq,
                )
        job = plan_job_json(row, with_plan=False)
        if row.ledger_seq is not None:  # as proven_job_json serves it (led50)
            job["finished_at"] = entries[row.ledger_seq].recorded_at
            job["progress"] = None  # cleared when it finished: an edited one is no entry's
        items.append({**job, "scenario": name, "scenario_digest": row.scenario_digest})
    next_cursor = None
    if (len(rows) > limit if more is None else more) and page:
        last = page[-1][0]  # a plan whose state changed meanwhile may have left the page
        next_cursor = encode_cursor([last.created_at.isoformat(), last.id])
    return items, next_cursor


def plan_row(store: Store, ref: str, tenant: str | None = None) -> PlanRow | None:
    """The plan whose id is ``ref``, or the one whose id starts with it (4 characters or
    more, as the CLI takes them); a prefix two plans share is a 400. With ``tenant``, a
    prefix is resolved among that tenant's plans only: other tenants' plans never change the
    answer (a 400 would tell a tenant that others have plans, and where their ids lie)."""
    with store.session() as s:
        row = s.get(PlanRow, ref)
        if row is not None or len(ref) < 4:
            return row
        q = select(PlanRow).where(id_prefix(PlanRow.id, ref))
        if tenant is not None:
            q = q.where(PlanRow.tenant == tenant)
        rows = list(s.scalars(q.limit(2)))
    if len(rows) > 1:
        raise RequestError(
            f"plan id prefix {ref!r} matches several plans",
            path="plan_id",
            expected="a longer prefix",
        )
    return rows[0] if rows else None


def parse_instant(value: str | None, name: str) -> dt.datetime | None:
    """A query parameter that is a date or an ISO-8601 time, in UTC (UTC when it has no zone):
    SQLite keeps times as UTC text, compared as text, and an instant in another zone was
    compared by its wall clock (atk70: `since=...+05:00` matched no plan of the last five
    hours)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.UTC)
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RequestError(
            f"{value!r} is not a date or time", path=name, expected="YYYY-MM-DD or an ISO-8601 time"
        ) from None
    try:
        return as_utc(t)
    except ValueError:  # 9999-12-31T23:59:59-23:59: an OverflowError, a 500
        raise RequestError(
            f"{value!r} is before year 1 or after year 9999 in UTC",
            path=name,
            expected="a time from 0001-01-01 to 9999-12-31 in UTC",
        ) from None
