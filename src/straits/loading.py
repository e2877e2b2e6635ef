"""Reading user input (YAML or JSON) into validated models, with errors that name the field.

Every file and stdin is read with a size cap and parsed within the limits of
:mod:`straits.safe_yaml` (depth, aliases, duplicate keys); numbers are range-checked by the
models before any arithmetic. Every parse error becomes an :class:`~straits.errors.InputError`
subclass whose message names the source (file or ``<stdin>``), the line where known, the field
path (``workloads[0].stages[1].after``) and what was expected; the CLI prints it on one line and
exits with status 2.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from straits import safe_yaml
from straits.errors import (
    InputError,
    InputTooLarge,
    ScenarioError,
)
from straits.limits import MAX_DEPTH, human_bytes, max_input_bytes
from straits.model.scenario import Scenario
from straits.validation import (
    M,
    _problems,
    _short,
    describe_validation_error,
    field_loc,
    field_path,
    located,
    more_problems,
    sourced,
    validate_as,
)

#: parsing is here; validation (straits.validation) is re-exported for the callers of both
__all__ = [
    "M",
    "_problems",
    "describe_validation_error",
    "field_loc",
    "field_path",
    "load_scenario",
    "located",
    "more_problems",
    "parse_document",
    "parse_json",
    "parse_scenario",
    "read_bounded",
    "read_stdin",
    "read_text",
    "refuse_surrogates",
    "scenario_from_text",
    "sourced",
    "validate_as",
]


# --- parsing -------------------------------------------------------------------------------------
class _Duplicate(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number (every number must be finite)")


class _NotJson(ValueError):
    pass


class _Huge(_NotJson):
    """A number beyond a float's range (``1e400``), which Python's reader made infinity: a
    field of no declared type took it (SkyPilot's config, answered back holding ``Infinity``)."""


def _finite(written: str) -> float:
    if not math.isfinite(value := float(written)):
        raise _Huge(f"{written[:40]} is beyond the range of a number (every number is finite)")
    return value


def depth_of(value: Any) -> int:
    """How deeply lists and mappings nest in ``value`` (iterative)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:  # one level past the cap is enough to refuse
                stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _strict_json(text: str) -> Any:
    data = json.loads(
        text,
        object_pairs_hook=_unique_pairs,
        parse_constant=_no_constant,
        parse_int=_short_int,
        parse_float=_finite,
    )
    if depth_of(data) > MAX_DEPTH:
        raise _TooDeep()
    return data


class _LongInt(Exception):
    """An integer of more digits than any field takes (``safe_yaml.MAX_INT_DIGITS``)."""

    def __init__(self, digits: str) -> None:
        super().__init__(digits)
        self.digits = digits


def _short_int(digits: str) -> int:
    """As YAML's reader: past 40 digits no field means it, and past 4,300 Python's own
    message ("Exceeds the limit (4300 digits) for integer string conversion") was the
    answer, with no line (a hostile-input review)."""
    if len(digits.lstrip("-")) > safe_yaml.MAX_INT_DIGITS:
        raise _LongInt(digits)
    return int(digits)


class _TooDeep(Exception):
    pass


def parse_document(text: str, *, source: str, error: type[InputError] = InputError) -> Any:
    """Parse YAML (a superset of JSON) text within the limits of :mod:`straits.safe_yaml`;
    errors give the line and column. JSON takes a fast path."""
    if text.lstrip().startswith(("{", "[")):
        try:
            return _strict_json(text)
        except (ValueError, _Duplicate, _TooDeep, _LongInt, RecursionError):
            pass  # YAML flow style, or a JSON problem: the YAML parser locates it
    try:
        return safe_yaml.load(text)
    except safe_yaml.YamlLimitError as exc:
        raise error(exc.message, source=source, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise error(f"not valid YAML/JSON at {where}: {exc.problem}", source=source) from None
    except yaml.reader.ReaderError as exc:
        char = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise error(
            f"character {char!r} at position {exc.position} is not allowed in YAML/JSON",
            source=source,
            expected="a YAML or JSON text file",
        ) from None
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML/JSON: {_short(str(exc))}", source=source) from None
    except RecursionError:
        raise error(f"nested deeper than {MAX_DEPTH} levels", source=source) from None


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def refuse_surrogates(
    data: Any, text: str | bytes, *, source: str, error: type[InputError] = InputError
) -> None:
    """Refuse a string or key of ``data`` (parsed from ``text``) holding a lone surrogate: JSON's
    ``"\\ud800"`` is no character, and no UTF-8 text holds it (a request body: a field of no
    declared type took it, and SkyPilot's policy answered it back)."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if not _SURROGATE.search(raw):  # no escape of a surrogate: no walk
        return
    stack: list[tuple[Any, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        v, at = stack.pop()
        if isinstance(v, dict):
            stack.extend((k, at) for k in v)  # a key: named by the object that holds it
            stack.extend((x, (*at, str(k))) for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, (*at, i)) for i, x in enumerate(v))
        elif isinstance(v, str) and not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise error(
                    f"a lone surrogate (\\u{ord(v[exc.start]):04x}) in a string",
                    source=source,
                    path=field_path(at) if at else None,
                    expected="text in UTF-8",
                ) from None


def parse_json(text: str | bytes, *, source: str, error: type[InputError] = InputError) -> Any:
    """Strict JSON (request bodies): finite numbers, each key once per object, nesting at most
    MAX_DEPTH deep."""
    try:
        return _strict_json(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", source=source, expected="JSON") from None
    except json.JSONDecodeError as exc:
        raise error(
            f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            source=source,
            line=exc.lineno,
        ) from None
    except _Huge as exc:
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        at = raw.find(str(exc).split(" ", 1)[0])
        raise error(
            str(exc),
            source=source,
            expected="a finite number",
            line=raw.count("\n", 0, at) + 1 if at >= 0 else None,
        ) from None
    except _NotJson as exc:
        raise error(str(exc), source=source) from None
    except _Duplicate as exc:
        raise error(
            f"duplicate key {_short(exc.args[0])} in an object",
            source=source,
            expected="each key once per object",
        ) from None
    except (_TooDeep, RecursionError):
        raise error(f"nested deeper than {MAX_DEPTH} levels", source=source) from None
    except _LongInt as exc:
        raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
        at = raw.find(exc.digits)
        raise error(
            f"an integer of {len(exc.digits.lstrip('-')):,} digits "
            f"(at most {safe_yaml.MAX_INT_DIGITS})",
            source=source,
            line=raw.count("\n", 0, at) + 1 if at >= 0 else None,
        ) from None
    except ValueError as exc:  # e.g. an integer longer than Python converts
        raise error(f"not valid JSON: {_short(str(exc))}", source=source) from None


# --- reading -------------------------------------------------------------------------------------
def read_bounded(
    stream: BinaryIO, *, source: str, error: type[InputError] = InputError, limit: int | None = None
) -> str:
    """At most ``limit`` bytes (default: the input cap) of UTF-8 text from ``stream``; more is
    an :class:`~straits.errors.InputTooLarge` error, so ``/dev/zero`` cannot fill memory."""
    cap = limit if limit is not None else max_input_bytes()
    chunks, size = [], 0
    while size <= cap:
        chunk = stream.read(min(1 << 20, cap + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > cap:
        raise InputTooLarge(
            f"more than {human_bytes(cap)}",
            source=source,
            expected="a smaller input; STRAITS_MAX_INPUT_BYTES raises the cap",
        )
    raw = b"".join(chunks)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(
            f"not UTF-8 text (byte {exc.start} is {raw[exc.start]:#04x})",
            source=source,
            expected="a YAML or JSON text file",
        ) from None


def read_text(path: Path, *, error: type[InputError] = InputError) -> str:
    """A file's text, at most the input cap (a directory, a missing file or binary content is
    a one-line error)."""
    from straits import pipes

    try:  # without blocking: a FIFO nothing writes to hung the command (straits.pipes)
        raw = pipes.read_path(path, max_input_bytes())
    except FileNotFoundError:
        raise error("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise error("is a directory, not a file", source=str(path)) from None
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", source=str(path)) from None
    return read_bounded(io.BytesIO(raw), source=str(path), error=error)


def read_stdin(*, error: type[InputError] = InputError, what: str = "input") -> str:
    """Standard input's text, at most the input cap. Closed (``<&-``: ``sys.stdin`` is None,
    which was an AttributeError traceback) or a terminal (a command waiting silently for
    typing), it is refused: ``what`` names what was expected there."""
    if sys.stdin is None or sys.stdin.isatty():
        state = "closed" if sys.stdin is None else "a terminal"
        raise error(
            f"expects {what} on stdin (or a file argument); standard input is {state}",
            source="<stdin>",
        )
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # a replaced sys.stdin (tests) without a byte buffer
        return read_bounded(
            io.BytesIO(sys.stdin.read(max_input_bytes() + 1).encode()),
            source="<stdin>",
            error=error,
        )
    return read_bounded(stream, source="<stdin>", error=error)


def parse_scenario(
    data: Any, *, source: str = "<scenario>", text: str | None = None, stored: bool = False
) -> Scenario:
    """``data`` as a scenario. ``stored``: one the store or a plan document holds, read as it
    was recorded (its objective not held to the planner's parser of today: rev51)."""
    if not isinstance(data, dict):
        raise ScenarioError(
            "a scenario must be a mapping at the top level",
            source=source,
            expected="keys straits, name, date, tenants, sites, ...",
        )
    context = {"stored": True} if stored else None
    return validate_as(
        Scenario, data, source=source, error=ScenarioError, text=text, context=context
    )


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (YAML, or JSON with the same shape)."""
    p = Path(path)
    return scenario_from_text(read_text(p, error=ScenarioError), source=str(p))


def scenario_from_text(text: str, *, source: str, every: bool = False) -> Scenario:
    """:func:`load_scenario` of a file's text, read already. ``every`` (``scenario validate``):
    the model's problems are raised as :class:`~straits.scenario_listing.ScenarioProblems`,
    each with its line."""
    if not text.strip():
        raise ScenarioError(
            "the file is empty",
            source=source,
            expected="a scenario, as docs/scenario-reference.md describes",
        )
    data = parse_document(text, source=source, error=ScenarioError)
    if every and isinstance(data, dict):
        from straits.scenario_listing import scenario_listing

        return scenario_listing(data, text, source)
    return parse_scenario(data, source=source, text=text)
