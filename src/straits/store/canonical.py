"""Canonical JSON, the one serialisation every hash and digest in the ledger is taken over:
sorted keys, no whitespace, UTF-8 characters kept, dates as ISO text, no NaN."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any


def _default(o: Any) -> Any:
    if isinstance(o, dt.datetime | dt.date):
        return o.isoformat()
    raise TypeError(f"{type(o).__name__} is not JSON")


def canonical(obj: Any) -> str:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 characters kept, dates as ISO text."""
    return json.dumps(
        obj,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    )


def utf8(text: str) -> str:
    """``text``, or ``ValueError`` when it holds a lone surrogate (what JSON's ``"\\ud800"``
    reads as): no UTF-8 text holds one, so no hash can be taken over it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not UTF-8 text (a lone surrogate at character {exc.start})") from None
    return text


def loads_stored(text: object) -> Any:
    """A stored column's JSON; ``ValueError`` for whatever Straits never writes there, so one
    ``except ValueError`` covers a rewritten row: not JSON, not text (a NULL column: json's
    ``TypeError``), or arrays nested thousands deep (the parser's ``RecursionError``: a
    traceback, or a 500, where the row was altered)."""
    try:
        return json.loads(text)  # type: ignore[arg-type]
    except (TypeError, RecursionError) as exc:
        raise ValueError(f"not stored JSON: {type(exc).__name__}") from None


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode("utf-8")).hexdigest()


__all__ = ["canonical", "digest", "loads_stored", "utf8"]
