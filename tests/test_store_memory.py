"""An in-memory database URL serves threads like a file does (it once shared one SQLite
connection between threads, and a read beside a write crashed the process)."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import text

from straits.store import ledger
from straits.store.db import Store


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_threads_share_an_in_memory_store(url: str) -> None:
    store = Store(url)
    errors: list[BaseException] = []
    writes, reads = 60, 150

    def writer() -> None:
        for i in range(writes):
            try:
                with store.write() as s:
                    ledger.append(s, tenant="t", actor="a", kind="check", body={"i": i})
            except BaseException as exc:
                errors.append(exc)

    def reader() -> None:
        for _ in range(reads):
            try:
                with store.session() as s:
                    s.execute(text("SELECT count(*) FROM ledger")).scalar()
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=f) for f in (writer, reader, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list(ledger.entries(store))) == writes
    assert ledger.verify(store).ok
    where = store._tmpdir
    assert where is not None and os.path.isdir(where)
    store.close()
    assert not os.path.exists(where)  # nothing outlives the store
    assert list(ledger.entries(Store(url))) == []  # and a new one starts empty
