"""Every problem the scenario model finds, each with its line: ``scenario validate`` and the
console's submit page list them (the first MAX_PROBLEMS), where the other commands and the
API's ``detail`` name the first and count the rest (:func:`straits.loading.validate_as`, which
keeps each problem with its line for ``check`` and ``estimate`` to list, as the bad items of a
list of checks are by :func:`items_listing`).

The text is parsed and validated once and composed once more for all the problems' lines
(:func:`straits.safe_yaml.locator`): ``scenario validate`` parsed, validated and composed it
twice more to list them, and a 12 MB scenario took twice as long (left64b)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from straits import safe_yaml
from straits.errors import MAX_PROBLEMS, InputError, ScenarioError, join_path, suggesting
from straits.limits import MAX_DEPTH
from straits.loading import (
    _problems,
    field_loc,
    field_path,
    more_problems,
    parse_document,
    sourced,
)
from straits.model.scenario import Scenario


class ScenarioProblems(ScenarioError):
    """The first problem, counting the rest, with :attr:`every` one (the first MAX_PROBLEMS,
    each with its line) and :attr:`total`, how many the model found."""


def scenario_listing(data: dict[str, Any], text: str, source: str) -> Scenario:
    """``data``, parsed from ``text``, as a scenario, or :class:`ScenarioProblems`, their
    lines found in one composition of ``text``."""
    try:
        with suggesting():  # the listed problems' names alone compared (rev65c)
            return Scenario.model_validate(data)
    except ValidationError as exc:
        found = _problems(exc, model=Scenario)
    except InputError as exc:  # a validator's own error: as parse_scenario says it, without
        # validating again (the console's submit page validated a refused scenario twice)
        raise sourced(exc, source=source, text=text) from None
    except RecursionError:
        raise ScenarioError(f"nested deeper than {MAX_DEPTH} levels", source=source) from None
    line = safe_yaml.locator(text)
    every: list[InputError] = [
        ScenarioError(
            p.msg, source=source, path=field_path(p.loc), expected=p.expected, line=line(p.loc),
            suggestions=p.suggestions,
        )
        for p in found[:MAX_PROBLEMS]
    ]  # fmt: skip
    n, first = len(found), every[0]
    err = ScenarioProblems(
        first.detail + more_problems(n), source=source, path=first.path, expected=first.expected,
        line=first.line, problems=[(e.path, e.detail) for e in every],
        suggestions=first.suggestions,
    )  # fmt: skip
    # one problem too: `validate` tells it apart from a validator's own error by its class
    err.every, err.total = every, n
    raise err


def scenario_problems(text: str, *, source: str) -> list[InputError]:
    """The problems pydantic finds in a scenario's text (the first MAX_PROBLEMS), one error
    each with its field path and line (:func:`parse_scenario` raises the first, saying how many
    more there are); empty when the text does not parse or the problems are not the model's
    (the caller keeps its error). The text is composed once for all their lines."""
    try:
        data = parse_document(text, source=source, error=ScenarioError)
        if isinstance(data, dict):
            scenario_listing(data, text, source)
    except ScenarioProblems as exc:
        return exc.every
    except (InputError, RecursionError, ValueError):
        return []
    return []


def items_listing(
    bad: list[tuple[int, InputError]],
    source: str,
    text: str | None,
    error: type[InputError] = InputError,
) -> InputError:
    """One error for the bad items of a list (a list of check requests): the first problem,
    counting the others of every item, and each (the first MAX_PROBLEMS) under its ``[i]``,
    on its line of ``text`` (composed once): the list's first bad item alone was named, and
    its problems alone listed (cli65)."""
    line_of = safe_yaml.locator(text) if text is not None else lambda loc: None
    every: list[InputError] = []
    for i, exc in bad:
        for e in (exc.every or [exc])[: MAX_PROBLEMS - len(every)]:
            inner = e.path if e.path not in (None, "", f"[{i}]", "(top level)") else ""
            path = join_path(f"[{i}]", inner)
            every.append(
                error(
                    e.detail, source=source, path=path, expected=e.expected,
                    line=line_of(field_loc(path)), suggestions=e.suggestions,
                )
            )  # fmt: skip
    total, first = sum(exc.total for _, exc in bad), every[0]
    return error(
        first.detail + more_problems(total), source=source, path=first.path,
        expected=first.expected, line=first.line, problems=[(e.path, e.detail) for e in every],
        suggestions=first.suggestions,
    ).listing(every, total)  # fmt: skip
