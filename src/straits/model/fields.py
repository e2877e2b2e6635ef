"""The fields a model has where a validation error was met: what an unknown field's problem
says was expected (``one of the fields id, country, ...``; ``loading.validate_as``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

#: the most field names an unknown field's ``expected`` lists
_MAX_NAMES = 40


def fields_expected(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    """``one of the fields a, b, c``: those of the model that holds the unknown field at ``loc``;
    None where the way there is not one model (a union of models, a type pydantic adapts)."""
    tp: Any = model
    for part in loc[:-1]:
        tp = _step(tp, part)
        if tp is None:
            return None
    tp = _bare(tp)
    if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        return None
    names = [f.alias or name for name, f in tp.model_fields.items()]
    more = f" (and {len(names) - _MAX_NAMES} more)" if len(names) > _MAX_NAMES else ""
    return "one of the fields " + ", ".join(names[:_MAX_NAMES]) + more if names else None


def _bare(tp: Any) -> Any:
    """``tp`` without ``Annotated`` and an optional's None."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
            continue
        if get_origin(tp) in (Union, UnionType):
            kinds = [a for a in get_args(tp) if a is not type(None)]
            if len(kinds) == 1:
                tp = kinds[0]
                continue
        return tp


def _step(tp: Any, part: int | str) -> Any:
    """The type one step into ``tp`` along a validation error's ``loc``, or None."""
    tp = _bare(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
        return None
    origin, args = get_origin(tp), get_args(tp)
    if isinstance(part, int) and origin in (list, tuple, set, frozenset, Sequence) and args:
        return args[0]
    if isinstance(part, str) and origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None
