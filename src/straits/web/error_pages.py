"""The console's error pages: HTML under ``/ui`` where the API answers problem+json, with the
same detail (a tenant sees only what the API would tell it)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from straits.errors import InputError, StraitsError
from straits.web import session
from straits.web.templating import render

HEADINGS = {
    400: "Bad request",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Too slow",
    409: "Not ready",
    413: "Too large",
    415: "Unsupported encoding",
    500: "Internal error",
    503: "Unavailable",
}


def error_page(request: Request, exc: StraitsError, status: int) -> Response:
    try:
        signed = session.current(request)
    except Exception:  # the page of a database gone: it cannot say who is signed in
        signed = None
    heading = HEADINGS.get(status, "Error")
    return render(
        "error.html.j2",
        status=status,
        signed=signed,
        title=f"{heading} - Straits",
        status_code=status,
        heading=heading,
        detail=exc.detail if isinstance(exc, InputError) else str(exc),
    )


def plain_error_page(status: int, detail: str) -> Response:
    """An error page that asks nothing of the database (no signed-in user): for what the
    server refuses before a page runs (a body over the limit, or too slow)."""
    heading = HEADINGS.get(status, "Error")
    return render(
        "error.html.j2",
        status=status,
        title=f"{heading} - Straits",
        status_code=status,
        heading=heading,
        detail=detail,
    )
