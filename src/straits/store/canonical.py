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


def digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode("utf-8")).hexdigest()


__all__ = ["canonical", "digest"]
