"""The REST API (FastAPI): a thin shell over the Python API, the store and the ledger.

Every /v1 route needs a bearer token (``straits tokens create``); ``/healthz`` and
``/openapi.json`` do not. Errors are JSON ``{"error": ...}`` with no stack trace: 400 for bad
input (naming the field path, as the CLI does), 401/403 for refused tokens (each one logged),
404, 409, 413 for bodies over the size limit, 500 with an incident id for anything else.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from straits import __version__
from straits.errors import AuthError, InputError, NotFoundError, StoreError
from straits.rules import ruleset
from straits.server import bodies
from straits.server.jobs import PlanRunner
from straits.server.plan_routes import router as plan_router
from straits.server.routes import router
from straits.server.settings import Settings
from straits.server.skypilot_routes import router as skypilot_router
from straits.store.audit import log_refusal
from straits.store.db import Store
from straits.store.records import fail_unfinished

log = logging.getLogger("straits.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, by Content-Length or as they stream."""

    def __init__(self, app: ASGIApp, limit: int, store: Store) -> None:
        self.app, self.limit, self.store = app, limit, store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(scope, send)
            return
        seen = 0
        too_big = False

        async def limited() -> Message:
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_big = True
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        reason = f"request body over {self.limit:,} bytes"
        client = scope.get("client")
        log_refusal(self.store, method=scope.get("method", ""), path=scope.get("path", ""),
                    status=413, reason=reason, client=client[0] if client else None)
        response = JSONResponse({"error": reason}, status_code=413)
        await response(scope, _no_receive, send)


class _TooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(store: Store | None = None, *, settings: Settings | None = None,
               rule_dirs: tuple[Path, ...] = ()) -> FastAPI:
    """The API over ``store`` (default: the configured database, migrated on start)."""
    store = store or Store()
    settings = settings or Settings.from_env()
    runner = PlanRunner(store, settings.plan_workers, rule_dirs)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        failed = fail_unfinished(store, "the server stopped before this plan finished")
        if failed:
            log.warning("%d unfinished plans from an earlier run marked failed", failed)
        yield
        runner.shutdown()

    app = FastAPI(title="Straits", version=__version__, lifespan=lifespan,
                  description="Where AI training and serving may run across borders, within "
                              "the rules, and the proof. Bodies and answers are the CLI's JSON "
                              "contracts. Every /v1 route needs 'Authorization: Bearer st_...'.")
    app.state.store = store
    app.state.settings = settings
    app.state.rules = ruleset(rule_dirs)
    app.state.rules_lock = threading.Lock()
    app.state.rule_dirs = rule_dirs
    app.state.rule_pool = []  # rule sets lent to export and impact requests (plan_routes.py)
    app.state.admission_plans = {}
    app.state.admission_contexts = {}
    app.state.runner = runner
    app.include_router(router)
    app.include_router(plan_router)
    app.include_router(skypilot_router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, Any]:
        """Liveness and the database in use (no token needed)."""
        return {"status": "ok", "version": __version__, "database": store.dialect}

    _errors(app)
    _openapi(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, store=store)
    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(bodies.error_json(exc), status_code=400)

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(NotFoundError)
    async def _missing(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"path": ".".join(str(p) for p in e.get("loc", ())[1:]) or None,
                     "where": (e.get("loc") or ["?"])[0], "error": e.get("msg", "invalid")}
                    for e in exc.errors()]
        first = problems[0] if problems else {"path": None, "error": "invalid request"}
        text = f"{first['path']}: {first['error']}" if first["path"] else str(first["error"])
        return JSONResponse({"error": text, "problems": problems}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        log.error("database error: %s", exc)
        return JSONResponse({"error": "the database is unavailable; try again"},
                            status_code=503)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.error("incident %s on %s %s", incident, request.method, request.url.path,
                  exc_info=exc)
        return JSONResponse({"error": "internal error", "incident": incident},
                            status_code=500)


def _openapi(app: FastAPI) -> None:
    def schema() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description,
                           routes=app.routes)
        spec.setdefault("components", {}).setdefault("schemas", {}).update(bodies.COMPONENTS)
        spec["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "st_<id>_<secret>"}}
        for path, ops in spec.get("paths", {}).items():
            if path.startswith("/v1/"):
                for op in ops.values():
                    op["security"] = [{"bearer": []}]
        app.openapi_schema = spec
        return spec

    app.openapi = schema  # type: ignore[method-assign]
