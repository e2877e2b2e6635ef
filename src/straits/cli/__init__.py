"""The ``straits`` command line: a thin shell over the Python API (Typer + Rich).

Every command module imports only Typer and the standard library at its top, so `straits
--help` and `straits check` start fast (`benchmarks/startup.py`); what a command needs (the
rules, the planner, the database) is imported when it runs.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any


def _interrupted_at_start(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(130)  # quietly, as Typer answers a Ctrl-C once a command runs


# Ctrl-C while the CLI imports Typer, Rich and its commands (a second on a loaded machine) was a
# KeyboardInterrupt traceback: until the imports are done it exits 130. Only where SIGINT has
# Python's own handler (not where it is ignored, as in a background job, or in another thread).
_SIGINT_BEFORE = (
    signal.getsignal(signal.SIGINT)
    if threading.current_thread() is threading.main_thread()
    else None
)
if _SIGINT_BEFORE is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_at_start)

import click  # noqa: E402
import typer  # noqa: E402
from typer.core import TyperGroup  # noqa: E402

from straits.cli import (  # noqa: E402
    catalog_cmd,
    check_cmd,
    config_cmd,
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
from straits.cli.common import CONTEXT, QuietOption, print_error, state  # noqa: E402
from straits.controls import shorten_words  # noqa: E402
from straits.errors import StraitsError  # noqa: E402

if _SIGINT_BEFORE is signal.default_int_handler:
    signal.signal(signal.SIGINT, signal.default_int_handler)


class _Straits(TyperGroup):
    """The root command: a usage error's message (Click's own, or a parameter type's that
    quotes the value) has each over-long word shortened, as every ``error:`` line has
    (``controls.shorten_words``): a 100,000-character value was echoed whole."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _shortened_usage():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _shortened_usage():
            return super().invoke(ctx)


@contextmanager
def _shortened_usage() -> Iterator[None]:
    try:
        yield
    except click.ClickException as exc:
        exc.message = shorten_words(exc.message)
        raise


app = typer.Typer(
    name="straits",
    help="Decide where AI training and serving run across borders, within the rules, and "
    "prove it. Start with `straits demo`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings=CONTEXT,
    cls=_Straits,
)


def _version(value: bool) -> None:
    if value:
        from straits import __version__

        typer.echo(f"straits {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    config: Path = typer.Option(
        None,
        "--config",
        envvar="STRAITS_CONFIG",
        metavar="FILE",
        help="The config file (default: $XDG_CONFIG_HOME/straits/straits.toml).",
    ),
    quiet: bool = QuietOption,
    server: str = typer.Option(
        None,
        "--server",
        envvar="STRAITS_SERVER",
        metavar="URL",
        help="Run against a Straits server (`straits serve`) instead of "
        "this machine (default: `server` in straits.toml). Each request has a deadline, "
        "STRAITS_CLIENT_TIMEOUT_S (120 s); `plan` waits for its plan until it ends, or "
        "STRAITS_CLIENT_WAIT_S seconds where set.",
    ),
    token: str = typer.Option(
        None,
        "--token",
        envvar="STRAITS_TOKEN",
        help="The API token for --server (from `straits tokens create`).",
    ),
) -> None:
    from click.core import ParameterSource

    state.config_path = config
    state.quiet = quiet
    state.server = server
    state.token = token
    # where each came from: an error in a URL from the environment names the variable, not a
    # flag never typed, and `config show` says which
    env = ParameterSource.ENVIRONMENT
    state.server_from = (
        "STRAITS_SERVER" if ctx.get_parameter_source("server") is env else "--server"
    )
    state.token_from = "STRAITS_TOKEN" if ctx.get_parameter_source("token") is env else "--token"


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
app.add_typer(config_cmd.app, name="config")
app.command("serve")(serve_cmd.serve)
app.add_typer(market_cmd.app, name="market")
app.command("worker")(worker_cmd.worker)


def main() -> None:
    """The ``straits`` command. Ctrl-C before a command runs (the streams and arguments
    checked, Typer reading every command's signature: half a second on a loaded machine) is
    exit 130 with nothing said, as Typer answers it once the command runs; it was a
    KeyboardInterrupt traceback and death by SIGINT."""
    try:
        _main()
    except KeyboardInterrupt:
        raise SystemExit(130) from None


def _main() -> None:
    _prepare_streams()
    try:
        _refuse_undecodable(sys.argv[1:])
        app(prog_name="straits")  # also under `python -m straits`
    except StraitsError as exc:  # anything raised outside a command's own handling
        print_error(exc)
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # a write no handler of a closed pipe saw (click's echo)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # so the final flush is quiet
        sys.exit(1)
    except Exception as exc:
        lost = _database_lost(exc) or _garbled_answer(exc)
        if lost is None:
            raise
        print_error(lost)
        sys.exit(lost.exit_code)


#: the widest a terminal is taken to be (COLUMNS, TERMINAL_WIDTH): tables and help are laid out
#: within it, so a hostile width cannot make output of any size
MAX_COLUMNS = 1000


def _prepare_streams() -> None:
    """A process started with standard input, output or error closed (``>&-``): /dev/null
    holds the descriptor, so no file this command opens (an output's temporary file, a key)
    becomes "standard output" and gets what is printed; a closed standard output makes each
    write an error (``output.ClosedStdout``: exit 1, where a JSON document was an
    AttributeError traceback and a table vanished with exit 0). A terminal width that is no
    positive number is ignored, one over MAX_COLUMNS taken as MAX_COLUMNS."""
    import os

    for var in ("COLUMNS", "TERMINAL_WIDTH"):  # read by Rich and Typer's help
        width = os.environ.get(var, "").strip()
        digits = width.isascii() and width.isdigit()
        n = (int(width) if len(width) <= 7 else MAX_COLUMNS + 1) if digits else 0
        if n <= 0:
            os.environ.pop(var, None)  # TERMINAL_WIDTH=abc: a ValueError traceback on --help
        elif n > MAX_COLUMNS:
            os.environ[var] = str(MAX_COLUMNS)  # 10^8: --help padded lines to gigabytes
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            held = os.open(os.devnull, os.O_RDWR)
            if held != fd:
                os.dup2(held, fd)
                os.close(held)
    from typing import TextIO, cast

    from straits.cli.output import ClosedStdout

    if sys.stdout is None:
        sys.stdout = cast(TextIO, ClosedStdout())
    # a locale or PYTHONIOENCODING that cannot encode every character (ascii, latin-1): a
    # table's '…' or '•' was a UnicodeEncodeError traceback after the work was done (plan,
    # check, demo, rules show, --help). Text shows such characters as escapes; documents
    # stay exact (JSON escapes them, YAML is written with escapes: output.emit).
    from straits.cli.output import stdout_is_utf8

    if not stdout_is_utf8() and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    if not isinstance(sys.stdout, ClosedStdout):
        from straits.cli.output import GuardedStdout

        sys.stdout = cast(TextIO, GuardedStdout(sys.stdout))
    if sys.stderr is not None:
        from straits.cli.output import QuietStderr

        sys.stderr = cast(TextIO, QuietStderr(sys.stderr))


def _refuse_undecodable(args: list[str]) -> None:
    """Bytes that are no UTF-8 in an argument (a shell's ``$'\\xff'``, a Latin-1 file name)
    reach Python as lone surrogates, which no file, database, YAML emitter or Ray can write:
    each such argument was a UnicodeEncodeError traceback wherever its text went. Refused
    here, before any command runs."""
    from straits.errors import InputError

    for i, arg in enumerate(args, 1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError as exc:
            before = args[i - 2] if i >= 2 else ""
            option = (
                arg.split("=", 1)[0]
                if arg.startswith("--") and "=" in arg
                else before
                if before.startswith("-") and before != "-"
                else None
            )
            raise InputError(
                f"argument {i} ({arg[:80]!r}) is not UTF-8 text (byte {exc.start})",
                path=option,
                expected="arguments in UTF-8",
            ) from None


def _garbled_answer(exc: Exception) -> StraitsError | None:
    """An answer from ``--server`` that the client took (JSON of the endpoint's type) but
    whose fields are not what a Straits server sends (a missing key, a number where a list
    should be): the server's fault, exit 1 naming it, not a traceback. The error's type and
    where it was met stay in the line, so a bug of ours is still found."""
    if state.asked_server is None or not isinstance(
        exc, KeyError | TypeError | IndexError | AttributeError | ValueError
    ):
        return None
    import traceback

    from straits.client_io import one_line
    from straits.errors import RemoteError

    last = traceback.extract_tb(exc.__traceback__)[-1:]
    at = f" at {Path(last[0].filename).name}:{last[0].lineno}" if last else ""
    return RemoteError(
        f"{state.asked_server}: an answer this straits cannot read "
        f"({type(exc).__name__}: {one_line(exc, 80)}{at}; expected a Straits server of "
        "this version)"
    )


def _database_lost(exc: Exception) -> StraitsError | None:
    """A read whose database went away after the store opened (a PostgreSQL server stopped
    or a connection cut mid-command): the store's error, exit 1, not a traceback. Writes
    already say so (``Store.write``); sqlalchemy is looked up, not imported, so a command
    that never touched a database pays nothing."""
    errors = sys.modules.get("sqlalchemy.exc")
    if errors is None or not isinstance(exc, errors.OperationalError):
        return None
    from straits.errors import StoreError

    reason = str(exc.orig or exc).strip().splitlines()[0]
    return StoreError(f"the database became unavailable: {reason}")
