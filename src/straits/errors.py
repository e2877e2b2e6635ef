"""One exception tree for Straits.

Every error a user can cause derives from :class:`InputError` and maps to exit status 2 in the
CLI and to HTTP 4xx in the API. Messages say *what* was wrong, *where* (file, field path) and
*what was expected*, so that one line is enough to fix the input.
"""

from __future__ import annotations

#: the most problems one InputError lists (a body of 10,000 bad items finds tens of thousands)
MAX_PROBLEMS = 100


def join_path(prefix: str, inner: str | None) -> str:
    """``prefix`` and a field path within it: ``[2]`` + ``date`` is ``[2].date``, ``sites``
    + ``[0].id`` is ``sites[0].id``; a path of the top level is the prefix alone."""
    if not inner or inner == "(top level)" or inner == prefix:
        return prefix
    return prefix + (inner if inner.startswith("[") else f".{inner}")


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
        super().__init__(self._render())

    def problems_under(self, prefix: str) -> list[tuple[str | None, str]]:
        """:attr:`problems` with each path under ``prefix`` (``[2]``, ``prices[0]``), for an
        error re-raised for the document that holds the validated part."""
        return [(join_path(prefix, path), detail) for path, detail in self.problems]

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
        tail = f" (expected {self.expected})" if self.expected else ""
        return f"{where}{self.detail}{tail}"


class ScenarioError(InputError):
    """A scenario file is malformed or refers to something that does not exist."""


class RequestError(InputError):
    """A check or estimate request is malformed."""


class UnknownChipError(InputError):
    """A chip id is not in the catalog."""


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
