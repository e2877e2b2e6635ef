"""Shared CLI plumbing: consoles, reading input, JSON output, formatting helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from straits.errors import RequestError, StraitsError
from straits.loading import parse_document, read_stdin, read_text

#: width of tables and text when the output is not a terminal (a file, a pipe, CI logs) and
#: COLUMNS is unset: wide enough that the rule and plan tables keep whole ids and citations
PIPE_WIDTH = 140


def _console(stderr: bool = False) -> Console:
    c = Console(stderr=stderr, highlight=False)
    if not c.is_terminal and "COLUMNS" not in os.environ:
        c = Console(stderr=stderr, highlight=False, width=PIPE_WIDTH)
    return c


console = _console()
err_console = _console(stderr=True)

RulesOption = typer.Option(
    None, "--rules", help="A directory of extra rule packs (repeatable); a pack with the name of "
    "a shipped one replaces it.", exists=False)
JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")
DbOption = typer.Option(None, "--db", envvar="STRAITS_DATABASE_URL", show_envvar=True,
                        help="Database URL (default: sqlite:///straits.db in the current "
                             "directory; PostgreSQL: postgresql+psycopg://USER@HOST/DB).")
ActorOption = typer.Option(None, "--actor", envvar="STRAITS_ACTOR",
                           help="Who records the entry (default: cli:USER, your user name).")


def actor_name(actor: str | None) -> str:
    if actor:
        return actor
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def read_input(source: Path | None, *, what: str) -> tuple[Any, str]:
    """Parse JSON/YAML from a file, or from stdin when ``source`` is None or '-'."""
    if source is None or str(source) == "-":
        if sys.stdin.isatty():
            raise RequestError(f"expects {what} as JSON on stdin or in a file argument",
                               source="<stdin>")
        text, label = read_stdin(error=RequestError), "<stdin>"
    else:
        text, label = read_text(source, error=RequestError), str(source)
    if not text.strip():
        raise RequestError("input is empty", source=label, expected=what)
    return parse_document(text, source=label, error=RequestError), label


def print_json(data: Any) -> None:
    """Strict JSON (no NaN or Infinity) on stdout, exactly as the API answers it."""
    from straits.jsonout import dumps

    sys.stdout.write(dumps(data) + "\n")


def money(usd: float | None) -> str:
    if usd is None:
        return "-"
    if abs(usd) >= 1e6:
        return f"${usd / 1e6:,.2f}M"
    if abs(usd) >= 1e3:
        return f"${usd / 1e3:,.1f}K"
    return f"${usd:,.0f}"


def duration(hours: float) -> str:
    if hours >= 48:
        return f"{hours / 24:,.1f} d"
    if hours >= 1:
        return f"{hours:,.1f} h"
    return f"{hours * 60:,.0f} min"


def decision_style(decision: str) -> str:
    return {"allow": "bold green", "conditional": "bold yellow", "deny": "bold red"}.get(
        decision, "bold")


def fail(exc: StraitsError) -> None:
    err_console.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
    raise typer.Exit(exc.exit_code)
