"""The web console of ``straits serve`` (``/ui``) and every asset it or the API docs need,
served from this package and its dependencies: nothing is fetched from a CDN.

``mount_console(app)`` adds the pages (``pages.py``), ``/static`` (the stylesheet, the
console's few lines of JavaScript, Plotly's bundle, the base map, Swagger UI and ReDoc from
the ``fastapi-offline`` package), ``/docs`` and ``/redoc`` on those local assets, and HTML
error pages for ``/ui`` (the API keeps its JSON errors).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from straits.errors import (
    AuthError,
    BusyError,
    InputError,
    NotFoundError,
    NotReadyError,
    StoreError,
    StraitsError,
)

#: name -> (loader, media type) of every file under /static
Asset = tuple[Callable[[], bytes], str]


def _package_file(package: str, name: str) -> Callable[[], bytes]:
    return lambda: resources.files(package).joinpath(name).read_bytes()


def _offline(name: str) -> Callable[[], bytes]:
    def load() -> bytes:
        import fastapi_offline

        return (Path(fastapi_offline.__file__).parent / "static" / name).read_bytes()

    return load


def _redoc_js() -> bytes:
    """ReDoc's bundle, its footer's logo taken from this server: the bundle asks for it at
    cdn.redoc.ly, a request out of a console that makes none (the policy refused it, and the
    browser logged an error on every /redoc)."""
    body = _offline("redoc.standalone.js")()
    return body.replace(b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"/static/favicon.png")


def _geo_js() -> bytes:
    topo = resources.files("straits.report").joinpath("assets/world_110m.json").read_bytes()
    return b'window.PlotlyGeoAssets = {topojson: {"world_110m": ' + topo + b"}};\n"


ASSETS: dict[str, Asset] = {
    "report.css": (_package_file("straits.report", "assets/report.css"), "text/css"),
    "console.js": (_package_file("straits.web", "static/console.js"), "text/javascript"),
    "figures.js": (_package_file("straits.report", "assets/figures.js"), "text/javascript"),
    "plotly.min.js": (_package_file("plotly", "package_data/plotly.min.js"), "text/javascript"),
    "geo.js": (_geo_js, "text/javascript"),
    "swagger-ui-bundle.js": (_offline("swagger-ui-bundle.js"), "text/javascript"),
    "swagger-ui.css": (_offline("swagger-ui.css"), "text/css"),
    "redoc.standalone.js": (_redoc_js, "text/javascript"),
    "favicon.png": (_offline("favicon.png"), "image/png"),
}


@cache
def asset(name: str) -> tuple[bytes, str, str]:
    """(content, media type, ETag) of a static file."""
    load, media = ASSETS[name]
    body = load()
    return body, media, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


#: one entity tag of an If-None-Match list: its opaque part, weak or strong
_ENTITY_TAG = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')


def none_match(values: list[str], etag: str) -> bool:
    """Whether ``If-None-Match`` (its header lines, ``values``) matches ``etag``, as RFC 9110
    13.1.2 says: ``*``, or ``etag`` in its comma-separated list by weak comparison (``W/`` on
    either side ignored). Only one strong tag, given alone, matched: a browser or proxy that
    revalidates with ``W/"..."`` or a list of tags got the whole file again."""
    opaque = etag.removeprefix("W/")
    for value in values:
        if value.strip() == "*":
            return True
        if opaque in _ENTITY_TAG.findall(value):
            return True
    return False


_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.S)


def with_console_headers(page: HTMLResponse) -> HTMLResponse:
    """A page built by FastAPI (Swagger UI, ReDoc) with the console's security headers: its
    Content-Security-Policy allows the page's own inline scripts by their SHA-256 and nothing
    else inline (they were served with no policy, no framing or sniffing protection)."""
    from straits.web.templating import CSP, HEADERS

    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(bytes(page.body))
    ]
    csp = CSP.replace("script-src 'self'", " ".join(["script-src 'self'", *hashes]), 1)
    # ReDoc runs its search in a worker made from a blob: URL
    csp += "; worker-src 'self' blob:"
    page.headers.update({**HEADERS, "Content-Security-Policy": csp})
    return page


def mount_console(app: FastAPI) -> None:
    from straits.web.pages import SignIn, router
    from straits.web.session import COOKIE, sign_out

    app.include_router(router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/ui", include_in_schema=False)
    def ui() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str, request: Request) -> Response:
        if name not in ASSETS:
            raise NotFoundError(f"no static file {name!r}")
        body, media, etag = asset(name)
        headers = {
            "ETag": etag,
            "Cache-Control": "public, max-age=86400",
            "X-Content-Type-Options": "nosniff",
        }
        if none_match(request.headers.getlist("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media, headers=headers)

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Straits API",
            swagger_js_url="/static/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui.css",
            swagger_favicon_url="/static/favicon.png",
        )
        return with_console_headers(page)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> Response:
        page = get_redoc_html(
            openapi_url="/openapi.json",
            title="Straits API",
            redoc_js_url="/static/redoc.standalone.js",
            redoc_favicon_url="/static/favicon.png",
            with_google_fonts=False,
        )
        return with_console_headers(page)

    async def to_sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignIn)
        response = RedirectResponse("/ui/login", status_code=303)
        if request.cookies.get(COOKIE):  # a revoked token's: the browser keeps no dead secret
            sign_out(response)
        return response

    app.add_exception_handler(SignIn, to_sign_in)
    _html_errors_under_ui(app)


def _html_errors_under_ui(app: FastAPI) -> None:
    """Errors of /ui pages as HTML pages; every other path keeps the API's JSON handler."""
    statuses: dict[type[StraitsError], Callable[[StraitsError], int]] = {
        NotFoundError: lambda e: 404,
        NotReadyError: lambda e: 409,
        InputError: lambda e: 400,
        AuthError: lambda e: e.status if isinstance(e, AuthError) else 403,
        BusyError: lambda e: 503,
    }
    for cls, status in statuses.items():
        json_handler = app.exception_handlers.get(cls)

        def make(
            cls: type[StraitsError], status: Callable[[StraitsError], int], json_handler: Any
        ) -> Any:
            async def handler(request: Request, exc: Exception) -> Response:
                if request.url.path.startswith("/ui/") and isinstance(exc, cls):
                    page = await error_page_for(request, exc, status(exc))
                    if isinstance(exc, BusyError):
                        page.headers["Retry-After"] = str(exc.retry_after)
                    return page
                assert json_handler is not None
                response: Response = await json_handler(request, exc)
                return response

            return handler

        app.add_exception_handler(cls, make(cls, status, json_handler))
    _html_http_errors_under_ui(app)
    _html_problems_under_ui(app)


def _html_problems_under_ui(app: FastAPI) -> None:
    """A crash (500), a database gone (503) and a record the ledger does not prove (409) as
    HTML pages under /ui: they answered a browser with problem+json. The API's handler still
    decides the answer (it logs, picks the incident id and the detail the caller may see, a
    tenant never what differs), and the page shows its detail and keeps its Retry-After."""
    from sqlalchemy.exc import OperationalError

    from straits.errors import LedgerError

    for cls in (LedgerError, StoreError, OperationalError, Exception):
        json_handler: Any = app.exception_handlers.get(cls)
        assert json_handler is not None, cls

        def make(json_handler: Any) -> Any:
            async def handler(request: Request, exc: Exception) -> Response:
                response: Response = await json_handler(request, exc)
                if not request.url.path.startswith("/ui/"):
                    return response
                detail = str(json.loads(bytes(response.body)).get("detail", ""))
                page = await error_page_for(request, StraitsError(detail), response.status_code)
                if "retry-after" in response.headers:
                    page.headers["Retry-After"] = response.headers["retry-after"]
                return page

            return handler

        app.add_exception_handler(cls, make(json_handler))


def _html_http_errors_under_ui(app: FastAPI) -> None:
    """What FastAPI refuses before a page runs (a /ui path no page serves, a method it does
    not take, a query or form value over its limit) as an HTML page under /ui too: a browser
    showed the API's problem+json."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from straits.server.head import error_headers, slash_redirect

    http_json: Any = app.exception_handlers.get(StarletteHTTPException)
    invalid_json: Any = app.exception_handlers.get(RequestValidationError)

    async def http_error(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/ui/") and isinstance(exc, StarletteHTTPException):
            redirect = slash_redirect(request, exc)
            if redirect is not None:
                return redirect
            page = await error_page_for(request, StraitsError(str(exc.detail)), exc.status_code)
            for name, value in (error_headers(request, exc) or {}).items():
                page.headers[name] = value
            return page
        assert http_json is not None
        response: Response = await http_json(request, exc)
        return response

    async def invalid(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/ui/") and isinstance(exc, RequestValidationError):
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ())[1:])
            detail = str(first.get("msg", "invalid request"))
            return await error_page_for(request, InputError(detail, path=where or None), 400)
        assert invalid_json is not None
        response: Response = await invalid_json(request, exc)
        return response

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)


async def error_page_for(request: Request, exc: StraitsError, status: int) -> Response:
    """The console's error page, made in a worker thread: it looks the session's token up
    (a slow hash or database there held every tenant's requests on the event loop: api30)."""
    from straits.web.error_pages import error_page

    return await run_in_threadpool(error_page, request, exc, status)


__all__ = ["ASSETS", "mount_console"]
