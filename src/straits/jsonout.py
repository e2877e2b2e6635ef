"""Strict JSON out: what ``--json`` prints and what the API answers, from one encoder.

JSON has no NaN or Infinity (RFC 8259 section 6); Python's ``json`` writes them unless told not
to, and a reader then fails or, worse, reads a different number. Every number Straits prints is
finite because every input is range-checked (``straits.model.types``); a non-finite number in
output is therefore a bug, reported as :class:`NonFiniteOutput` with the path of the value
(exit 1 on the CLI, a 500 with an incident id on the API), never printed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from straits.errors import StraitsError


class NonFiniteOutput(StraitsError):
    """A NaN or an infinity reached the output: a bug in Straits, not in the input."""


def _default(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    return str(value)


def dumps(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as strict JSON (CLI layout: two-space indent; ``indent=None``: compact)."""
    separators = (",", ":") if indent is None else None
    try:
        return json.dumps(
            data, indent=indent, separators=separators, allow_nan=False, default=_default
        )
    except ValueError as exc:
        path = first_non_finite(data)
        if path is None:
            raise
        raise NonFiniteOutput(
            f"internal error: a non-finite number at {path} in the output "
            "(please report it with the input)"
        ) from exc


def json_types(data: Any) -> Any:
    """``data`` as a reader of its JSON gets it back (a date as its ISO string, a tuple as a
    list): what a document must hold for its YAML to be the same document as its JSON."""
    return json.loads(dumps(data, indent=None))


def first_non_finite(data: Any, path: str = "$") -> str | None:
    """The JSON path of the first NaN or infinity in ``data`` (None when every number is
    finite)."""
    stack: list[tuple[Any, str]] = [(data, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return where
        if isinstance(value, dict):
            stack.extend((v, f"{where}.{k}") for k, v in reversed(list(value.items())))
        elif isinstance(value, list | tuple):
            stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(value))))
    return None
