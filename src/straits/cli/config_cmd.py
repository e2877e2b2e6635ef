"""``straits config``: where the defaults come from (straits.toml, the XDG directories)."""

from __future__ import annotations

import os
from typing import Any

import typer

from straits.cli.common import (
    JsonOption,
    OutputOption,
    actor_name,
    console,
    emit,
    fail,
    output_format,
    state,
)
from straits.cli.config import (
    CONFIG_ENV,
    KEYS,
    default_config_path,
    default_database_path,
    default_database_url,
)
from straits.errors import StraitsError

app = typer.Typer(
    help="Show the configuration and where each value comes from.", no_args_is_help=True
)

#: setting -> the environment variable that overrides straits.toml
ENV = {
    "database": "STRAITS_DATABASE_URL",
    "actor": "STRAITS_ACTOR",
    "server": "STRAITS_SERVER",
    "token": "STRAITS_TOKEN",
}


@app.command("show")
def show(json_out: bool = JsonOption, output: str = OutputOption) -> None:
    """Each setting in effect and where it comes from (flag, environment, straits.toml,
    default); the database path in use. Tokens and the database's password are never
    printed."""
    try:
        fmt = output_format(output, json_out)
        cfg = state.config
    except StraitsError as exc:
        fail(exc)
        return
    settings: dict[str, dict[str, Any]] = {}
    for key in KEYS:
        value: Any
        file_value = getattr(cfg, key)
        env = ENV.get(key)
        if key == "server" and state.server:
            value, origin = state.server, _given(state.server_from)
        elif key == "token" and state.token:
            value, origin = state.token, _given(state.token_from)
        elif env and os.environ.get(env):
            value, origin = os.environ[env], f"environment ({env})"
        elif file_value:
            value, origin = file_value, str(cfg.path)
        elif key == "database":
            value, origin = default_database_url(), "default"
        elif key == "actor":
            value, origin = actor_name(None), "default"  # cli:USER, as recorded
        else:
            value, origin = None, "default"
        if key == "rules":
            value = [str(p) for p in file_value] if file_value else []
        if key == "token" and value:
            value = "(set)"
        if key == "server" and value:
            from straits.client_io import shown_url  # a password in its URL, as the database's

            value = shown_url(str(value))
        if key == "database" and value:
            from straits.store.db import safe_url  # its password: a secret, as a token is

            value = safe_url(str(value))
        settings[key] = {"value": value, "from": origin}
    doc = {
        "config_file": str(cfg.path or default_config_path()),
        "config_file_exists": cfg.path is not None,
        "default_database": str(default_database_path()),
        "settings": settings,
    }
    if fmt != "table":
        emit(doc, fmt)
        return
    from rich.table import Table

    exists = "" if cfg.path is not None else " (none yet)"
    t = Table(title=f"Configuration: {doc['config_file']}{exists}", title_justify="left")
    for col in ("setting", "value", "from"):
        t.add_column(col, overflow="fold")
    for key, s in settings.items():
        v = s["value"]
        t.add_row(key, ", ".join(v) if isinstance(v, list) else str(v or "-"), s["from"])
    console.print(t)


@app.command("path")
def path() -> None:
    """Print the config file's path (it may not exist yet; $STRAITS_CONFIG or --config name
    another)."""
    p = state.config_path or (os.environ.get(CONFIG_ENV) or default_config_path())
    console.print(str(p), soft_wrap=True)


def _given(where: str) -> str:
    """``--server`` as typed, or ``environment (STRAITS_SERVER)`` as the other variables."""
    return where if where.startswith("--") else f"environment ({where})"
