"""API errors as RFC 9457 problem details (``application/problem+json``), one shape for all.

Every 4xx and 5xx answer is an object with the standard members ``type`` (a URI naming the kind
of problem, listed below and in docs/robustness.md), ``title`` (the kind, in words), ``status``
(the HTTP status), ``detail`` (what was wrong in this request) and ``instance`` (the request's
path), and these extensions:

* ``path``: the field path of bad input (``workloads[0].stages[1].after``, ``[2].date`` in a
  list of checks, ``time_limit`` for a query parameter), or null;
* ``expected``: what would have been accepted, or null;
* ``line``: for bad input, the line of the body where the problem is, when known, else null;
* ``errors``: every problem found, each ``{"path", "detail"}``, at most
  ``errors.MAX_PROBLEMS`` (validation finds several at once: ``detail`` names the first and
  counts the others, ``errors`` lists them);
* ``suggestions``: for an unknown name (a chip not in the catalog), the known names closest to
  it, best first, else empty (an item of ``errors`` about an unknown name has its own);
* ``total``: for bad input, how many problems were found, ``errors`` listing the first
  ``errors.MAX_PROBLEMS`` (``check --server`` says how many as ``check`` does, rev65c);
* ``error``: the whole one-line message, exactly as the CLI prints it (kept from the first
  version of the API, whose errors were ``{"error": ...}``);
* ``incident``: for a 500, the id under which the server logged the details.

Problem types are URNs (``urn:straits:problem:<kind>``): stable names, never fetched.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from straits.errors import InputError
from straits.jsonout import dumps

MEDIA_TYPE = "application/problem+json"
PREFIX = "urn:straits:problem:"

#: status -> (kind, title) for the problems the API answers with
KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid-input", "The request is not valid"),
    401: ("unauthorized", "A valid bearer token is needed"),
    403: ("forbidden", "The token may not do this"),
    404: ("not-found", "No such resource"),
    405: ("method-not-allowed", "Method not allowed on this path"),
    408: ("request-timeout", "The request body arrived too slowly"),
    409: ("conflict", "The resource is not in a state that allows this"),
    413: ("body-too-large", "The request body is too large"),
    415: ("unsupported-encoding", "The request body's content coding is not supported"),
    431: ("headers-too-large", "The request line and headers are too large"),
    500: ("internal-error", "Internal error"),
    503: ("unavailable", "The service is unavailable; try again"),
    505: ("http-version-not-supported", "The HTTP version is not supported"),
}


class ProblemItem(BaseModel):
    path: str | None = Field(description="Field path, or null.")
    detail: str
    suggestions: list[str] | None = Field(
        None, description="An unknown name's closest known names (present only then)."
    )


class Problem(BaseModel):
    """RFC 9457 problem details, with Straits' extensions."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="urn:straits:problem:<kind>", examples=["urn:straits:problem:invalid-input"]
    )
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str | None = Field(None, description="The request's path.")
    path: str | None = Field(None, description="The field path of bad input, or null.")
    expected: str | None = Field(None, description="What would have been accepted.")
    line: int | None = Field(None, description="The line of the body, when known.")
    errors: list[ProblemItem] = Field(default_factory=list)
    suggestions: list[str] = Field(
        default_factory=list,
        description="An unknown name's closest known names (a chip), best first; else empty.",
    )
    total: int | None = Field(
        None,
        description="Input errors: how many problems were found (`errors` lists the first 100).",
    )
    error: str = Field(description="The one-line message, as the CLI prints it.")
    incident: str | None = Field(None, description="500 only: the id in the server's log.")


class StrictJSONResponse(JSONResponse):
    """JSON with no NaN or Infinity, from the CLI's encoder (``straits.jsonout``)."""

    def render(self, content: Any) -> bytes:
        return dumps(content, indent=None).encode("utf-8")


def problem_body(
    status: int,
    detail: str,
    *,
    instance: str | None = None,
    path: str | None = None,
    expected: str | None = None,
    error: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    kind, title = KINDS.get(status, ("error", "Error"))
    items = errors if errors is not None else [{"path": path, "detail": detail}]
    return {
        "type": PREFIX + kind,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "path": path,
        "expected": expected,
        "errors": items,
        "error": error or detail,
        **extra,
    }


def problem_items(exc: InputError) -> list[dict[str, Any]]:
    """``errors``: each problem ``{"path", "detail"}``, with ``suggestions`` where it names an
    unknown name that has close known ones (from :attr:`InputError.every`, when it lists the
    same problems, else the first's)."""
    items: list[dict[str, Any]] = [{"path": p, "detail": d} for p, d in exc.problems]
    every = exc.every if [(e.path, e.detail) for e in exc.every] == exc.problems else [exc]
    for item, e in zip(items, every, strict=False):
        if e.suggestions:
            item["suggestions"] = e.suggestions
    return items


def problem(
    status: int, detail: str, *, headers: dict[str, str] | None = None, **fields: Any
) -> JSONResponse:
    """A problem+json response (see :func:`problem_body` for the fields)."""
    return StrictJSONResponse(
        problem_body(status, detail, **fields),
        status_code=status,
        headers=headers,
        media_type=MEDIA_TYPE,
    )


def refusal(
    scope: MutableMapping[str, Any],
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Response:
    """What the server's ASGI guards (the body limits, the request target) answer before any
    route runs: problem+json, or under /ui an HTML page (a console form over the limit showed
    the browser problem+json)."""
    path = str(scope.get("path", ""))
    if path.startswith("/ui/"):
        from straits.web.error_pages import plain_error_page

        page = plain_error_page(status, detail)
        page.headers.update(headers or {})
        return page
    return problem(status, detail, instance=path, headers=headers, **fields)


def openapi_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting these statuses as problems."""
    return {
        s: {
            "description": KINDS[s][1],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for s in statuses
    }


def _query_name(path: str | None) -> str | None:
    """A CLI flag's name as the API's query parameter: ``--to`` is ``to``, ``--time-limit``
    ``time_limit``; any other path as it is."""
    if path is None or not path.startswith("--"):
        return path
    return path[2:].replace("-", "_")


def as_query_error(exc: InputError) -> InputError:
    """``exc`` with the CLI's flag names (``--to``, ``--image``: the shared validators name
    the flag a command line gives) as the query parameters a request gives; a problem
    naming ``--to`` sent an integrator looking for a parameter the API does not have."""
    if not any((p or "").startswith("--") for p in (exc.path, *(q for q, _ in exc.problems))):
        return exc
    return InputError(
        exc.detail,
        source=exc.source,
        path=_query_name(exc.path),
        expected=exc.expected,
        line=exc.line,
        problems=[(_query_name(p), d) for p, d in exc.problems],
    )
