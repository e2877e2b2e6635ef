"""A proven read refuses an entry whose predecessor's row was deleted (led65).

chain64 held each served entry's ``prev_hash`` to the stored ``hash`` of the entry before it,
but a predecessor with no row checked nothing: a database writer who deleted entry N and
rewrote entry N+1's ``prev_hash`` (its ``hash`` recomputed) had N+1 served as proven (``ledger
show`` printed it unmarked, the API answered 200), while ``ledger verify`` named the cut. The
store removes no ledger row by design (no compaction, no pruning below a checkpoint), so a
missing predecessor is always a deletion, and the entry after it is refused as any altered
one: 409, exit 1, ``unproven`` / ``ALTERED`` in ``ledger show``, the served entry's number."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from straits.errors import LedgerError
from straits.store import Store, ledger
from straits.store.proven import prove_entries, prove_entry
from test_ledger_chain_links import CONFLICT, TENANTS, _api, _get, rehash
from test_ledger_cli import straits
from test_ledger_log import fill, sql


@pytest.fixture
def log(db_url: str) -> Iterator[str]:
    """Entries 1..6: tenant a holds 1, 3, 4, 6 (its 1..4), b holds 2, 5 (its 1, 2)."""
    store = Store(db_url)
    fill(store, 6, TENANTS)
    store.close()
    yield db_url


def _refused(store: Store, entries: list[ledger.Entry]) -> int | None:
    try:
        prove_entries(store, entries)
    except LedgerError as exc:
        return exc.seq
    return None


@pytest.mark.parametrize("forged", [True, False])
def test_an_entry_whose_predecessor_was_deleted_is_refused(
    log: str, forged: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entry 2 (b's) deleted; entry 3 (a's 2) rewritten to chain to nothing (``forged``) or
    left as it was: its link cannot be checked either way, so it is not served as proven."""
    sql(log, "DELETE FROM ledger WHERE seq = 2")
    if forged:
        rehash(log, 3, "cd" * 32)
    store = Store(log)
    try:
        with pytest.raises(LedgerError) as one:
            prove_entry(store, 3)
        assert one.value.seq == 3
        assert _refused(store, list(ledger.entries(store))) == 3
        assert _refused(store, list(ledger.entries(store, since=3))) == 3
        assert _refused(store, list(ledger.tenant_entries(store, "a"))) == 3
        # entry 4 records entry 3's hash as it was: refused after a forged 3 only (chain64)
        assert _refused(store, list(ledger.entries(store, since=4))) == (4 if forged else None)
        assert _refused(store, list(ledger.entries(store, since=5))) is None
        prove_entry(store, 1)
    finally:
        store.close()
    monkeypatch.setenv("STRAITS_DATABASE_URL", log)
    monkeypatch.delenv("STRAITS_LEDGER_KEY", raising=False)
    r = straits("ledger", "show", "-o", "json")
    assert r.returncode == 1, (r.stdout, r.stderr)
    shown = json.loads(r.stdout)
    assert {e["seq"] for e in shown if e.get("removed")} == {2}
    marked = {e["seq"] for e in shown if e.get("unproven") and not e.get("removed")}
    assert marked == ({3, 4} if forged else {3})
    assert straits("ledger", "show", "3", "-o", "json").returncode == 1
    assert straits("ledger", "show", "5", "-o", "json").returncode == 0
    for api in _api(log):
        for path in ("/v1/ledger/entries", "/v1/ledger/entries/2"):
            status, body = _get(api, "a", path)  # a's entry 2 is entry 3
            assert (status, body["type"], body["ledger_seq"]) == (409, CONFLICT, 2)
        assert _get(api, "a", "/v1/ledger/entries/4")[0] == 200  # entry 6
        status, body = _get(api, "b", "/v1/ledger/entries/1")  # b's own removed entry
        assert (status, body["ledger_seq"]) == (409, 1)


def test_entry_one_deleted_refuses_entry_two(log: str) -> None:
    sql(log, "DELETE FROM ledger WHERE seq = 1")
    store = Store(log)
    try:
        with pytest.raises(LedgerError) as exc:
            prove_entry(store, 2)
        assert exc.value.seq == 2
        assert _refused(store, list(ledger.tenant_entries(store, "b"))) == 2
        prove_entry(store, 3)
    finally:
        store.close()


def test_rows_deleted_in_the_middle_of_a_page(db_url: str) -> None:
    """Entries 5 and 6 of 1..10 deleted: entry 7 is the page's one refused entry; the pages
    that start after it, and a tenant's page without it, are proven."""
    store = Store(db_url)
    fill(store, 10, TENANTS)
    sql(db_url, "DELETE FROM ledger WHERE seq IN (5, 6)")
    try:
        assert _refused(store, list(ledger.entries(store))) == 7
        assert _refused(store, list(ledger.entries(store, since=7))) == 7
        assert _refused(store, list(ledger.entries(store, since=8))) is None
        assert _refused(store, list(ledger.tenant_entries(store, "b"))) is None  # 2, 8
        with pytest.raises(LedgerError):
            prove_entry(store, 7)
    finally:
        store.close()


def test_the_last_entry_deleted_refuses_nothing_before_it(log: str) -> None:
    """Nothing follows the last entry: the entries before it are proven as before (its own
    reads and the tenant's verification name it, ``store/removed.py``)."""
    sql(log, "DELETE FROM ledger WHERE seq = 6")
    store = Store(log)
    try:
        assert _refused(store, list(ledger.entries(store))) is None
        for seq in range(1, 6):
            prove_entry(store, seq)
    finally:
        store.close()


@pytest.mark.parametrize("moved", [0, -3, 2**31 - 1])
def test_an_entry_moved_outside_the_log_is_a_conflict_for_its_tenant(log: str, moved: int) -> None:
    """Entry 1 (a's 1) renumbered to ``moved``, outside the log: a's own number 1 still finds
    the row, but the entry cannot be read by its global number, and the route asserted it
    could: a 500 with a traceback (rev65). It is an altered log: 409, as any entry refused."""
    sql(log, f"UPDATE ledger SET seq = {moved} WHERE seq = 1")
    for api in _api(log):
        for path in ("/v1/ledger/entries/1", "/v1/ledger/entries/1/receipt"):
            status, body = _get(api, "a", path)
            assert (status, body["type"]) == (409, CONFLICT), (path, status, body)
        assert _get(api, "b", "/v1/ledger/entries/1")[0] == 409  # entry 2: its link is cut
        assert _get(api, "a", "/v1/ledger/entries/2")[0] == 200  # entry 3
