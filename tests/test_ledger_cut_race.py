"""A read racing an append and a checkpoint at the head is never told the log was cut (rev63).

``removed.not_cut`` (asked before an answer that finds no entry: a number past the head, an
empty page) compares the latest checkpoint's size with the head. On PostgreSQL each statement
of a read sees what is committed when it starts: it read the head first, so an append and a
checkpoint signed over it, committed between the two reads, made a checkpoint larger than the
head it had read: "entries were removed from the end", a 409 to a tenant following its own
entries, `ledger show` exit 1, of an intact log. Read the checkpoint first, as ``prove_in``
does: the log only grows, so a head read after it covers it. The append is made to happen
between the two reads, whichever comes first, on each backend."""

from __future__ import annotations

from typing import Any

import pytest

from straits.store import checkpoints, removed
from straits.store.db import Store
from straits.store.keys import Keys
from test_removed_entries_race import _append


def _between_reads(monkeypatch: pytest.MonkeyPatch, writer: Store, keys: Keys) -> list[bool]:
    """After the first of the head and the latest checkpoint is read, two entries appended
    and a checkpoint signed over them, once."""
    assert keys.signer is not None
    signer = keys.signer
    reads: list[str] = []
    appended: list[bool] = []

    def wrap(real: Any, name: str) -> Any:
        def read(s: Any, *a: Any, **kw: Any) -> Any:
            reads.append(name)
            if len(reads) == 2 and not appended:
                appended.append(True)
                _append(writer, "t1")
                _append(writer, "t1")
                checkpoints.issue(writer, signer)
            return real(s, *a, **kw)

        return read

    monkeypatch.setattr(checkpoints, "tree_head_size", wrap(checkpoints.tree_head_size, "head"))
    monkeypatch.setattr(checkpoints, "latest_row", wrap(checkpoints.latest_row, "checkpoint"))
    return appended


def test_a_checkpoint_signed_mid_read_is_no_cut(
    db_url: str, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer = Store(db_url), Store(db_url)
    try:
        _append(writer, "t1")
        assert keys.signer is not None
        checkpoints.issue(writer, keys.signer)  # the log exactly at its checkpoint
        appended = _between_reads(monkeypatch, writer, keys)
        removed.not_cut(reader)  # no LedgerError
        assert appended
    finally:
        reader.close()
        writer.close()


@pytest.mark.parametrize("tenant", [None, "t1"])
def test_a_lookup_past_the_head_mid_append_is_no_entry(
    db_url: str, keys: Keys, tenant: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer = Store(db_url), Store(db_url)
    try:
        _append(writer, "t1")
        assert keys.signer is not None
        checkpoints.issue(writer, keys.signer)
        appended = _between_reads(monkeypatch, writer, keys)
        got = removed.global_seq(reader, tenant, 10)  # past the head, before and after
        assert appended
        assert got is None
    finally:
        reader.close()
        writer.close()
