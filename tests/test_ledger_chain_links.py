"""A proven read checks an entry's ``prev_hash`` against its predecessor's stored ``hash``
(chain64).

led50's check compared an entry's chain ``hash`` with its own content only: a database writer
who rewrote an entry's ``prev_hash`` and recomputed its ``hash`` (plain SHA-256 of the entry)
passed every proven read (``ledger show`` exit 0, the API's pages and entries 200, a plan's
report), while ``ledger verify`` named it (``entry-rehashed``). Now each served entry is held
to the one before it in the global chain (entry 1 to the genesis hash), also a tenant's,
whose entries are not adjacent; a predecessor whose own stored hash was edited is the one
refused, not the entry after it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from straits.errors import LedgerError
from straits.server import create_app
from straits.store import Store, ledger
from straits.store.integrity import verify_store
from straits.store.keys import Keys
from straits.store.proven import prove_entries, prove_entry
from test_api import Api
from test_ledger_cli import straits
from test_ledger_log import fill, sql

CONFLICT = "urn:straits:problem:conflict"
#: entries 1..6: tenant a holds 1, 3, 4, 6 (its 1..4), b holds 2, 5 (its 1, 2)
TENANTS = ("a", "b", "a")


@pytest.fixture
def log(db_url: str) -> str:
    store = Store(db_url)
    fill(store, 6, TENANTS)
    store.close()
    return db_url


def rehash(url: str, seq: int, prev_hash: str) -> None:
    """Entry ``seq``'s ``prev_hash`` rewritten and its ``hash`` recomputed, as a forger does."""
    store = Store(url)
    e = ledger.get_entry(store, seq)
    store.close()
    assert e is not None
    forged = dataclasses.replace(e, prev_hash=prev_hash)
    sql(
        url,
        "UPDATE ledger SET prev_hash = :p, hash = :h WHERE seq = :s",
        p=prev_hash,
        h=forged.expected_hash(),
        s=seq,
    )


def _api(url: str) -> Iterator[Api]:
    store = Store(url)
    app = create_app(store)
    app.state.ledger_keys = Keys()
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store)
    store.close()


def _get(api: Api, who: str, path: str) -> tuple[int, Any]:
    r = api.client.get(path, headers=api.auth(who, "viewer"))
    return r.status_code, r.json()


@pytest.mark.parametrize("seq", [1, 3])
def test_a_rewritten_and_rehashed_prev_hash_is_refused_by_proven_reads(
    log: str, seq: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rehash(log, seq, "cd" * 32)  # entry 1's is not the genesis hash; entry 3's not entry 2's
    store = Store(log)
    try:
        assert verify_store(store, Keys()).code in ("entry-rehashed", "entry-replaced")
        with pytest.raises(LedgerError) as one:
            prove_entry(store, seq)
        assert one.value.seq == seq
        with pytest.raises(LedgerError) as page:
            prove_entries(store, list(ledger.entries(store)))
        assert page.value.seq == seq
        mine = list(ledger.tenant_entries(store, "a"))  # not adjacent in the global chain
        with pytest.raises(LedgerError) as tenant_page:
            prove_entries(store, mine)
        assert tenant_page.value.seq == seq
    finally:
        store.close()
    monkeypatch.setenv("STRAITS_DATABASE_URL", log)
    monkeypatch.delenv("STRAITS_LEDGER_KEY", raising=False)
    r = straits("ledger", "show", "-o", "json")
    assert r.returncode == 1, (r.stdout, r.stderr)
    marked = {e["seq"] for e in json.loads(r.stdout) if e.get("unproven")}
    # the entry after it records the hash it had: which of the two was forged cannot be told
    assert marked == {seq, seq + 1}
    assert straits("ledger", "show", str(seq), "-o", "json").returncode == 1
    assert straits("ledger", "show", str(seq + 2), "-o", "json").returncode == 0
    tenant_seq = {1: 1, 3: 2}[seq]  # entries 1 and 3 are tenant a's 1 and 2
    for api in _api(log):
        for path in ("/v1/ledger/entries", f"/v1/ledger/entries/{tenant_seq}"):
            status, body = _get(api, "a", path)
            assert (status, body["type"], body["ledger_seq"]) == (409, CONFLICT, tenant_seq)
        status, _ = _get(api, "a", f"/v1/ledger/entries/{tenant_seq + 2}")
        assert status == 200


def test_a_predecessors_edited_hash_refuses_the_predecessor_only(log: str) -> None:
    """Entry 3 records entry 2's true hash: the edited one is entry 2's (its own check)."""
    sql(log, "UPDATE ledger SET hash = :h WHERE seq = 2", h="ab" * 32)
    store = Store(log)
    try:
        prove_entry(store, 3)
        prove_entries(store, list(ledger.tenant_entries(store, "a")))
        with pytest.raises(LedgerError) as exc:
            prove_entries(store, list(ledger.entries(store)))
        assert exc.value.seq == 2
    finally:
        store.close()


def test_an_intact_tenants_page_is_proven(log: str) -> None:
    store = Store(log)
    try:
        for tenant in ("a", "b"):
            prove_entries(store, list(ledger.tenant_entries(store, tenant)))
        prove_entries(store, list(ledger.entries(store, since=4)))
        for seq in range(1, 7):
            prove_entry(store, seq)
    finally:
        store.close()


def test_a_page_with_missing_tree_nodes_is_refused_in_one_session(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``prove_entries`` (every API page, the console, a tenant's verification) raises the
    first error only: on a page whose tree nodes are missing it proved each of its entries
    alone, one more session and tree read each, to mark entries it never names (rev64)."""
    store = Store(db_url)
    fill(store, 40, TENANTS)
    page = [e for e in (ledger.get_entry(store, s) for s in range(1, 41)) if e is not None]
    sql(db_url, "DELETE FROM ledger_nodes WHERE level = 0 AND idx = 3")
    opened: list[int] = []
    session = store.session

    def counted() -> Any:
        opened.append(1)
        return session()

    monkeypatch.setattr(store, "session", counted)
    with pytest.raises(LedgerError) as exc:
        prove_entries(store, page)
    assert exc.value.seq == 1  # the page's first, as before
    assert len(opened) == 1
    store.close()


def test_ledger_show_marks_a_page_with_a_missing_node_without_proving_each_entry(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ledger show`` marks the entries whose proofs need a missing tree node: it proved
    every entry of the page alone for that (chain64 lifted rev63's cap of 1,000: a page of
    100,000 was 100,000 proofs, minutes); halves of the page now, and only the failing ones
    are split (rev64)."""
    from straits.cli.ledger_summary import unproven
    from straits.store import tree

    store = Store(db_url)
    fill(store, 64, TENANTS)
    page = list(ledger.entries(store))
    sql(db_url, "DELETE FROM ledger_nodes WHERE level = 0 AND idx = 3")
    calls: list[int] = []
    real = tree.proofs

    def counted(*a: Any, **k: Any) -> Any:
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(tree, "proofs", counted)
    bad, first = unproven(store, page)
    assert bad == {3}  # the one proof that needs leaf 3 (entry 4 is the leaf itself)
    assert first is not None and first.seq == 1
    assert len(calls) <= 4 * 6  # log2(64) levels, not 64 proofs
    store.close()
