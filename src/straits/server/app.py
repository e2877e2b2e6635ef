"""The REST API (FastAPI): a thin shell over the Python API, the store and the ledger.

Every /v1 route needs a bearer token (``straits tokens create``); ``/healthz``, ``/readyz`` and
``/openapi.json`` do not. Errors are RFC 9457 problem details (``straits.server.problems``) with
no stack trace: 400 for bad input (naming the field path, as the CLI does), 401/403 for refused
tokens (each one logged), 404, 408 for a body that arrives too slowly, 409, 413 for bodies over
the size limit, 503 when the database is unavailable, 500 with an incident id for anything
else. Answers are strict JSON from the CLI's encoder. Database work runs in the thread pool,
never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from straits import __version__
from straits.errors import (
    AuthError,
    BusyError,
    InputError,
    InputTooLarge,
    KeyReusedError,
    LedgerError,
    NotFoundError,
    NotReadyError,
    StoreError,
    validation_expected,
)
from straits.rules import ruleset
from straits.server.head import (
    DECLARED,
    ASGIApp,
    HeadAsGet,
    Message,
    Receive,
    Scope,
    Send,
    error_headers,
    slash_redirect,
)
from straits.server.jobs import Worker
from straits.server.ledger_routes import router as ledger_router
from straits.server.openapi_doc import document, operation_id
from straits.server.plan_routes import router as plan_router
from straits.server.problems import (
    StrictJSONResponse,
    as_query_error,
    problem,
    problem_items,
    refusal,
)
from straits.server.report_routes import router as report_router
from straits.server.routes import router
from straits.server.schemas import Health, Ready
from straits.server.settings import Settings
from straits.server.skypilot_routes import router as skypilot_router
from straits.server.target import RequestTarget
from straits.store.audit import Budget, log_refusal, loggable
from straits.store.db import Store
from straits.store.keys import configured as ledger_keys
from straits.web import mount_console
from straits.web.plan_cache import PlanPages

log = logging.getLogger("straits.server")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, by Content-Length or as they stream, and
    bodies that take longer than ``timeout`` seconds to arrive with 408 (a slow client holds
    no worker forever)."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        store: Store,
        timeout: float = 30.0,
        budget: Budget | None = None,
    ) -> None:
        self.app, self.limit, self.store, self.timeout = app, limit, store, timeout
        self.budget = budget

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and not length.isdigit():
            await refusal(
                scope,
                400,
                "the Content-Length header is not a number",
                path="Content-Length",
            )(scope, _no_receive, send)
            return
        coding = b",".join(v for k, v in scope.get("headers") or [] if k == b"content-encoding")
        codings = {c.strip().lower() for c in coding.split(b",")} - {b"", b"identity"}
        if codings and scope.get("method") not in ("GET", "HEAD"):
            # the bodies were read as they came: a gzip body was 'not UTF-8 text (byte 1)', a
            # plain one labelled gzip or br was taken (RFC 9110 8.4: 415, Accept-Encoding)
            await refusal(
                scope,
                415,
                f"a request body in the content coding {coding.decode('latin-1')[:100]!r}; "
                "this server reads bodies as they are sent",
                path="Content-Encoding",
                expected="no Content-Encoding (or identity)",
                headers={"Accept-Encoding": "identity"},
            )(scope, _no_receive, send)
            return
        if length is not None and int(length) > self.limit:
            await self._refuse(scope, send)
            return
        seen = 0
        complete = False
        # the seconds the client may keep the server waiting for its body, in all: only the
        # waits count, not the server's own work before it reads (a clock started at the
        # request's arrival ran out while authentication waited for a loaded database, and a
        # small body that had arrived long before was refused as too slow, 408)
        left = self.timeout

        async def limited() -> Message:
            nonlocal seen, complete, left
            if complete:  # after the body: waiting for a disconnect is not the client's delay
                return await receive()
            began = time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, left))
            except TimeoutError:
                raise _TooSlow() from None
            finally:
                left -= time.monotonic() - began
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                # a chunk's size line says how much more is coming (server/protocol.py): one
                # declared over the cap was read for 30 s and answered 408 (srv32)
                if seen > self.limit or (not complete and seen + _declared(scope) > self.limit):
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(scope, send)
        except _TooSlow:
            await refusal(
                scope,
                408,
                f"the request body did not arrive within {self.timeout:g} s",
                headers={"Connection": "close"},
            )(scope, _no_receive, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        reason = f"request body over {self.limit:,} bytes"
        client = scope.get("client")
        await run_in_threadpool(
            log_refusal,
            self.store,
            method=scope.get("method", ""),
            path=scope.get("path", ""),
            status=413,
            reason=reason,
            client=client[0] if client else None,
            budget=self.budget,
        )
        await refusal(
            scope,
            413,
            reason,
            expected=f"a body of at most {self.limit:,} bytes",
            headers={"Connection": "close"},
        )(scope, _no_receive, send)


def _declared(scope: Scope) -> int:
    """The bytes the chunk being read still declares, as the server's protocol says (0 when
    it says nothing: another server, or no chunk)."""
    declared = (scope.get("extensions") or {}).get(DECLARED) or {}
    pending = declared.get("pending", 0)
    return pending if isinstance(pending, int) else 0


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def create_app(
    store: Store | None = None,
    *,
    settings: Settings | None = None,
    rule_dirs: tuple[Path, ...] = (),
) -> FastAPI:
    """The API over ``store`` (default: the configured database, migrated on start)."""
    store = store or Store()
    settings = settings or Settings.from_env()
    rules = ruleset(rule_dirs)  # read once: the API's answers and the plan jobs' alike
    worker = Worker(
        store,
        slots=settings.plan_workers,
        rule_dirs=rule_dirs,
        policy=settings.queue_policy(),
        rules=rules,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(worker.start)  # resumes or fails an earlier run's jobs first
        yield
        await run_in_threadpool(worker.stop)

    app = FastAPI(
        title="Straits",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # head.slash_redirect: relative, not from the Host header
        default_response_class=StrictJSONResponse,
        generate_unique_id_function=operation_id,
        description="Where AI training and serving may run across borders, within "
        "the rules, and the proof. Bodies and answers are the CLI's JSON "
        "contracts. Every /v1 route needs 'Authorization: Bearer st_...'. "
        "Errors are RFC 9457 problem details (application/problem+json).",
    )
    app.state.store = store
    app.state.settings = settings
    app.state.audit_budget = Budget(settings.audit_per_minute)  # refusals kept per client
    app.state.rules = rules
    app.state.rules_lock = threading.Lock()
    app.state.rule_dirs = rule_dirs
    app.state.rule_pool = []  # rule sets lent to export and impact requests (plan_routes.py)
    app.state.admission_plans = {}
    app.state.admission_contexts = {}
    app.state.worker = worker
    app.state.ledger_keys = ledger_keys()  # STRAITS_LEDGER_KEY / STRAITS_LEDGER_PUBKEY
    # the console's plan pages of finished plans, per process (web/plan_cache.py)
    app.state.plan_pages = PlanPages(settings.plan_page_cache, settings.plan_page_cache_bytes)
    app.include_router(router)
    app.include_router(ledger_router)
    app.include_router(plan_router)
    app.include_router(skypilot_router)
    app.include_router(report_router)

    @app.get("/healthz", tags=["health"], operation_id="health", responses={200: {"model": Health}})
    async def healthz() -> dict[str, Any]:
        """Liveness and the database in use (no token needed; touches no database, so it
        answers while the database is busy)."""
        return {"status": "ok", "version": __version__, "database": store.dialect}

    pinging: list[asyncio.Future[None]] = []
    """the readiness query in flight, if any (one per process: concurrent probes share it)"""

    @app.get("/readyz", tags=["health"], operation_id="ready", responses={200: {"model": Ready}})
    async def readyz() -> dict[str, Any]:
        """Readiness: the database answers a trivial query (no token needed). 503
        problem+json with ``Retry-After`` when it does not, so a load balancer or Kubernetes
        sends no traffic to a server whose database is gone; ``/healthz`` stays 200 then (the
        process lives: no restart needed). Probes that arrive while a readiness query is in
        flight share its answer: 40 probes at once against a frozen database held all 40 of
        the API's threads and queued for pool connections for 42 s each."""
        running = pinging[0] if pinging else None
        if (
            running is None
            or running.done()
            or running.get_loop() is not asyncio.get_running_loop()
        ):
            running = asyncio.ensure_future(run_in_threadpool(store.ping))
            pinging[:] = [running]
        await asyncio.shield(running)
        return {"status": "ready", "version": __version__, "database": store.dialect}

    _errors(app)
    mount_console(app)  # /ui, /static, /docs and /redoc (after the API's error handlers)
    document(app)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        store=store,
        timeout=settings.body_timeout_s,
        budget=app.state.audit_budget,
    )
    # HEAD, as every general-purpose server must answer it (RFC 9110 9.1), for probes and
    # monitors that check with HEAD (they got 405 and took the server, or the console, for
    # down): GET's answer without its body, on every route that answers GET
    app.add_middleware(HeadAsGet)
    # absolute-form targets read as their path, OPTIONS *, a Host that is no host: before all
    app.add_middleware(RequestTarget)
    return app


def _errors(app: FastAPI) -> None:
    def input_problem(status: int, request: Request, exc: InputError, **extra: Any) -> JSONResponse:
        """An input error as a problem: its detail, field path, what was expected."""
        return problem(
            status,
            exc.detail,
            instance=request.url.path,
            path=exc.path,
            expected=exc.expected,
            error=str(exc),
            **extra,
        )

    @app.exception_handler(InputTooLarge)
    async def _too_large(request: Request, exc: InputTooLarge) -> JSONResponse:
        return input_problem(413, request, exc)

    @app.exception_handler(NotReadyError)
    async def _not_ready(request: Request, exc: NotReadyError) -> JSONResponse:
        # as GET /v1/plans/ID/plan answers a plan not done: 409 with its status, not a 400
        return input_problem(409, request, exc, plan_status=exc.status)

    @app.exception_handler(KeyReusedError)
    async def _key_reused(request: Request, exc: KeyReusedError) -> JSONResponse:
        return input_problem(409, request, exc)

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        exc = as_query_error(exc)
        return input_problem(
            400,
            request,
            exc,
            line=exc.line,
            errors=problem_items(exc),
            suggestions=exc.suggestions,
            total=exc.total,  # past the 100 listed: `check --server` counts them (rev65c)
        )

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem(exc.status, str(exc), instance=request.url.path, headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # the client closed the connection before its body arrived: nobody reads this answer,
        # and it is no incident (it was a 500 with two stack traces in the log per client)
        log.info(
            "client gone before its body arrived: %s %s",
            loggable(request.method),
            loggable(request.url.path),
        )
        return problem(
            400, "the connection closed before the body arrived", instance=request.url.path
        )

    @app.exception_handler(NotFoundError)
    async def _missing(request: Request, exc: NotFoundError) -> JSONResponse:
        return problem(404, str(exc), instance=request.url.path)

    @app.exception_handler(LedgerError)
    async def _unproven(request: Request, exc: LedgerError) -> JSONResponse:
        log.error("ledger integrity: %s", exc)  # nothing unproven is served
        from straits.server.ledger_routes import unproven_view

        who = getattr(request.state, "who", None)  # set by authentication (API or console)
        detail, seq = await run_in_threadpool(unproven_view, request.app.state.store, who, exc)
        return problem(409, detail, instance=request.url.path, ledger_seq=seq)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        items = [
            {
                "path": ".".join(str(p) for p in e.get("loc", ())[1:]) or None,
                "detail": str(e.get("msg", "invalid")),
            }
            for e in exc.errors()
        ]
        first = items[0] if items else {"path": None, "detail": "invalid request"}
        detail, path = str(first["detail"]), first["path"]
        return problem(
            400,
            detail,
            instance=request.url.path,
            path=path,
            expected=validation_expected(exc.errors()[0]) if items else None,
            errors=items,
            error=f"{path}: {detail}" if path else detail,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        redirect = slash_redirect(request, exc)
        if redirect is not None:
            return redirect
        return problem(
            exc.status_code,
            str(exc.detail),
            instance=request.url.path,
            headers=error_headers(request, exc),
        )

    @app.exception_handler(BusyError)
    async def _busy(request: Request, exc: BusyError) -> JSONResponse:
        return problem(
            503,
            str(exc),
            instance=request.url.path,
            headers={"Retry-After": str(exc.retry_after)},
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(StoreError)
    async def _store(request: Request, exc: StoreError | OperationalError) -> JSONResponse:
        # OperationalError: a read whose database went away after the store opened (a
        # PostgreSQL server stopped, a connection cut): unavailable, as a failed write is
        log.error(
            "database error on %s %s: %s",
            loggable(request.method),
            loggable(request.url.path),
            exc,
        )
        return problem(
            503,
            "the database is unavailable; try again",
            instance=request.url.path,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        log.error(
            "incident %s on %s %s",
            incident,
            loggable(request.method),
            loggable(request.url.path),
            exc_info=exc,
        )
        return problem(
            500,
            f"internal error (incident {incident})",
            instance=request.url.path,
            incident=incident,
        )
