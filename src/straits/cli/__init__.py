"""The ``straits`` command line: a thin shell over the Python API (Typer + Rich)."""

from __future__ import annotations

import sys

import typer

from straits.cli import (
    catalog_cmd,
    check_cmd,
    demo_cmd,
    estimate_cmd,
    export_cmd,
    impact_cmd,
    ledger_cmd,
    market_cmd,
    plan_cmd,
    report_cmd,
    rules_cmd,
    scenario_cmd,
    serve_cmd,
    tokens_cmd,
    worker_cmd,
)
from straits.cli.common import err_console
from straits.errors import StraitsError

app = typer.Typer(
    name="straits",
    help="Decide where AI training and serving run across borders, within the rules, and "
         "prove it. Start with `straits demo`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)
app.command("chips")(catalog_cmd.chips)
app.command("check")(check_cmd.check)
app.command("estimate")(estimate_cmd.estimate)
app.command("plan")(plan_cmd.plan)
app.command("demo")(demo_cmd.demo)
app.command("export")(export_cmd.export)
app.command("impact")(impact_cmd.impact)
app.command("report")(report_cmd.report)
app.add_typer(rules_cmd.app, name="rules")
app.add_typer(scenario_cmd.app, name="scenario")
app.add_typer(ledger_cmd.app, name="ledger")
app.add_typer(tokens_cmd.app, name="tokens")
app.command("serve")(serve_cmd.serve)
app.add_typer(market_cmd.app, name="market")
app.command("worker")(worker_cmd.worker)


def main() -> None:
    try:
        app()
    except StraitsError as exc:  # anything raised outside a command's own handling
        err_console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        sys.exit(exc.exit_code)
