"""HEAD for every route that answers GET (RFC 9110 9.3.2: the same answer without its body).

FastAPI registers a route for the methods it names, so ``HEAD /ui/`` (a monitor's or ``curl
-I``'s check) was a 405 while ``GET /ui/`` was a 200, and each probe route had to name HEAD
itself. This middleware answers HEAD as GET, headers included (``Content-Length`` is GET's),
and sends no body; a path without GET still answers 405.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Match

# the ASGI types the server's middlewares share (BodyLimit in app.py uses them too)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: the scope extension in which the server's protocol (server/protocol.py) says how many bytes
#: the chunk being read still declares (``{"pending": n}``), for ``BodyLimit`` (app.py)
DECLARED = "straits.declared_body"


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headless(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # nothing of a streamed body is sent; its last message ends it
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headless)


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """The ``Allow`` header of a 405 on ``scope``'s path: every method some route takes there
    (Starlette names the methods of the first route that matched the path only: ``PATCH
    /v1/plans/{id}`` said ``Allow: GET`` though DELETE is taken there too), and HEAD beside GET
    (this middleware answers it on every such path). Each method is asked of the routes as a
    request would be, so routers included in others are searched as the app searches them."""
    routes = list(routes)
    methods = {
        method
        for method in METHODS
        if any(r.matches({**scope, "method": method})[0] == Match.FULL for r in routes)
    }
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


#: the methods a route of this server may take
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def error_headers(request: Request, exc: HTTPException) -> dict[str, str] | None:
    """The headers of an HTTP error's answer: its own, and for a 405 the path's whole
    ``Allow``."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request.app.router.routes, request.scope)
    return headers or None


def slash_redirect(request: Request, exc: HTTPException) -> Response | None:
    """For a 404 whose path differs from a route's by a trailing slash, the redirect to it, as
    Starlette's ``redirect_slashes`` gave it, but with a relative ``Location``: Starlette's was
    absolute, built from the request's ``Host`` header (``Host: evil.example`` on ``GET
    /v1/plans/`` answered ``Location: http://evil.example/v1/plans``), for any method and
    before any token was asked."""
    path = str(request.scope.get("path", ""))
    if exc.status_code != 404 or path in ("", "/"):
        return None
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    if not other.startswith("/") or other.startswith("//"):  # never another host
        return None
    scope = {**request.scope, "path": other}
    if not any(r.matches(scope)[0] != Match.NONE for r in request.app.router.routes):
        return None
    query = request.url.query
    location = quote(other) + (f"?{query}" if query else "")
    return RedirectResponse(location, status_code=307)
