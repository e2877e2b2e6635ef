"""``straits serve``: the REST API (needs the ``server`` extra)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from straits.cli.common import (
    DbOption,
    RulesOption,
    err_console,
    fail,
    finite_float,
    open_store,
    rule_dirs,
    whole,
)
from straits.errors import InputError, StraitsError

#: uvicorn's log levels (``uvicorn.config.LOG_LEVELS``), any case
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", click_type=whole(1, 65535), help="Port to listen on."),
    db: str = DbOption,
    rules: list[Path] = RulesOption,
    plan_workers: int = typer.Option(
        None,
        "--plan-workers",
        click_type=whole(0, 64),
        help="Plans solved at once in this process (default: "
        "STRAITS_PLAN_WORKERS or 1); 0: leave planning to "
        "`straits worker` processes.",
    ),
    header_timeout: float = typer.Option(
        10.0,
        "--header-timeout",
        click_type=finite_float(0.5, 600.0),
        help="Seconds a client has to send its request headers before the connection is closed.",
    ),
    max_connections: int = typer.Option(
        512,
        "--max-connections",
        click_type=whole(1, 100_000),
        help="Connections served at once; more are answered 503.",
    ),
    log_level: str = typer.Option(
        "info", "--log-level", help="uvicorn's log level: " + ", ".join(LOG_LEVELS) + "."
    ),
) -> None:
    """Serve the REST API: /v1/check, /v1/estimate, /v1/plans (with export and report),
    /v1/impact, /v1/rules, /v1/chips, /v1/ledger, /healthz; the web console at /ui and the
    OpenAPI spec at /openapi.json (/docs, /redoc). Every /v1 route needs a token from `straits
    tokens create`. Migrations run on start; plans left queued or running by an earlier run
    are resumed (or failed with their reason)."""
    level = log_level.lower()
    if level not in LOG_LEVELS:  # uvicorn raised KeyError, a traceback after the migrations ran
        fail(
            InputError(
                f"unknown log level {log_level!r}",
                path="--log-level",
                expected=", ".join(LOG_LEVELS),
            )
        )
        return
    try:
        import uvicorn

        from straits.server import create_app
        from straits.server.protocol import protocol
        from straits.server.settings import Settings
        from straits.server.stopping import Server
    except ImportError as exc:
        fail(
            InputError(
                f"the server is not installed ({exc.name} is missing)",
                expected="pip install 'straits[server]'",
            )
        )
        return
    try:
        _refuse_unusable_address(host, port)
        settings = Settings.from_env()
        if plan_workers is not None:
            settings = dataclasses.replace(settings, plan_workers=plan_workers)
        dirs = rule_dirs(rules)
        from straits.rules import ruleset

        ruleset(dirs)  # bad --rules fail before the database is made and migrated
        app = create_app(open_store(db), settings=settings, rule_dirs=dirs)
    except StraitsError as exc:
        fail(exc)
        return
    err_console.print(
        f"Straits API on http://{host}:{port} (database: "
        f"{app.state.store!r}); OpenAPI at /openapi.json",
        soft_wrap=True,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=level,
        http=protocol(header_timeout, settings.write_timeout_s, settings.write_min_rate),
        timeout_keep_alive=5,
        limit_concurrency=max_connections,
        timeout_graceful_shutdown=10,
    )
    from straits.server import access_log

    access_log.install()  # `?token=` (the SkyPilot hook's) never reaches the access log
    Server(config).run()  # SIGHUP too gives the running jobs back (server/stopping.py)


def _refuse_unusable_address(host: str, port: int) -> None:
    """Fail before the database is migrated and its jobs resumed when the address cannot be
    listened on: a port in use (exit 1) or a host that is no address here (exit 2). uvicorn
    found out only after the app had started (the banner printed, plan workers started and
    stopped again), then said so among its log lines."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn picks it
    try:
        infos = socket.getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise InputError(
            f"cannot listen on {host!r}: {reason}", path="--host", expected="an address here"
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise StraitsError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server there? "
                "--port picks another)"
            ) from None
