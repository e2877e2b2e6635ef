"""A log cut below its signed checkpoint answers every read with the 409 (exit 1) that says so,
also the reads that find no entry (led63).

The database writer deletes the last entries, their tree nodes, and moves the head to match
(a consistent truncation). A read that found a row was already refused (the checkpoint is
larger than the head), but one that found none answered as a log that never held those
entries: a number between the new head and the checkpoint's size was ``404 no ledger entry``
(``ledger show N``: exit 2, bad input), a tenant's page past its remaining entries ``200 []``,
the console's tenant page empty, and ``ledger show`` of the emptied log or past its new head
exit 0. An intact log still answers 404 and empty pages past its head."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store, checkpoints
from straits.store.keys import Keys
from test_api import Api
from test_ledger_cli import straits
from test_ledger_log import _truncate_everything, fill, sql

CONFLICT = "urn:straits:problem:conflict"
#: entries 1..8 (tenant a: 1, 3, 4, 6, 7; b: 2, 5, 8), a checkpoint at 8, then cut to KEEP
KEEP = 4


@pytest.fixture
def cut_log(db_url: str, keys: Keys) -> str:
    store = Store(db_url)
    fill(store, 8, ("a", "b", "a"))
    assert keys.signer is not None
    checkpoints.issue(store, keys.signer)
    store.close()
    _truncate_everything(db_url, KEEP)  # b keeps its entry 1 (seq 2), a its 1..3
    return db_url


def _api(db_url: str, keys: Keys) -> Iterator[Api]:
    store = Store(db_url)
    app = create_app(store, settings=Settings(max_body_bytes=64 * 1024, max_time_limit=30))
    app.state.ledger_keys = keys
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store)
    store.close()


def _get(api: Api, who: str, path: str) -> tuple[int, Any]:
    role = "admin" if who == "ops" else "viewer"
    r = api.client.get(path, headers=api.auth(who, role))
    body = r.json() if r.headers.get("content-type", "").endswith("json") else r.text
    return r.status_code, body


#: (caller, path) that find no entry in the cut log
NOTHING_FOUND = [
    ("b", "/v1/ledger/entries?since=2"),  # b's entries 2 and 3 were cut
    ("b", "/v1/ledger/entries/2"),
    ("b", "/v1/ledger/entries/2/receipt"),
    ("a", "/v1/ledger/entries/4"),
    ("ops", "/v1/ledger/entries/6"),  # past the new head, within the checkpoint
    ("ops", "/v1/ledger/entries/6/receipt"),
]


@pytest.mark.parametrize(("who", "path"), NOTHING_FOUND)
def test_a_read_that_finds_no_entry_of_a_cut_log_is_a_409(
    cut_log: str, keys: Keys, who: str, path: str
) -> None:
    for api in _api(cut_log, keys):
        status, body = _get(api, who, path)
        assert (status, body["type"]) == (409, CONFLICT), (status, body)
        if who != "ops":  # a tenant is told nothing of the log's size or global numbers
            assert "8" not in body["detail"] and "4" not in body["detail"], body


def test_the_console_page_of_a_tenant_with_no_entry_left_is_refused(
    cut_log: str, keys: Keys
) -> None:
    from straits.errors import LedgerError
    from straits.store.tokens import Principal
    from straits.web.views import ledger_lines

    sql(cut_log, "DELETE FROM ledger WHERE tenant = 'b'")  # b's only entry left, too
    with pytest.raises(LedgerError):
        ledger_lines(Store(cut_log), Principal("t", "b", "viewer"), keys=keys)


@pytest.mark.parametrize(
    "args",
    [("6",), ("--since", "5"), ("--tenant", "b", "--since", "3")],
    ids=["one past the head", "a page past the head", "a tenant's page"],
)
def test_ledger_show_of_a_cut_log_exits_1(cut_log: str, args: tuple[str, ...]) -> None:
    r = straits("ledger", "show", *args, "--db", cut_log, "-o", "json")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)


def test_ledger_show_of_an_emptied_log_exits_1(db_url: str, keys: Keys) -> None:
    store = Store(db_url)
    fill(store, 3)
    assert keys.signer is not None
    checkpoints.issue(store, keys.signer)
    store.close()
    for table in ("ledger", "ledger_nodes", "ledger_head"):
        sql(db_url, f"DELETE FROM {table}")
    assert straits("ledger", "show", "--db", db_url).returncode == 1
    for api in _api(db_url, keys):
        assert _get(api, "a", "/v1/ledger/entries")[0] == 409
        assert _get(api, "ops", "/v1/ledger/entries/1")[0] == 409


def test_an_intact_log_still_answers_404_and_empty_pages_past_its_head(
    db_url: str, keys: Keys
) -> None:
    store = Store(db_url)
    fill(store, 8, ("a", "b", "a"))
    assert keys.signer is not None
    checkpoints.issue(store, keys.signer)
    fill(store, 1, ("a",))
    store.close()
    for api in _api(db_url, keys):
        assert _get(api, "b", "/v1/ledger/entries?since=4") == (200, [])
        assert _get(api, "b", "/v1/ledger/entries/4")[0] == 404
        assert _get(api, "c", "/v1/ledger/entries") == (200, [])  # a tenant with no entry
        assert _get(api, "ops", "/v1/ledger/entries/10")[0] == 404
    assert straits("ledger", "show", "--since", "10", "--db", db_url).returncode == 0
    assert straits("ledger", "show", "10", "--db", db_url).returncode == 2
