"""A recorded check, or, with an idempotency key, the decision an earlier recording of the same
request recorded: a client that retries ``POST /v1/check?record=true`` (``Idempotency-Key``) or
``straits check --record --request-id`` after a crash or a lost answer gets the first record,
not a second ledger entry."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from straits.errors import InputError, KeyReusedError, LedgerError
from straits.model.request import CheckRequest
from straits.rules import RuleSet
from straits.store.db import Store
from straits.store.keys import configured
from straits.store.ledger import Entry, canonical
from straits.store.proven import decision_row_problem, prove_in
from straits.store.tables import DecisionRow, LedgerRow

#: what a key may be: printable ASCII without spaces, 1 to 200 characters (the plans' header)
KEY_PATTERN = r"^[\x21-\x7e]{1,200}$"


@dataclass(frozen=True)
class Recorded:
    """The ledger entry of a recorded check and its answer; ``replayed``: recorded before,
    under the same key, by an earlier request (the answer is the one recorded then)."""

    entry: Entry
    answer: Any
    replayed: bool


def check_key(key: str, path: str) -> str:
    """``key`` if it is printable ASCII of 1 to 200 characters, else an InputError at
    ``path``."""
    if not re.fullmatch(KEY_PATTERN, key):
        raise InputError(
            f"{key[:40]!r} is not an idempotency key",
            path=path,
            expected="1 to 200 printable ASCII characters, no spaces",
        )
    return key


def record_check_once(
    store: Store,
    rules: RuleSet,
    requests: list[CheckRequest],
    answer: Any,
    *,
    tenant: str,
    actor: str,
    key: str | None,
    path: str = "Idempotency-Key",
) -> Recorded:
    """Record the check (``records.record_check``), unless ``key`` was recorded before by the
    tenant: then the entry and answer of that recording if it asked the same (the same
    requests, one or a list), a :class:`KeyReusedError` at ``path`` if it asked something
    else. The lookup and the append are one transaction under the store's write lock, so two
    recordings of one key at once append one entry; the unique index is the backstop."""
    from straits.store.records import check_body, decision_row

    inputs, body = check_body(rules, requests, answer)
    wanted = canonical(inputs)

    def earlier(s: Session) -> Recorded | None:
        row = s.scalars(
            select(DecisionRow).where(
                DecisionRow.tenant == tenant, DecisionRow.idempotency_key == key
            )
        ).first()
        if row is None:
            return None
        ledger_row = s.get(LedgerRow, row.ledger_seq)
        if ledger_row is None:  # the row outlived its entry: `ledger verify` reports it
            raise LedgerError(
                f"the check recorded under this key names ledger entry {row.ledger_seq}, "
                "which the log does not hold",
                row.ledger_seq,
            )
        # the answer given again is the one the log proves, as every read of a recorded
        # record is (proven.py): the row's own copy came back as it stood, an edited
        # `allow` included, and a row of no JSON was a traceback (a fresh-eye attack)
        entry = prove_in(s, row.ledger_seq, configured()).entry
        problem = decision_row_problem(row, entry)
        if problem is not None:
            raise LedgerError(problem, entry.seq)
        body = entry.content
        first = body["result"]
        if canonical(body["inputs"]) != wanted or isinstance(first, list) != isinstance(
            answer, list
        ):
            raise KeyReusedError(key or "", None, what="other check requests", path=path)
        return Recorded(entry, first, True)

    from straits.store.ledger import append

    try:
        with store.write() as s:
            found = earlier(s) if key is not None else None
            if found is not None:
                return found
            entry = append(s, tenant=tenant, actor=actor, kind="check", body=body)
            s.add(decision_row(entry, inputs, answer, key=key))
            s.flush()
    except IntegrityError:
        if key is None:
            raise
        with store.session() as s:  # recorded meanwhile, outside this process's lock
            found = earlier(s)
        if found is None:
            raise
        return found
    return Recorded(entry, answer, False)
