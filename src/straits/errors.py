"""One exception tree for Straits.

Every error a user can cause derives from :class:`InputError` and maps to exit status 2 in the
CLI and to HTTP 4xx in the API. Messages say *what* was wrong, *where* (file, field path) and
*what was expected*, so that one line is enough to fix the input.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

#: the most problems one InputError lists (a body of 10,000 bad items finds tens of thousands)
MAX_PROBLEMS = 100

#: a name longer than this is no misspelling of a known one: nothing is suggested for it
_MAX_SUGGESTED_LEN = 100


def close_names(name: object, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to ``name``, best first, at most ``n`` (difflib's ratio of 0.6
    or more, to a whole name or to its part before the first ``-``, ``H100`` of ``H100-SXM``),
    compared after NFKC and case-folding, with the letters a reader takes for others made
    alike (O and 0, I and l and 1, a Cyrillic or Greek H for a Latin one, fullwidth H100 for
    H100): what an "unknown ..." error suggests. None for a name that is not text or is past
    100 characters (no misspelling, and difflib's cost grows with it)."""
    if not isinstance(name, str) or not name or len(name) > _MAX_SUGGESTED_LEN:
        return []
    left = _LEFT.get()
    if left is not None:  # within suggesting(): the first names only, as many as are listed
        if left[0] <= 0:
            return []
        left[0] -= 1
    names = tuple(known)
    if len(names) > _MAX_CACHED_KNOWN:  # a scenario's 10,000 site ids: not kept (rev65c)
        return list(_closest.__wrapped__(name, _forms.__wrapped__(names), n))
    return list(_closest(name, _forms(names), n))


#: the most known names whose forms and comparisons are cached (the catalog's, the packs'): a
#: server caching each scenario's ids kept 1,024 of them (10,000 sites each: 3.9 GB)
_MAX_CACHED_KNOWN = 64


#: within :func:`suggesting`, how many more names :func:`close_names` compares
_LEFT: ContextVar[list[int] | None] = ContextVar("straits_suggestions_left", default=None)


@contextmanager
def suggesting(first: int = MAX_PROBLEMS) -> Iterator[None]:
    """Within: :func:`close_names` suggests for the first ``first`` names it is asked about and
    for none after them, where a validation finds every problem and lists the first
    MAX_PROBLEMS (10,000 unknown chips were each compared with the catalog: 7 times the
    validation's time, rev65c). Nested, the outer count is kept (a list of checks, each
    validated alone)."""
    if _LEFT.get() is not None:
        yield
        return
    token = _LEFT.set([first])
    try:
        yield
    finally:
        _LEFT.reset(token)


@lru_cache(maxsize=64)
def _forms(known: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each known name with the forms it is compared in (the catalog's, once)."""
    return tuple(
        (k, tuple(dict.fromkeys((_name_key(k), _name_key(k.split("-", 1)[0])))))
        for k in dict.fromkeys(known)
    )


@lru_cache(maxsize=1024)
def _closest(name: str, forms: tuple[tuple[str, tuple[str, ...]], ...], n: int) -> tuple[str, ...]:
    """:func:`close_names` (a list of 10,000 checks naming one wrong chip: compared once).
    The name's part before its first ``-`` is compared too: ``H20-SXM`` is ``H20`` suffixed,
    where its whole is closest to ``H200-SXM``, a chip the rules treat otherwise (rev65c)."""
    key = _name_key(name)
    matchers = [(difflib.SequenceMatcher(b=key, autojunk=False), 0)]
    head = _name_key(name.split("-", 1)[0])
    if len(head) >= 3 and head != key:  # not a pack's `us`: every us-* pack would be as close
        matchers.append((difflib.SequenceMatcher(b=head, autojunk=False), 3))
    scored = []
    for k, keys in forms:
        best = [0.0, 0.0]  # the best of all forms, then the whole name's (a tie's order)
        for matcher, shortest in matchers:
            for form in keys:
                if len(form) < shortest:
                    continue
                matcher.set_seq1(form)
                if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6:
                    ratio = matcher.ratio()
                    best[0] = max(best[0], ratio)
                    best[1] = max(best[1], ratio if shortest == 0 else 0.0)
        if best[0] >= 0.6 and k != name:
            scored.append((-best[0], -best[1], k))
    return tuple(k for *_, k in sorted(scored)[:n])


#: Cyrillic and Greek letters drawn as Latin ones
_LATIN_ALIKE = str.maketrans(
    "\u0430\u0432\u0435\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0445\u0443\u0456"
    "\u03b1\u03b2\u03b5\u03b7\u03b9\u03ba\u03bc\u03bd\u03bf\u03c1\u03c4\u03c7\u03c5",
    "abekmhopctxyiabehikmvoptxy",
)
#: and, in a name, letters read as digits (H1OO)
_DIGIT_ALIKE = str.maketrans("oil", "011")


def latin_alike(text: str) -> str:
    """``text`` after NFKC, case-folded, with its Cyrillic and Greek look-alikes of Latin
    letters as those (a Cyrillic ES is a Latin c) and no unprintable character (a bidi
    override, a NUL, an ESC)."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_LATIN_ALIKE)
    return "".join(c for c in folded if c.isprintable() and not c.isspace())


def _name_key(name: str) -> str:
    return latin_alike(name).translate(_DIGIT_ALIKE)


#: pydantic's error type for an unknown name of a closed set (a chip), raised by
#: :func:`unknown_name` with the closest known names in its context
UNKNOWN_NAME = "unknown_name"


def unknown_name(message: str, suggestions: list[str]) -> Exception:
    """A validator's error for an unknown name: ``message`` (with its "did you mean"), the
    suggested names kept as data for :attr:`InputError.suggestions` (``loading.validate_as``;
    problem+json ``suggestions``)."""
    from pydantic_core import PydanticCustomError

    # the message is put in last: pydantic fills in the context's keys one after another, and
    # a name holding `{suggestions}` was shown as the list (cli65)
    return PydanticCustomError(
        UNKNOWN_NAME, "{message}", {"suggestions": suggestions, "message": message}
    )


def unknown_names(what: str, names: Iterable[str], known: list[str], **kw: Any) -> InputError:
    """``unknown pack(s): 'us-bsi' (did you mean 'us-bis'?)``: an error naming each unknown
    name (shortened; the first 10, counting the rest) with the known names closest to it,
    all of them its suggestions."""
    said, close, names = [], [], list(names)
    for name in names[:10]:  # 10,000 `?pack=` named each (a 600 KB message), compared each
        near = close_names(name, known)
        said.append(f"{name[:60]!r}{did_you_mean(near)}")
        close += [x for x in near if x not in close]
    more = f" and {len(names) - 10:,} more" if len(names) > 10 else ""
    return InputError(f"unknown {what}: {', '.join(said)}{more}", suggestions=close, **kw)


def did_you_mean(names: list[str]) -> str:
    """`` (did you mean 'A' or 'B'?)`` for suggested names, or nothing."""
    if not names:
        return ""
    quoted = [repr(x) for x in names]
    said = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f" (did you mean {said}?)"


def join_path(prefix: str, inner: str | None) -> str:
    """``prefix`` and a field path within it: ``[2]`` + ``date`` is ``[2].date``, ``sites``
    + ``[0].id`` is ``sites[0].id``; a path of the top level is the prefix alone."""
    if not inner or inner == "(top level)" or inner == prefix:
        return prefix
    return prefix + (inner if inner.startswith("[") else f".{inner}")


#: what a value refused by its declared type would have been, by the type of pydantic's
#: validation error and its context: one table for a query parameter or header (the API's
#: 400), a request body's field (the API) and a file's field (the CLI's ``(expected ...)``).
#: A type not here (a custom check that says it in its message) gives null
_EXPECTED: dict[str, str] = {
    "literal_error": "{expected}",
    "enum": "{expected}",
    "union_tag_invalid": "{expected_tags}",
    "union_tag_not_found": "a field {discriminator}",
    "greater_than_equal": "a number >= {ge}",
    "greater_than": "a number > {gt}",
    "less_than_equal": "a number <= {le}",
    "less_than": "a number < {lt}",
    "multiple_of": "a multiple of {multiple_of}",
    "finite_number": "a finite number",
    "string_too_long": "at most {max_length} character{s}",
    "string_too_short": "at least {min_length} character{s}",
    "string_pattern_mismatch": "text matching {pattern}",
    "string_type": "text",
    "too_long": "at most {max_length} item{s}",
    "too_short": "at least {min_length} item{s}",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "int_type": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "decimal_parsing": "a number",
    "decimal_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "date_type": "a date, YYYY-MM-DD",
    "date_parsing": "a date, YYYY-MM-DD",
    "date_from_datetime_parsing": "a date, YYYY-MM-DD",
    "date_from_datetime_inexact": "a date, YYYY-MM-DD",
    "datetime_type": "a date and time (ISO 8601)",
    "datetime_parsing": "a date and time (ISO 8601)",
    "datetime_from_date_parsing": "a date and time (ISO 8601)",
    "missing": "a value for {field}",
}


def validation_expected(error: dict[str, Any]) -> str | None:
    """``expected`` for one of pydantic's validation errors (``{"type", "loc", "ctx"}``, see
    :data:`_EXPECTED`); None where its type or context says nothing."""
    form = _EXPECTED.get(str(error.get("type")))
    if form is None:
        return _said(str(error.get("msg") or ""))
    ctx = {k: _number(v) for k, v in (error.get("ctx") or {}).items()}
    # a length of one is "1 character" (an empty Idempotency-Key read "at least 1 characters")
    ctx.setdefault("s", "" if ctx.get("min_length", ctx.get("max_length")) == 1 else "s")
    names = [p for p in error.get("loc") or () if isinstance(p, str) and p != "[key]"]
    if names:
        ctx.setdefault("field", names[-1])
    try:
        return form.format(**ctx)
    except (KeyError, IndexError, ValueError):  # a context pydantic may change: no guess
        return None


#: what a custom check's message says was expected: ``'x' is not a date (expected YYYY-MM-DD)``,
#: ``expected an objective name such as cost``, ``not a whole number: expected a number from ...``
_SAID = (
    re.compile(r"\(expected ((?:[^()]|\([^()]*\))+)\)\Z"),
    re.compile(r"(?:\A|: )expected ([^\n]+)\Z"),
)


def _said(message: str) -> str | None:
    """What ``message`` (a custom validator's) says was expected, or None."""
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    for form in _SAID:
        found = form.search(message)
        if found:
            return found.group(1).strip() or None
    return None


def _number(value: Any) -> Any:
    """A bound as a person writes it: 3600, not 3600.0."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


class StraitsError(Exception):
    """Base class of every error Straits raises on purpose."""

    exit_code: int = 1


class InputError(StraitsError):
    """The user's input is wrong: a file, a request, an argument. Exit status 2."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        path: str | None = None,
        expected: str | None = None,
        line: int | None = None,
        problems: list[tuple[str | None, str]] | None = None,
        suggestions: list[str] | None = None,
    ) -> None:
        self.source = source
        self.path = path
        self.expected = expected
        self.detail = message
        self.line = line
        """The 1-based line of ``source`` where the problem is, when known."""
        self.problems: list[tuple[str | None, str]] = (
            problems[:MAX_PROBLEMS] if problems else [(path, message)]
        )
        """Every problem found, each (field path, what was wrong), the first MAX_PROBLEMS of
        them: the message names the first and counts the rest; the API lists them all
        (problem+json ``errors``)."""
        self.suggestions: list[str] = list(suggestions or [])
        """For an unknown name (a chip, a pack, a scenario's id): the known names closest to
        it, best first (:func:`close_names`; problem+json ``suggestions``)."""
        self.every: list[InputError] = []
        """Where validation found several problems: one error each (the first MAX_PROBLEMS),
        with its field path, line and ``expected``, for a command that lists them all
        (``check``, ``estimate``, ``scenario validate``); empty for one problem."""
        self.total = len(self.problems)
        """How many problems were found (past MAX_PROBLEMS, more than are listed)."""
        super().__init__(self._render())

    def replaced(self, **changes: Any) -> InputError:
        """This error, of its class, with ``changes`` to its ``source``, ``path``,
        ``expected``, ``line``, ``problems`` or ``suggestions`` (the others kept)."""
        fields: dict[str, Any] = {
            "source": self.source,
            "path": self.path,
            "expected": self.expected,
            "line": self.line,
            "problems": self.problems,
            "suggestions": self.suggestions,
        }
        return type(self)(self.detail, **{**fields, **changes})

    def listing(self, every: list[InputError], total: int) -> InputError:
        """This error with :attr:`every` and :attr:`total` set (``every`` when it holds two
        or more problems)."""
        self.every = every[:MAX_PROBLEMS] if len(every) > 1 else []
        self.total = max(total, 1)
        return self

    def problems_under(self, prefix: str) -> list[tuple[str | None, str]]:
        """:attr:`problems` with each path under ``prefix`` (``[2]``, ``prices[0]``), for an
        error re-raised for the document that holds the validated part."""
        return [(join_path(prefix, path), detail) for path, detail in self.problems]

    def expected_unsaid(self) -> str | None:
        """:attr:`expected`, unless the message says it already (a validator's own
        ``(expected YYYY-MM-DD)``, pydantic's ``Input should be 'p50' or 'p90'`` or ``should
        have at most 50 items``): what a line for a person adds as ``(expected ...)``."""
        if not self.expected or any(
            f"{said} {self.expected}" in self.detail
            for said in ("expected", "should be", "should have")
        ):
            return None
        return self.expected

    def _render(self) -> str:
        source = self.source
        if source and self.line is not None:
            source = f"{source}:{self.line}"
        where = ""
        if source and self.path:
            where = f"{source}: {self.path}: "
        elif source:
            where = f"{source}: "
        elif self.path:
            where = f"{self.path}: "
        unsaid = self.expected_unsaid()
        tail = f" (expected {unsaid})" if unsaid else ""
        return f"{where}{self.detail}{tail}"


class ScenarioError(InputError):
    """A scenario file is malformed or refers to something that does not exist."""


class RequestError(InputError):
    """A check or estimate request is malformed."""


class UnknownChipError(InputError):
    """A chip id is not in the catalog; :attr:`suggestions` are the closest ids it has."""


class EstimateError(InputError):
    """A stage cannot be estimated (e.g. a model larger than its parameters allow)."""


class InputTooLarge(InputError):
    """A file, stdin or request body over its size cap (exit 2; HTTP 413)."""


class NotReadyError(InputError):
    """What was asked needs a finished plan, and the plan is queued, running, failed or
    cancelled. Exit status 2 (the argument names a plan not ready); HTTP 409 with the plan's
    ``status``, on every route and console page that needs a finished plan."""

    def __init__(self, plan_id: str, status: str, *, path: str | None = None) -> None:
        self.plan_id = plan_id
        self.status = status
        super().__init__(
            f"plan {plan_id} is {status}, not done", path=path, expected="a finished plan"
        )


class KeyReusedError(InputError):
    """An idempotency key its tenant already sent with another request (another scenario or
    other options for a plan, other requests for a recorded check). HTTP 409 (exit 2), naming
    the plan the key belongs to, if a plan's."""

    def __init__(
        self,
        key: str,
        plan_id: str | None,
        *,
        what: str = "another scenario or other options",
        path: str = "Idempotency-Key",
    ) -> None:
        self.plan_id = plan_id
        name = "Idempotency-Key" if path == "Idempotency-Key" else f"request id ({path})"
        super().__init__(
            f"{name} {key!r} was sent before with {what}"
            + (f" (plan {plan_id})" if plan_id else ""),
            path=path,
            expected="a new key for a new request, or the same request again",
        )


class PackError(InputError):
    """A rule pack (Cedar policies, schema or case table) is malformed."""


class StoreError(StraitsError):
    """The database cannot be reached or written. Exit status 1."""


class AuthError(StraitsError):
    """A request without a valid token (401) or beyond its token's rights (403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        self.status = status
        super().__init__(message)


class NotFoundError(StraitsError):
    """Something asked for by id does not exist, or is not the caller's to see (404)."""

    exit_code = 2


class RemoteError(StraitsError):
    """A Straits server could not be reached, or failed to answer (``straits.client``; the
    CLI's ``--server`` mode). Exit status 1."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class StillWaitingError(RemoteError):
    """A submitted plan did not end within the client's wait (``Client.wait``'s ``timeout``);
    the job stays on the server. Exit status 1."""


class BusyError(StraitsError):
    """Every slot of a bounded piece of work is taken (HTTP 503 with ``Retry-After``): ask
    again in ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class OutputError(StraitsError):
    """Standard output took no more (a full disk, ``/dev/full``, an I/O error): what was
    printed is incomplete. Exit status 1."""


class CatalogError(StraitsError):
    """Shipped data is inconsistent: a bug in Straits, not in the user's input."""


class LedgerError(StraitsError):
    """The ledger does not prove what the database holds: a record, an entry or the tree was
    altered, or a checkpoint is forged. The message names the entry. Exit status 1; HTTP 409
    (nothing unproven is served)."""

    def __init__(self, message: str, seq: int | None = None) -> None:
        self.seq = seq
        super().__init__(message)
