"""The console's plan page of a finished plan, kept per server process (srv32).

The page of a 1,000-workload plan took some 0.5 s of CPU at every request, most of it not the
view: reading the plan back as its ledger entry proves it (the stored plan and the entry's
body decoded, both re-encoded canonically to compare, the stored scenario decoded, hashed
against its digest and validated) took about three quarters; building the view and its
figures the rest. All of it is a function of a few stored values. So, at every request:

1. the access check, as ``views.job`` makes it (a tenant's plan is decided from raw values
   before its row is read; another tenant's, or an id nobody has, is the same ``NotFoundError``
   it always was): nothing is read from the cache before it;
2. the entry is proven against the log (``prove_entries``, one entry: cheap) before a page
   found is served; a log that does not prove it is no cache hit: the page is built as before
   and says what it says. A page built proves the entry itself (``views.plan_page``), so the
   proof is made once per request either way (web33);
3. the key: a SHA-256 of everything the page is made from, raw as stored: every column of the
   plan's row and of its ledger entry's row (the entry's hash among them), the scenario's
   name and stored body, the entry number shown, the viewer's tenant and whether an admin (an
   admin sees the global number), the rule set's digest and Straits' version. A changed byte
   anywhere (a tampered or replaced row) is another key, so such a page is built as an
   uncached one is (the ``LedgerError`` 409 of an altered row);
4. a hit is the context the page was rendered from (the page is rendered from it at each
   request: who is signed in and the CSRF token are each request's); a miss builds it as
   before and keeps it only when the key read again after the build is the same.

Bounded: at most ``pages`` contexts and ``max_bytes`` bytes, least recently used dropped first
(``STRAITS_PLAN_PAGE_CACHE``, 32; ``STRAITS_PLAN_PAGE_CACHE_BYTES``, 256 MiB; 0 keeps none). A
context's size is counted as the stored texts it was made from (the plan, its entry and
scenario), which the view holds about as much of. Per process, in memory, nothing on disk;
plans not finished are never kept.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any

from straits import __version__
from straits.errors import LedgerError
from straits.rules.engine import RuleSet
from straits.store.db import Store
from straits.store.ledger import Entry
from straits.store.proven import prove_entries
from straits.store.tables import ScenarioRow
from straits.store.tokens import Principal

#: contexts kept at most, and their bytes at most (``Settings``' defaults)
PAGES = 32
MAX_BYTES = 256 * 1024 * 1024


class PlanPages:
    """A least-recently-used map of plan page contexts, bounded by count and bytes."""

    def __init__(self, pages: int = PAGES, max_bytes: int = MAX_BYTES) -> None:
        self.pages, self.max_bytes = pages, max_bytes
        self._kept: OrderedDict[str, tuple[dict[str, Any], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._kept.get(key)
            if found is None:
                self.misses += 1
                return None
            self._kept.move_to_end(key)
            self.hits += 1
            return dict(found[0])

    def put(self, key: str, ctx: dict[str, Any], size: int) -> None:
        if size > self.max_bytes or self.pages < 1:
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._kept[key] = (dict(ctx), size)
            self._bytes += size
            while len(self._kept) > self.pages or self._bytes > self.max_bytes:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._bytes -= dropped

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def bytes(self) -> int:
        return self._bytes


def _part(value: Any) -> bytes:
    raw = value if isinstance(value, bytes) else None
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
    if raw is None:
        raw = repr(value).encode("utf-8", "backslashreplace")
    return b"%d:%s;" % (len(raw), raw)


def _columns(row: Any) -> list[Any]:
    return [getattr(row, c.key) for c in type(row).__table__.columns]


def page_key(store: Store, rules: RuleSet, who: Principal, plan_id: str) -> tuple[str, int] | None:
    """The access check (``NotFoundError`` as ``views.job`` raises it), then the key of the
    finished plan's page and the bytes it is made from; None when the page is not to be kept
    or read from the cache (a plan not finished, an entry the log does not prove)."""
    read = _key(store, rules, who, plan_id)
    if read is None or not _proven(store, read[2]):
        return None
    return read[0], read[1]


def _key(store: Store, rules: RuleSet, who: Principal, plan_id: str) -> tuple[str, int, Any] | None:
    """:func:`page_key` and the entry row it was made from, the entry not proven."""
    from straits.web.views import job_found

    row, name, seq, entry_row = job_found(store, who, plan_id)
    if row.status != "done":
        return None
    with store.session() as s:
        scenario = s.get(ScenarioRow, row.scenario_digest)
        body = None if scenario is None else scenario.body
    parts = [
        __version__,
        rules.digest,
        who.is_admin,
        who.tenant,
        plan_id,
        name,
        seq,
        *_columns(row),
        *(_columns(entry_row) if entry_row is not None else [None]),
        body,
    ]
    h = hashlib.sha256()
    size = 0
    for part in parts:
        raw = _part(part)
        size += len(raw)
        h.update(raw)
    return h.hexdigest(), size, entry_row


def _proven(store: Store, entry_row: Any) -> bool:
    """Whether the log proves the entry of the row read (True when there is none)."""
    if entry_row is None:
        return True
    try:
        prove_entries(store, [Entry.from_row(entry_row)])
    except LedgerError:
        return False
    return True


def plan_page(
    pages: PlanPages | None, store: Store, rules: RuleSet, who: Principal, plan_id: str
) -> dict[str, Any]:
    """``views.plan_page``, its context kept in ``pages`` after the access check.

    The entry is proven once per request (web33): a page found under the key is served only
    once the log proves the entry (else the page is built, as when none is kept); a page built
    proved it while it was built (``views.plan_page`` refuses an entry the log does not
    prove), so the key read again after the build, to keep it only when nothing changed
    meanwhile, is read without proving it a second time."""
    from straits.web import views

    if pages is None or pages.pages < 1:
        return views.plan_page(store, rules, who, plan_id)
    key = _key(store, rules, who, plan_id)
    if key is not None:
        hit = pages.get(key[0])
        # the entry whose bytes made the key proven before its page is served
        if hit is not None and _proven(store, key[2]):
            return hit
    ctx = views.plan_page(store, rules, who, plan_id)
    again = _key(store, rules, who, plan_id) if key is not None else None
    if key is not None and again is not None and again[:2] == key[:2]:
        pages.put(key[0], ctx, key[1])
    return ctx
