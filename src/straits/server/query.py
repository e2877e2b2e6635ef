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

import types
import typing
from typing import Any

from fastapi import Request

from straits.errors import InputError

_LISTS = (list, tuple, set, frozenset)


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
    """Raise an :class:`InputError` (400) naming a one-value query parameter given twice."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None or not request.url.query:
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
    for name in request.query_params:
        if name not in taken:
            expected = ", ".join(sorted(taken)) or "no query parameters"
            raise InputError(
                f"unknown query parameter {name[:100]!r}", path=name[:100], expected=expected
            )
