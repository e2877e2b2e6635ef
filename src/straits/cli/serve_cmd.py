"""``straits serve``: the REST API (needs the ``server`` extra)."""

from __future__ import annotations

from pathlib import Path

import typer

from straits.cli.common import DbOption, RulesOption, database_url, err_console, fail, rule_dirs
from straits.errors import InputError, StraitsError


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    db: str = DbOption,
    rules: list[Path] = RulesOption,
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
) -> None:
    """Serve the REST API: /v1/check, /v1/estimate, /v1/plans (with export), /v1/impact,
    /v1/rules, /v1/chips, /v1/ledger, /healthz; the OpenAPI spec at /openapi.json. Every /v1
    route needs a token from `straits tokens create`. Migrations run on start."""
    try:
        import uvicorn

        from straits.server import create_app
        from straits.store import Store
    except ImportError as exc:
        fail(InputError(f"the server is not installed ({exc.name} is missing)",
                        expected="pip install 'straits[server]'"))
        return
    try:
        app = create_app(Store(database_url(db)), rule_dirs=rule_dirs(rules))
    except StraitsError as exc:
        fail(exc)
        return
    err_console.print(f"Straits API on http://{host}:{port} (database: "
                      f"{app.state.store!r}); OpenAPI at /openapi.json", soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
