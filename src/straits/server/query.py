"""Query parameters that take one value, given once.

FastAPI reads a parameter that takes one value from its last occurrence: ``?status=done&
status=failed`` listed the failed plans only, to a client that meant either, and ``?limit=1&
limit=1000`` answered a page of 1,000. Such a request is ambiguous, so it is refused with a
400 naming the parameter; parameters that take a list (``pack``, ``run``) repeat as before.

A parameter the route does not take is refused the same way on the API (``/v1``): it was
ignored, so ``GET /v1/ledger/verify?head=SEQ:HASH`` (the CLI's ``--head``) answered ``ok``
without looking at the head, and ``?stauts=done`` listed every plan.
"""

from __future__ import annotations

import datetime as dt
import re
import types
import typing
from typing import Annotated, Any

from fastapi import Request
from pydantic import BeforeValidator

from straits.errors import InputError
from straits.limits import DECIMAL_TEXT
from straits.model.types import Date

_LISTS = (list, tuple, set, frozenset)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: object) -> object:
    """A date as the API writes one, ``YYYY-MM-DD``, and nothing else: pydantic also takes a
    number as a Unix time (``?date=20250601`` was 1970-08-23: the rules of 1970, none, with a
    200; ``?date=0`` 1970-01-01) and a time with a zero clock; a JSON date is a string."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError(f"{str(value)[:40]!r} is not a date (expected YYYY-MM-DD)")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
"""A query or body date written ``YYYY-MM-DD`` (any year)."""
PlanningDate = Annotated[Date, BeforeValidator(_iso_date)]
"""A date written ``YYYY-MM-DD`` within the years Straits plans for (2000 to 2100), as the
CLI's ``--date`` takes them."""


_WHOLE = re.compile(r"-?[0-9]{1,100}")


def _whole(value: object) -> object:
    """A whole number written in decimal digits, and nothing else: pydantic reads ``1_0`` as
    10, ``1.0`` as 1 and ``+1`` or `` 1`` as 1, so ``GET /v1/ledger/entries/1_0`` served
    entry 10 to a client that sent something else (api29)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if not isinstance(value, str) or not _WHOLE.fullmatch(value):
        raise ValueError(f"{str(value)[:40]!r} is not a whole number (expected decimal digits)")
    return value


DIGITS = BeforeValidator(_whole)
"""Metadata of a query integer written in decimal digits, after its ``Query(ge=, le=)`` (a
bound after a validator is no JSON Schema ``minimum``/``maximum`` in the OpenAPI document but
a bare ``ge``/``le``): ``Annotated[int, Query(ge=1), DIGITS]``."""


def decimal_text(value: object) -> bool:
    """Whether ``value`` is a number written as the CLI's options take one (digits, a point,
    an exponent; no ``_``, no blanks, no ``nan`` or ``inf``)."""
    return isinstance(value, str) and len(value) <= 40 and bool(DECIMAL_TEXT.fullmatch(value))


def _decimal(value: object) -> object:
    """A decimal number written as :func:`decimal_text` says: pydantic reads ``1_0`` as 10 and
    `` 5 `` as 5, so ``POST /v1/plans?time_limit=1_0`` planned for 10 s where ``seed=1_0``
    and the CLI's ``--time-limit 1_0`` are refused (found by a hostile-input review)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if not decimal_text(value):
        raise ValueError(f"{str(value)[:40]!r} is not a number (expected decimal digits)")
    return value


DECIMAL = BeforeValidator(_decimal)
"""Metadata of a query number written in decimal, after its ``Query(ge=, le=)``, as
:data:`DIGITS` is for whole numbers."""
Whole = Annotated[int, DIGITS]
"""A path integer written in decimal digits (a leading ``-`` allowed; the route decides)."""


def _takes_a_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in _LISTS or annotation in _LISTS:
        return True
    if origin is typing.Union or origin is types.UnionType:  # X | None
        return any(_takes_a_list(a) for a in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _takes_a_list(typing.get_args(annotation)[0])
    return False


def refuse_repeated(request: Request) -> None:
    """Raise an :class:`InputError` (400) naming a one-value query parameter or header given
    twice. A header the route reads (``Idempotency-Key``) was read as one of them: a client's
    key and a proxy's, or two retries' keys merged, recorded the check or queued the plan
    under whichever came first, a replay of another request or a second entry (api29)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    for header in dependant.header_params:
        found = request.headers.getlist(header.alias)
        if len(found) > 1:
            raise InputError(
                f"{header.alias} is given {len(found)} times",
                path=header.alias,
                expected=f"one {header.alias} header",
            )
    if not request.url.query:
        return
    for param in dependant.query_params:
        if _takes_a_list(param.field_info.annotation):
            continue
        given = request.query_params.getlist(param.alias)
        if len(given) > 1:
            raise InputError(
                f"{param.alias} is given {len(given)} times",
                path=param.alias,
                expected=f"one {param.alias}=...",
            )


def refuse_unknown(request: Request) -> None:
    """Raise an :class:`InputError` (400) naming a query parameter the route does not take."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.url.query:
        return
    taken: set[str] = set()
    todo = [dependant]
    while todo:  # the route's own parameters and its dependencies'
        d = todo.pop()
        taken.update(param.alias for param in d.query_params)
        todo.extend(d.dependencies)
    unknown = list(dict.fromkeys(n[:100] for n in request.query_params if n not in taken))
    if unknown:  # each one in ``errors``, as validation lists every problem it finds
        expected = ", ".join(sorted(taken)) or "no query parameters"
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise InputError(
            f"unknown query parameter {unknown[0]!r}{more}",
            path=unknown[0],
            expected=expected,
            problems=[(n, f"unknown query parameter {n!r}") for n in unknown],
        )


def refuse_nul(request: Request) -> None:
    """Raise an :class:`InputError` (400) naming a path or query parameter that holds a NUL
    character: no Straits value holds one, and PostgreSQL refuses it in any text it is asked
    to compare (``?scenario=%00``, ``/v1/plans/%00abc``, an admin's ``?tenant=%00``: a
    DataError, a 500 with an incident; SQLite answered as for any unknown name)."""
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise InputError("holds a NUL character", path=name, expected="text without NUL")
    if "%00" not in request.url.query and "\x00" not in request.url.query:
        return
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise InputError(
                "holds a NUL character",
                path=name.replace("\x00", "\\x00")[:100],
                expected="text without NUL",
            )
