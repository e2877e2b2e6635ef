"""A SQLite file removed or replaced under a store that has it open
(``straits.store.sqlite_file``): nothing more is read or written, every transaction is a
StoreError (API 503, ``/readyz`` 503), and no empty database is created at the path. Before,
``straits serve`` acknowledged every check it recorded after ``rm straits.db`` (200 with an
entry number) into the removed file, lost, while new connections made an empty database there."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from straits.errors import StoreError
from straits.store import Store, ledger
from straits.store.tokens import create_token

REQUEST = json.dumps(
    {
        "date": "2025-06-01",
        "regime": "enacted",
        "action": "finetune",
        "tenant": {"hq": "CN", "authorizations": []},
        "site": {"country": "SG", "operator_hq": "SG"},
        "chip": "H100-SXM",
    }
)


def remove(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def replace(db: Path) -> None:
    other = db.with_name("other.db")
    Store(f"sqlite:///{other}").close()
    os.replace(other, db)


@pytest.mark.parametrize(("change", "word"), [(remove, "removed"), (replace, "replaced")])
def test_a_store_keeps_to_its_file(tmp_path: Path, change: object, word: str) -> None:
    db = tmp_path / "s.db"
    store = Store(f"sqlite:///{db}")
    ledger.record(store, tenant="t", actor="a", kind="check", body={"i": 0})
    assert callable(change)
    change(db)
    with pytest.raises(StoreError, match=word):
        ledger.record(store, tenant="t", actor="a", kind="check", body={"i": 1})
    with pytest.raises(StoreError, match=word):
        list(ledger.entries(store))
    if word == "removed":
        assert not db.exists()  # no empty database made at the path
    store.close()
    # as docs/robustness.md tells operators: with the server stopped, the old database's
    # -wal and -shm left beside the path are removed, or SQLite applies the old log to the
    # new file (whether close() left one is up to SQLite's checkpoint: a flaky test)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    again = Store(f"sqlite:///{db}")  # a new store opens what is there now
    ledger.record(again, tenant="t", actor="a", kind="check", body={"i": 2})
    again.close()


def test_the_server_stops_acknowledging_records(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from straits.server import create_app

    db = tmp_path / "s.db"
    store = Store(f"sqlite:///{db}")
    token, _ = create_token(store, "t", "planner")
    h = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(store), raise_server_exceptions=False) as client:
        first = client.post("/v1/check?record=true", headers=h, content=REQUEST)
        assert first.status_code == 200, first.text
        assert client.get("/readyz").status_code == 200
        remove(db)
        for _ in range(3):
            r = client.post("/v1/check?record=true", headers=h, content=REQUEST)
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "X-Straits-Ledger-Seq" not in r.headers
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200  # the process itself is fine
    assert not db.exists()


def test_a_uri_with_its_own_mode_is_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    Store(f"sqlite:///{db}").close()
    ro = Store(f"sqlite:///file:{db}?mode=ro&uri=true", migrate=False)
    assert list(ledger.entries(ro)) == []
    ro.close()


def test_a_write_waits_for_the_process_s_earlier_writes_for_a_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process holds SQLite's write lock, a process's writes queued one behind
    the other, each waiting its 4 x 30 s for the database: the tenth request of a server waited
    20 minutes. Now a write that waits longer than WRITE_QUEUE_S for the writes ahead of it in
    this process fails (a StoreError: 503, exit 1); the store writes again once they are done."""
    from straits.store import db as db_module

    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    monkeypatch.setattr(db_module, "WRITE_QUEUE_S", 0.2)
    lock = store._write_lock
    assert lock is not None
    # a write of this process holds the turn, stuck behind another process's lock
    with lock, pytest.raises(StoreError, match=r"waited 0\.2 s"):
        ledger.record(store, tenant="t", actor="a", kind="check", body={"i": 0})
    ledger.record(store, tenant="t", actor="a", kind="check", body={"i": 1})
    assert [e.seq for e in ledger.entries(store)] == [1]
    store.close()
