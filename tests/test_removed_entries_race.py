"""An entry appended while a reader looks it up is never reported removed (atk77). On
PostgreSQL each statement of a read sees what is committed when it starts: a reader that read
"no row" and then a head that held the entry (appended between the two) said `removed from
the database`, a 409 to an admin following the log, `ledger show N` exit 1. The append is made
to happen exactly there, on each backend."""

from __future__ import annotations

from typing import Any

import pytest

from straits.store import checkpoints, removed
from straits.store.db import Store
from straits.store.ledger import append


def _append(store: Store, tenant: str) -> None:
    with store.write() as s:
        append(
            s,
            tenant=tenant,
            actor="cli:test",
            kind="admission",
            body={
                "inputs": {},
                "inputs_digest": "",
                "rules": {},
                "regime": "enacted",
                "date": "2025-06-01",
                "result": {"allowed": True},
            },
        )


@pytest.mark.parametrize("tenant", [None, "t1"])
def test_an_entry_appended_mid_lookup_is_found_or_not_yet_made(
    db_url: str, tenant: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer = Store(db_url), Store(db_url)
    try:
        _append(writer, "t1")
        n = 2  # the next entry, global or the tenant's
        real_head = checkpoints.tree_head_size
        real_execute: Any = None
        appended: list[bool] = []

        def append_now() -> None:
            if not appended:
                appended.append(True)
                _append(writer, "t1")
                _append(writer, "t1")  # and one after it: the tenant's "entries after n"

        def append_then_head(s: Any) -> int:
            append_now()
            return int(real_head(s))

        monkeypatch.setattr(checkpoints, "tree_head_size", append_then_head)
        if tenant is not None:
            from sqlalchemy.orm import Session

            real_execute = Session.execute

            def append_then_execute(self: Session, *a: Any, **kw: Any) -> Any:
                append_now()
                return real_execute(self, *a, **kw)

            monkeypatch.setattr(Session, "execute", append_then_execute)
        got = removed.global_seq(reader, tenant, n)
        assert appended
        assert got is None or got == n  # not yet seen, or found: never "removed"
    finally:
        reader.close()
        writer.close()
