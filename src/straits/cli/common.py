"""Shared CLI plumbing: consoles, the global state (config, quiet, server), options, defaults
from the config, reading input, formatting helpers (output formats and writes: output.py).

Nothing heavy is imported at module level: `straits --help` and `straits check` import this
module, so the database, the planner and the rules are imported by the functions that use them.
"""

from __future__ import annotations

import os
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import typer

from straits.cli.config import Config, default_database_path, default_database_url, load_config
from straits.cli.figures import amount as amount
from straits.cli.figures import decision_style as decision_style
from straits.cli.figures import duration as duration
from straits.cli.figures import money as money
from straits.cli.numbers import finite_float as finite_float
from straits.cli.numbers import whole as whole

# the commands (and other modules) import these from here: explicit re-exports
from straits.cli.output import FORMATS as FORMATS
from straits.cli.output import Format as Format
from straits.cli.output import emit as emit
from straits.cli.output import output_format as output_format
from straits.cli.output import print_json as print_json
from straits.cli.output import to_yaml as to_yaml
from straits.cli.output import write_file as write_file
from straits.cli.output import write_output as write_output
from straits.controls import shorten_words, shown
from straits.errors import InputError, RequestError, StoreError, StraitsError

if TYPE_CHECKING:
    from rich.console import Console

    from straits.store import Store

#: width of tables and text when the output is not a terminal (a file, a pipe, CI logs) and
#: COLUMNS is unset: wide enough that the rule and plan tables keep whole ids and citations
PIPE_WIDTH = 140


def _console(stderr: bool = False) -> Console:
    from rich.console import Console
    from rich.errors import MarkupError

    class SafeConsole(Console):
        """A console whose messages never fail on a name: a path, a database URL or a tenant
        holding ``[/]`` made Rich raise MarkupError (a traceback, after the work was done).
        Such a message is printed as plain text; call sites escape what they know is a name."""

        def render_str(self, text: str, **kwargs: Any) -> Any:
            text = shown(text)  # an ESC sequence or a bidi override in a name, made visible
            try:
                return super().render_str(text, **kwargs)
            except MarkupError:
                return super().render_str(text, **{**kwargs, "markup": False})

    c = SafeConsole(stderr=stderr, highlight=False)
    if not c.is_terminal and "COLUMNS" not in os.environ:
        c = SafeConsole(stderr=stderr, highlight=False, width=PIPE_WIDTH)
    return c


def esc(value: object) -> str:
    """``value`` as text inside a Rich markup message (a path, a URL, a name)."""
    from rich.markup import escape

    return escape(str(value))


def visible(value: object) -> str:
    """``value`` (a path read from the user) inside a Rich markup message, its markup and
    every character that is not printable (an escape sequence, a bidi control) shown as
    Python escapes: a file named ``[bold red]m.yaml`` was shown as ``m.yaml``."""
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(value))
    return esc(text)


class _LazyConsole:
    """A Rich console made on first use (importing Rich costs time a `--json` run never
    needs)."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            self._console = _console(self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)

    # special methods are looked up on the type, not through __getattr__: Rich's Live (a
    # progress bar) enters its console as a context manager
    def __enter__(self) -> Console:
        return self.get().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.get().__exit__(*exc)


console: Console = _LazyConsole(stderr=False)  # type: ignore[assignment]
err_console: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]


def print_whole(renderable: Any) -> None:
    """Print a table on stdout at its natural width even past the terminal's, as `kubectl
    get` does: no cell is cut to fit; a narrow terminal wraps the long lines."""
    from rich.measure import Measurement

    c = console.get() if isinstance(console, _LazyConsole) else console
    wide = Measurement.get(c, c.options.update_width(10_000), renderable).maximum
    old = c.width
    c.width = max(old, wide)
    try:
        c.print(renderable)
    finally:
        c.width = old


# --- global state: set by the root callback (straits [--config F] [-q] [--server URL] ...) ------
@dataclass
class CliState:
    quiet: bool = False
    config_path: Path | None = None
    server: str | None = None
    server_from: str = "--server"
    """where ``server`` was given: ``--server`` or ``STRAITS_SERVER`` (named in its errors)"""
    token: str | None = None
    token_from: str = "--token"
    _config: Config | None = None
    asked_server: str | None = None
    """the server a command has made a client for (``remote.client``): an answer of the
    wrong shape met while printing is then the server's fault, not a bug to show as one"""

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
            for w in self._config.warnings:
                err_console.print(f"[yellow]warning:[/yellow] {w}", soft_wrap=True)
        return self._config

    @property
    def server_url(self) -> str | None:
        return self.server or self.config.server

    @property
    def server_token(self) -> str | None:
        return self.token or self.config.token


state = CliState()


def set_quiet(quiet: bool) -> None:
    """A command's own ``-q`` adds to the global one."""
    state.quiet = state.quiet or quiet


def note(message: str) -> None:
    """A line for the person at the terminal, on stderr (never mixed into the output); none
    with --quiet."""
    if not state.quiet:
        err_console.print(message, soft_wrap=True, highlight=False)


def working(message: str) -> AbstractContextManager[Any]:
    """A spinner with ``message`` on stderr while a slow step runs, where stderr is a terminal
    and not --quiet (nothing otherwise; stdout is never touched); gone when the step ends."""
    if state.quiet or not sys.stderr.isatty():
        return nullcontext()
    return err_console.status(message)


#: every command and group: `-h` as well as `--help`
CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


# --- options shared by commands ------------------------------------------------------------------
RulesOption = typer.Option(
    None,
    "--rules",
    help="A directory of extra rule packs (repeatable); a pack with the name of "
    "a shipped one replaces it. Default: `rules` in straits.toml.",
    exists=False,
)
# not "same as -o json": several commands with --json take a file or directory as -o
JsonOption = typer.Option(False, "--json", help="Print JSON instead of tables.")
OutputOption = typer.Option(
    None,
    "-o",
    "--output",
    metavar="FORMAT",
    help="Output format: table (default), json (as --json) or yaml.",
)
QuietOption = typer.Option(
    False,
    "-q",
    "--quiet",
    help="Only the result: no progress, no notes on stderr; tables shrink to their summary.",
)
DbOption = typer.Option(
    None,
    "--db",
    envvar="STRAITS_DATABASE_URL",
    show_envvar=True,
    help="Database URL (default: `database` in straits.toml, else "
    "sqlite:///$XDG_DATA_HOME/straits/straits.db, shown by `straits "
    "config show`; PostgreSQL: postgresql+psycopg://USER@HOST/DB).",
)
ActorOption = typer.Option(
    None,
    "--actor",
    envvar="STRAITS_ACTOR",
    help="Who records the entry (default: `actor` in straits.toml, else cli:USER, your user name).",
)


# --- defaults from the config ---------------------------------------------------------------------
def database_url(db: str | None) -> str:
    """--db / $STRAITS_DATABASE_URL, else `database` in straits.toml, else the default file in
    the XDG data directory (created, and named on stderr the first time)."""
    if db:
        return db
    if state.config.database:
        return state.config.database
    path = default_database_path()
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # XDG_DATA_HOME a file or a device: a traceback before
            raise StoreError(
                f"cannot create the database's directory {path.parent}: "
                f"{exc.strerror or exc} (set XDG_DATA_HOME to a writable directory, "
                "`database` in straits.toml, or --db)"
            ) from None
        note(
            f"[dim]creating the database {path} (set `database` in straits.toml or --db "
            "to use another)[/dim]"
        )
    return default_database_url()


def open_store(db: str | None, *, existing: bool = False) -> Store:
    """The store of --db / the environment / the config. ``existing``: a SQLite file they name
    must exist (``ledger verify`` reads a log; a mistyped path made an empty one, which
    verified)."""
    from straits.store import Store

    try:
        if existing and (db or state.config.database):
            _require_file(database_url(db))
        return Store(database_url(db))
    except InputError as exc:
        if db and exc.path == "STRAITS_DATABASE_URL" and _from_command_line("db"):
            # typed as --db: name the flag, not the variable (click knows which it was)
            raise InputError(exc.detail, path="--db", expected=exc.expected) from None
        if db or not state.config.database or exc.path != "STRAITS_DATABASE_URL":
            raise
        # the URL came from `database` in straits.toml: say so, not the variable
        where = str(state.config.path) if state.config.path else "straits.toml"
        raise InputError(exc.detail, source=where, path="database", expected=exc.expected) from None


def _from_command_line(param: str) -> bool:
    """Whether the running command's ``param`` was given on the command line (not by its
    environment variable or default)."""
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return False
    return ctx.get_parameter_source(param) is click.core.ParameterSource.COMMANDLINE


def refuse_unread(params: tuple[str, ...], *, when: str, expected: str) -> None:
    """Exit 2 naming the first of ``params`` given on the command line, which this run does
    not read (``when`` says why, e.g. "with --show"): a flag that changes nothing is refused,
    as git refuses options that do not go together, where it was accepted and the command did
    something else than asked (``plan PLAN --show --record`` recorded nothing, exit 0)."""
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    for name in params:
        if _from_command_line(name):
            flag = next((max(p.opts, key=len) for p in ctx.command.params if p.name == name), name)
            raise InputError(f"{flag} is not read {when}", path=flag, expected=expected)


def _require_file(url: str) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return  # the store names what is wrong with the URL
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or path in (None, "", ":memory:") or parsed.query:
        return
    if not os.path.exists(path):
        raise StoreError(
            f"cannot open the database {url!r}: there is no file {path} (this command reads "
            "a log and makes none: check the path)"
        )
    if _empty_file(path):
        raise StoreError(
            f"cannot open the database {url!r}: {path} is an empty file (0 bytes), not a "
            "database: truncated, or made by `touch` (this command reads a log and makes none: "
            "restore it from a backup, or check the path)"
        )


def _empty_file(path: str) -> bool:
    """Whether ``path`` is a regular file of 0 bytes with no write-ahead log holding its pages
    (``PATH-wal``): SQLite takes such a file for a new, empty database, and migrating it made
    a truncated log read as one of 0 entries that verifies."""
    try:
        if not os.path.isfile(path) or os.stat(path).st_size != 0:
            return False
    except OSError:
        return False  # the store names what is wrong with it
    try:
        return os.stat(path + "-wal").st_size == 0
    except FileNotFoundError:
        return True
    except OSError:
        return False


def rule_dirs(rules: list[Path] | None) -> tuple[Path, ...]:
    """--rules, else `rules` in straits.toml (a folder it names that is not there is exit 2
    naming the file and the key, not only the folder: user32)."""
    if rules:
        return tuple(rules)
    for i, folder in enumerate(state.config.rules):
        if not os.path.isdir(folder):
            raise InputError(
                f"{folder}: no such directory",
                source=str(state.config.path or "straits.toml"),
                path=f"rules[{i}]",
                expected="directories of rule packs, relative to the config file",
            )
    return state.config.rules


def actor_name(actor: str | None) -> str:
    if actor:
        return actor
    if state.config.actor:
        return state.config.actor
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


# --- input ---------------------------------------------------------------------------------------
def read_stdin_text(what: str) -> str:
    """Standard input's text, at most the input cap (``loading.read_stdin``)."""
    from straits.loading import read_stdin

    return read_stdin(error=RequestError, what=what)


class InputDoc(NamedTuple):
    """A parsed input and where it came from: ``text`` lets a field's error name its line."""

    data: Any
    label: str
    text: str


def read_input_doc(source: Path | None, *, what: str) -> InputDoc:
    """Parse JSON/YAML from a file, or from stdin when ``source`` is None or '-'."""
    from straits.loading import read_text

    if source is None or str(source) == "-":
        text, label = read_stdin_text(what), "<stdin>"
    else:
        text, label = read_text(source, error=RequestError), str(source)
    if not text.strip():
        raise RequestError("input is empty", source=label, expected=what)
    return InputDoc(parse_text(text, label, RequestError), label, text)


def parse_text(text: str, label: str, error: type[InputError] = InputError) -> Any:
    """A JSON or YAML document (``loading.parse_document``: strict JSON on its fast path, YAML
    within the depth, alias and duplicate-key limits)."""
    from straits.loading import parse_document

    return parse_document(text, source=label, error=error)


def fail(exc: StraitsError) -> None:
    """Print ``exc`` on one line of stderr and exit with its status (2 for bad input)."""
    print_error(exc)
    raise typer.Exit(exc.exit_code)


def fail_every(exc: StraitsError) -> None:
    """:func:`fail`, listing each problem of ``exc`` where it found several (``check``,
    ``estimate``, ``scenario validate``), a line each in the file's order, the first
    MAX_PROBLEMS and then how many there are (user64, cli65)."""
    from straits.errors import MAX_PROBLEMS

    if not isinstance(exc, InputError) or len(exc.every) < 2:
        return fail(exc)
    for problem in sorted(exc.every, key=lambda p: p.line or 0):
        print_error(problem)
    if exc.total > MAX_PROBLEMS:
        where = shorten_words(f"{exc.source or 'input'}: {exc.total:,} problems")
        note(f"{visible(where)}; the first {MAX_PROBLEMS} are listed")  # `[red]x.json` too
    raise typer.Exit(exc.exit_code)


def print_error(exc: BaseException) -> None:
    from rich.text import Text

    t = Text("error:", style="red")
    # as text: a field path such as [0] is not Rich markup; a character a terminal would act
    # on (an ESC sequence in a file name, a bidi override) shown as its Python escape
    # a user's value of 100,000 characters (`--param`, a path) shortened, not echoed whole
    t.append(f" {shorten_words(shown(str(exc)))}")
    err_console.print(t, soft_wrap=True)


def nonempty_path(file: bool = False) -> Any:
    """A path option's parameter type that refuses an empty or blank value: ``Path("")`` is
    the current directory, so an unset shell variable (``-o "$OUT"``) would write wherever the
    command runs. A usage error (exit 2) naming the option, as :func:`straits.fileio.output_path`
    gives for the string options."""
    import click

    class NonEmptyPath(click.ParamType):
        name = "path"

        def convert(self, value: Any, param: Any, ctx: Any) -> Any:
            if isinstance(value, Path):
                return value
            if not str(value).strip():
                self.fail(
                    "an empty path (expected a file or directory name; '-' where the "
                    "option takes standard output)",
                    param,
                    ctx,
                )
            if file and str(value).rstrip().endswith(("/", os.sep)):
                # Path("new/") is Path("new"): `-o new/` wrote a file named new (cli30)
                self.fail(
                    f"{value!r} ends with '/', which names a directory (expected a file name)",
                    param,
                    ctx,
                )
            return Path(value)

    return NonEmptyPath()
