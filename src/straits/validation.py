"""Validating parsed documents into models, and pydantic's errors as Straits' problems.

:func:`validate_as` turns every problem of a document into an
:class:`~straits.errors.InputError` with its field path (``workloads[0].stages[1].after``), what
was expected and its line in the text the document came from; :mod:`straits.loading` parses the
text and re-exports these names.
"""

from __future__ import annotations

import re
import reprlib
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationError

from straits import safe_yaml
from straits.controls import shorten
from straits.errors import (
    MAX_PROBLEMS,
    UNKNOWN_NAME,
    InputError,
    suggesting,
    validation_expected,
)
from straits.limits import MAX_DEPTH
from straits.model.fields import fields_expected

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``sites[0].pools[1].chip``; a mapping's key that failed reads ``labels (key 'x!')``.
    A key past 60 characters is shortened (``kkk...``): a body's unknown key of 1 MiB was
    written three times into its problem (``path``, ``errors``, ``error``)."""
    out = ""
    parts = [p if isinstance(p, int) else shorten(str(p)) for p in loc]
    key_error = len(parts) >= 2 and parts[-1] == "[key]"
    if key_error:
        parts = parts[:-2]
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    if key_error:
        out += f" (key {shorten(str(loc[-2]))!r})"
    return out or "(top level)"


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 50, 50, 40


def _short(value: Any) -> str:
    """A bounded repr: never walks more than a few items of a (possibly huge) input."""
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_validation_error(exc: ValidationError) -> list[tuple[str, str]]:
    """(path, message) for each problem pydantic found, in a form a person can act on."""
    return [(field_path(p.loc), p.msg) for p in _problems(exc)]


class _Problem(NamedTuple):
    loc: tuple[int | str, ...]
    msg: str
    expected: str | None
    suggestions: list[str] = []  # noqa: RUF012 (an unknown name's closest known ones; never mutated)


def _problems(
    exc: ValidationError,
    reference: str = "the scenario reference",
    model: type[BaseModel] | None = None,
) -> list[_Problem]:
    """Each problem pydantic found: its place, what was wrong, and what was expected (from the
    error's type and context, ``errors.validation_expected``; an unknown field of ``model``:
    the fields it has there)."""
    errors = exc.errors(include_url=False)
    # a container error caused by a failed item ("at least 1 item after validation") is noise;
    # one set of every error's proper prefixes keeps this linear in the number of errors (a
    # body of 10,000 bad items gives tens of thousands)
    prefixes = {tuple(e["loc"])[:n] for e in errors for n in range(len(e["loc"]))}
    errors = [e for e in errors if tuple(e["loc"]) not in prefixes]
    problems = []
    for n, err in enumerate(errors):
        msg = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix) :]
        kind = err["type"]
        if kind == "missing":
            msg = "required field is missing"
        elif kind == "extra_forbidden":
            msg = f"unknown field (check the spelling against {reference})"
        elif kind not in ("value_error", "assertion_error", UNKNOWN_NAME) and "input" in err:
            msg = f"{msg}, got {_short(err['input'])}"
        loc = tuple(err["loc"])
        expected, close = None, []
        if n < MAX_PROBLEMS:  # as many as are shown: 150,000 unknown keys doubled the time
            expected = validation_expected(dict(err))
            if kind == "extra_forbidden" and model is not None:
                expected = fields_expected(model, loc)
            if kind == UNKNOWN_NAME:
                close = [str(x) for x in (err.get("ctx") or {}).get("suggestions") or ()]
        problems.append(_Problem(loc, msg, expected, close))
    return problems


def validate_as(
    model: type[M],
    data: Any,
    *,
    source: str,
    error: type[InputError] = InputError,
    text: str | None = None,
    reference: str | None = None,
    context: dict[str, Any] | None = None,
) -> M:
    """Validate ``data`` as ``model``; raise ``error`` naming ``source`` and the field path
    (and the line, when ``text``, the document ``data`` was parsed from, is given).
    ``context`` is pydantic's validation context. An unknown field's message sends the reader
    to ``reference``, else the model's ``REFERENCE`` (a check, estimate or impact body's own
    page), else the scenario reference."""
    try:
        with suggesting():  # the listed problems' names alone compared (rev65c)
            return model.model_validate(data, context=context)
    except ValidationError as exc:
        ref = reference or str(getattr(model, "REFERENCE", "the scenario reference"))
        problems = _problems(exc, ref, model)
        # the text composed once for every listed problem's line (scenario_listing's way)
        line_of = safe_yaml.locator(text) if text is not None else lambda loc: None
        every: list[InputError] = [
            error(
                p.msg,
                source=source,
                path=field_path(p.loc),
                expected=p.expected,
                line=line_of(p.loc),
                suggestions=p.suggestions,
            )
            for p in problems[: MAX_PROBLEMS if len(problems) > 1 else 0]
        ]
        first = problems[0]
        raise error(
            first.msg + more_problems(len(problems)),
            source=source,
            path=field_path(first.loc),
            expected=first.expected,
            line=every[0].line if every else line_of(first.loc),
            problems=[(field_path(p.loc), p.msg) for p in problems[:MAX_PROBLEMS]],
            suggestions=first.suggestions,
        ).listing(every, len(problems)) from None
    except InputError as exc:
        raise sourced(exc, source=source, text=text) from None
    except RecursionError:
        raise error(f"nested deeper than {MAX_DEPTH} levels", source=source) from None


def sourced(exc: InputError, *, source: str, text: str | None) -> InputError:
    """A validator's own error ``exc`` naming ``source`` (and its line in ``text``, the
    document the data was parsed from) where it names none; else ``exc`` itself."""
    if exc.source is not None:
        return exc
    line = exc.line
    if line is None and text is not None and exc.path:
        line = safe_yaml.locate(text, field_loc(exc.path))
    return exc.replaced(source=source, line=line)


def more_problems(total: int) -> str:
    """`` (and 2 more problems)`` after the first of ``total`` problems; nothing for one."""
    if total < 2:
        return ""
    return f" (and {total - 1} more problem{'s' if total > 2 else ''})"


def field_loc(path: str) -> tuple[int | str, ...]:
    """``workloads[0].stages[1].after`` -> ('workloads', 0, 'stages', 1, 'after')."""
    out: list[int | str] = []
    for part in re.findall(r"\[(\d+)\]|([^.\[\]]+)", path):
        out.append(int(part[0]) if part[0] else part[1])
    return tuple(out)


def located(exc: InputError, text: str, source: str) -> InputError:
    """``exc`` (a field error from a validator that saw the parsed document, not its text)
    named with ``source`` and the line of its field in ``text``; one that already names its
    source is returned as it is."""
    if exc.source is not None:
        return exc
    line = safe_yaml.locate(text, field_loc(exc.path)) if exc.path else None
    return InputError(exc.detail, source=source, path=exc.path, expected=exc.expected, line=line)
