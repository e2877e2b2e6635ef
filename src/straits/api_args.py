"""The arguments of the Python API (``straits.api``) as a library caller gives them, checked
before any work: a wrong type, a model built with ``model_construct`` (no validation), a
boolean or NaN chip count, a date outside the rules' window or a misspelt regime is a
:class:`~straits.errors.RequestError` naming the argument, never an ``AttributeError`` from deep
inside or a silently wrong answer (pyapi30). The shells pass validated values; these checks
cost microseconds against the work each function does."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from pydantic import BaseModel, TypeAdapter, ValidationError

from straits.errors import RequestError

if TYPE_CHECKING:
    from straits.model.types import Regime
    from straits.rules import RuleSet

M = TypeVar("M", bound=BaseModel)


def model_arg(value: Any, model: type[M], name: str, *, again: bool = True) -> M:
    """``value`` (an instance of ``model`` or a dict of its fields) validated as ``model``: an
    instance is validated again from its fields (unless ``again`` is false), so one built with
    ``model_construct`` gets the checks it skipped."""
    from straits.loading import validate_as

    if isinstance(value, model) and not again:
        return value
    if isinstance(value, model):
        try:
            data: Any = value.model_dump(exclude_unset=True, warnings=False)
        except Exception:  # a constructed model whose fields cannot be read back
            raise RequestError(
                f"a {model.__name__} whose fields cannot be read",
                path=name,
                expected=f"a {model.__name__} built with {model.__name__}.model_validate",
            ) from None
    elif isinstance(value, dict):
        data = value
    else:
        raise RequestError(
            f"got {type(value).__name__}, not {model.__name__}",
            path=name,
            expected=f"a {model.__name__} or a dict of its fields",
        )
    return validate_as(model, data, source=f"argument {name}", error=RequestError)


def requests_arg(values: Any, name: str = "requests") -> list[Any]:
    """A list of check requests, each validated (:func:`model_arg`)."""
    from straits.model.request import CheckRequest

    if not isinstance(values, list | tuple):
        raise RequestError(
            f"got {type(values).__name__}, not a list of CheckRequest",
            path=name,
            expected="a list of CheckRequest",
        )
    return [model_arg(v, CheckRequest, f"{name}[{i}]") for i, v in enumerate(values)]


def chips_arg(value: Any, name: str = "chips") -> int | None:
    """A cluster size given apart from the request (``chips=``): the request's own type, so
    ``True`` (read as 1 chip), NaN (an estimate of ``nan`` chips) and ``10**30`` (an
    OverflowError) are refused as ``chips: true`` in a request is."""
    from straits.model.types import Chips

    if value is None:
        return None
    try:
        return int(TypeAdapter(Chips).validate_python(value))
    except ValidationError as exc:
        raise RequestError(
            _msg(exc), path=name, expected="a whole number of chips, 1 to 10^7"
        ) from None


def date_arg(value: Any, name: str = "date") -> dt.date | None:
    """A day the rules are asked about: a ``datetime.date`` (or ``YYYY-MM-DD`` text) inside
    the rules' window; a year-1 date listed no rule, as if none were in force."""
    from straits.model.types import Date

    if value is None:
        return None
    try:
        day: dt.date = TypeAdapter(Date).validate_python(value)
    except ValidationError as exc:
        raise RequestError(
            _msg(exc), path=name, expected="a date, 2000-01-01 to 2100-12-31"
        ) from None
    return day


def _msg(exc: ValidationError) -> str:
    """The first problem's message, without pydantic's ``Value error, `` prefix."""
    return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")


def regime_arg(value: Any, name: str = "regime") -> Regime:
    """One of the regimes: a misspelt one listed no rule in force, without a word."""
    from straits.model.types import Regime

    known: tuple[str, ...] = get_args(Regime)
    if value not in known:
        raise RequestError(
            f"unknown regime {str(value)[:40]!r}", path=name, expected=" or ".join(known)
        )
    return value  # type: ignore[no-any-return]


def rules_arg(value: Any, name: str = "rules") -> RuleSet:
    """A loaded :class:`~straits.rules.RuleSet` (``straits.rules.ruleset()``)."""
    from straits.rules import RuleSet

    if not isinstance(value, RuleSet):
        raise RequestError(
            f"got {type(value).__name__}, not a RuleSet",
            path=name,
            expected="straits.rules.ruleset()",
        )
    return value


def texts_arg(value: Any, name: str) -> list[str]:
    """A list of strings (one string is a list of one: ``"slurm"`` was read letter by
    letter); anything else in it is refused by name."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise RequestError(
            f"got {type(value).__name__} {str(value)[:40]!r}",
            path=name,
            expected="a list of strings",
        )
    return list(items)


T = TypeVar("T")


def instance_arg(value: Any, cls: type[T], name: str) -> T:
    """``value`` when it is a ``cls`` (an estimate, a chip, a rule this API returned)."""
    if not isinstance(value, cls):
        raise RequestError(
            f"got {type(value).__name__}, not {cls.__name__}",
            path=name,
            expected=f"a {cls.__name__} as straits returns one",
        )
    return value
