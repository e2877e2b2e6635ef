"""Reading user input (YAML or JSON) into validated models, with errors that name the field.

Every parse error becomes an :class:`~straits.errors.InputError` subclass whose message names the
source (file or ``<stdin>``), the field path (``workloads[0].stages[1].after``) and what was
expected; the CLI prints it on one line and exits with status 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from straits.errors import InputError, ScenarioError
from straits.model.scenario import Scenario

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``sites[0].pools[1].chip``; a mapping's key that failed reads ``labels (key 'x!')``."""
    out = ""
    parts = list(loc)
    key_error = len(parts) >= 2 and parts[-1] == "[key]"
    if key_error:
        parts = parts[:-2]
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    if key_error:
        out += f" (key {loc[-2]!r})"
    return out or "(top level)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe_validation_error(exc: ValidationError) -> list[tuple[str, str]]:
    """(path, message) for each problem pydantic found, in a form a person can act on."""
    errors = exc.errors(include_url=False)
    # a container error caused by a failed item ("at least 1 item after validation") is noise;
    # one set of every error's proper prefixes keeps this linear in the number of errors (a
    # body of 10,000 bad items gives tens of thousands)
    prefixes = {tuple(e["loc"])[:n] for e in errors for n in range(len(e["loc"]))}
    errors = [e for e in errors if tuple(e["loc"]) not in prefixes]
    problems = []
    for err in errors:
        msg = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            if msg.startswith(prefix):
                msg = msg[len(prefix):]
        kind = err["type"]
        if kind == "missing":
            msg = "required field is missing"
        elif kind == "extra_forbidden":
            msg = "unknown field (check the spelling against the scenario reference)"
        elif kind not in ("value_error", "assertion_error") and "input" in err:
            msg = f"{msg}, got {_short(err['input'])}"
        problems.append((field_path(tuple(err["loc"])), msg))
    return problems


def validate_as(model: type[M], data: Any, *, source: str,
                error: type[InputError] = InputError) -> M:
    """Validate ``data`` as ``model``; raise ``error`` naming ``source`` and the field path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = describe_validation_error(exc)
        path, msg = problems[0]
        if len(problems) > 1:
            msg += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        raise error(msg, source=source, path=path) from None
    except InputError as exc:
        if exc.source is None:
            raise type(exc)(exc.detail, source=source, path=exc.path,
                            expected=exc.expected) from None
        raise


def parse_document(text: str, *, source: str, error: type[InputError] = InputError) -> Any:
    """Parse YAML (a superset of JSON) text; errors give the line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise error(f"not valid YAML/JSON at {where}: {exc.problem}", source=source) from None
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML/JSON: {exc}", source=source) from None


def parse_json(text: str, *, source: str, error: type[InputError] = InputError) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                    source=source) from None


def read_text(path: Path, *, error: type[InputError] = InputError) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise error("is a directory, not a file", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read: {exc}", source=str(path)) from None


def parse_scenario(data: Any, *, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError("a scenario must be a mapping at the top level", source=source,
                            expected="keys straits, name, date, tenants, sites, ...")
    return validate_as(Scenario, data, source=source, error=ScenarioError)


def load_scenario(path: str | Path) -> Scenario:
    """Load and validate a scenario file (YAML, or JSON with the same shape)."""
    p = Path(path)
    text = read_text(p, error=ScenarioError)
    data = parse_document(text, source=str(p), error=ScenarioError)
    return parse_scenario(data, source=str(p))
