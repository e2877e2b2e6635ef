"""A hostile pass (cli30) on the command line: numbers written other than in ASCII decimal
digits (every numeric option and argument of every command, enumerated from the click tree so
a new one is covered as it is added), and files that are no files."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from straits.cli import app
from straits.cli.dates import IsoDate
from straits.cli.numbers import FiniteFloatRange, WholeRange
from straits.cli.remote import _check_server
from straits.errors import InputError
from straits.limits import env_number
from straits.market.loading import MarketError, parse_overrides


def _numeric_params() -> list[tuple[list[str], click.Command, click.Parameter]]:
    """Every parameter of every command whose type is a number (click's int or float types,
    ranged or not), with the command's path."""
    found: list[tuple[list[str], click.Command, click.Parameter]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        for p in cmd.params:
            if isinstance(p.type, click.types._NumberParamTypeBase):
                found.append((path, cmd, p))

    walk(typer.main.get_command(app), [])
    return found


NUMERIC = _numeric_params()
IDS = [" ".join([*path, p.opts[0]]) for path, _, p in NUMERIC]

#: what Python's int() reads as a whole number and no person writes as one on a command line
BAD_WHOLE = [
    "1_0",  # int("1_0") == 10
    "\u0661\u0660",  # Arabic-Indic 10
    "\uff18",  # fullwidth 8
    "\u0967",  # Devanagari 1
    "1\u0660",  # ASCII 1, Arabic-Indic 0
    " 10",
    "10 ",
    "\t1",
    "1.0",
    "0x10",
    "",
    "1" * 41,
]
#: what Python's float() reads and no option takes
BAD_FLOAT = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-1e309",
    "1_0.5",
    "\u0661.\u0665",  # Arabic-Indic 1.5
    "\uff11\uff10",  # fullwidth 10
    " 1.5",
    "1.5\n",
    "0x1p3",
    "",
    "1" * 41,
]


def test_every_numeric_parameter_is_read_as_ascii_decimal() -> None:
    """A numeric option declared with typer's ``min=``/``max=`` (or none) is click's own type,
    which reads ``1_0`` and other scripts' digits: each one is declared with
    ``click_type=whole(...)`` or ``finite_float(...)``."""
    assert len(NUMERIC) >= 30  # the walk found the commands' numbers
    plain = [
        i
        for i, (_, _, p) in zip(IDS, NUMERIC, strict=True)
        if not isinstance(p.type, WholeRange | FiniteFloatRange)
    ]
    assert plain == []


def _parse(cmd: click.Command, param: click.Parameter, value: str) -> click.Context:
    """Parse one parameter's value as the command line gives it (the command does not run)."""
    args = [param.opts[0], value]
    if isinstance(param, click.Argument):  # valid values for the arguments before it
        before = [p for p in cmd.params if isinstance(p, click.Argument)]
        args = ["2025-01-01"] * before.index(param) + [value]
    return cmd.make_context(cmd.name or "straits", args, resilient_parsing=False)


@pytest.mark.parametrize(("path", "cmd", "param"), NUMERIC, ids=IDS)
def test_a_number_in_other_digits_is_a_usage_error_naming_it(
    path: list[str], cmd: click.Command, param: click.Parameter
) -> None:
    """``ledger show --limit 1_0`` showed 10 entries and ``scenario generate --seed`` of a
    fullwidth 8 seeded 8: click read them with int()/float(). Each is exit 2 naming the
    parameter."""
    bad = BAD_FLOAT if isinstance(param.type, click.FloatRange) else BAD_WHOLE
    for value in bad:
        with pytest.raises(click.BadParameter) as e:
            _parse(cmd, param, value)
        assert e.value.exit_code == 2
        assert e.value.param is param, value


@pytest.mark.parametrize(("path", "cmd", "param"), NUMERIC, ids=IDS)
def test_an_ascii_number_in_range_is_read(
    path: list[str], cmd: click.Command, param: click.Parameter
) -> None:
    t = param.type
    assert isinstance(t, click.IntRange | click.FloatRange)
    lo = t.min if t.min is not None else 0
    cases: list[tuple[str, float]] = [(str(lo), lo)]
    if isinstance(t, click.FloatRange):
        cases.append((f"{float(lo):e}", float(lo)))  # 5.000000e-01: an exponent is ASCII
    if lo >= 0:
        cases.append((f"+{lo}", lo))
    for text, want in cases:  # as the parse of the command line would (no other argument)
        assert param.process_value(click.Context(cmd), text) == want


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["ledger", "show", "--limit", "1_0"], "--limit"),
        (["ledger", "show", "\u0661"], "SEQ"),
        (["scenario", "generate", "--seed", "\uff18", "-o", "-"], "--seed"),
        (["scenario", "generate", "--workloads", "1_0", "-o", "-"], "--workloads"),
        (["plan", "-", "--time-limit", "nan"], "--time-limit"),
        (["market", "sweep", "--threshold", "1e309"], "--threshold"),
        (["estimate", "-", "--chips", "\u0668"], "--chips"),
    ],
)
def test_the_command_line_says_which_number(argv: list[str], option: str) -> None:
    result = CliRunner().invoke(app, argv, input="")
    assert result.exit_code == 2, result.output
    assert option in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "value", ["1_0", "\u0661.\u0665", "\uff10.5", "inf", "-inf", "1e309", "0x1"]
)
def test_a_market_override_is_an_ascii_number(value: str) -> None:
    """``market run --set demand.shift_speed=`` an Arabic-Indic 0.3 ran at 0.3, ``=1_0`` at 10."""
    with pytest.raises(MarketError) as e:
        parse_overrides([f"demand.shift_speed={value}"])
    assert e.value.source == "--set"
    # blanks around the number are refused as every option's are (docs/cli.md; hostile37)
    assert parse_overrides(["demand.shift_speed=0.3", "a.b=-1e-2"]) == {
        "demand.shift_speed": 0.3,
        "a.b": -0.01,
    }


@pytest.mark.parametrize(("value", "integer"), [("1_6", True), ("1_6.5", False), ("1__6", True)])
def test_a_setting_is_not_read_with_underscores(
    value: str, integer: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``STRAITS_MAX_INPUT_BYTES=1_6`` capped every file at 16 bytes: int() reads ``_``."""
    monkeypatch.setenv("STRAITS_CLI30", value)
    with pytest.raises(InputError) as e:
        env_number("STRAITS_CLI30", 5.0, 1, 100, integer=integer)
    assert e.value.path == "STRAITS_CLI30"
    monkeypatch.setenv("STRAITS_CLI30", "+1.5e1")
    assert env_number("STRAITS_CLI30", 5.0, 1, 100) == 15.0


# --- files that are no files ---------------------------------------------------------------------
MARKET = Path(__file__).resolve().parents[1] / "examples" / "market-slow-johor.yaml"


def test_market_reads_its_file_from_stdin() -> None:
    """``market run -`` was "-: file not found" (exit 2), where `-` is stdin on every other
    command; it reads the market from stdin, the same result as from the file."""
    args = ["--firms", "5", "--no-compare", "--json"]
    piped = CliRunner().invoke(app, ["market", "run", "-", *args], input=MARKET.read_text())
    assert piped.exit_code == 0, piped.output
    named = CliRunner().invoke(app, ["market", "run", str(MARKET), *args])
    assert json.loads(piped.stdout)["months"] == json.loads(named.stdout)["months"]
    for stdin in ("", "- 1\n", "\x00"):
        refused = CliRunner(mix_stderr=False).invoke(
            app, ["market", "run", "-", *args], input=stdin
        )
        assert refused.exit_code == 2, refused.output
        assert refused.stdout == "" and "<stdin>" in refused.stderr


ROOT = Path(__file__).resolve().parents[1]
LONG = "x" * 300  # a name over 255 bytes: open(), stat() and Path.exists() say ENAMETOOLONG


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", f"{LONG}.yaml"],
        ["impact", "--plan", LONG, "--date", "2025-06-01"],
        ["rules", "list", "--rules", LONG],
        ["check", str(ROOT / "examples" / "request.json"), "--rules", LONG],
        ["ledger", "verify", "--head", LONG],
        ["ledger", "verify", "--pubkey", LONG],
        ["scenario", "generate", "-o", f"{LONG}.yaml"],
        ["ledger", "export", "-o", f"{LONG}.jsonl.gz"],
    ],
    ids=lambda a: " ".join(w for w in a if LONG not in w and "/" not in w),
)
def test_a_name_too_long_is_an_input_error(argv: list[str]) -> None:
    """Path.exists()/is_dir()/is_file() raise ENAMETOOLONG: each was a traceback, exit 1."""
    result = CliRunner(mix_stderr=False).invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["scenario", "generate", "-o", "{DIR}/new/"], "-o"),
        (["scenario", "generate", "-o", "{DIR}/plan.yaml/"], "-o"),
        (["ledger", "keygen", "-o", "{DIR}/new/"], "-o"),
        (["ledger", "receipt", "1", "-o", "{DIR}/new/"], "-o"),
        (["ledger", "checkpoint", "-o", "{DIR}/new/"], "-o"),
        (["ledger", "witness", "--checkpoint", "-", "--state", "{DIR}/new/"], "--state"),
        (["market", "run", "-o", "{DIR}/new/"], "-o"),
        (["report", "-", "-o", "{DIR}/new/"], "--out"),
    ],
)
def test_a_trailing_slash_names_a_directory(argv: list[str], option: str, tmp_path: Path) -> None:
    """`-o new/` wrote a file named `new` (a key, a receipt, a witness state, a scenario), and
    `scenario generate -o plan.yaml/` replaced plan.yaml: Path drops the slash."""
    (tmp_path / "plan.yaml").write_text("kept")
    args = [a.replace("{DIR}", str(tmp_path)) for a in argv]
    result = CliRunner(mix_stderr=False).invoke(app, args, input="")
    assert result.exit_code == 2, result.output
    assert option in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.yaml"]
    assert (tmp_path / "plan.yaml").read_text() == "kept"
    if argv[:2] == ["scenario", "generate"]:  # an existing directory: the file inside it
        (tmp_path / "d").mkdir()
        done = CliRunner().invoke(app, ["scenario", "generate", "-o", f"{tmp_path}/d/"])
        assert done.exit_code == 0, done.output
        assert [p.name for p in (tmp_path / "d").iterdir()] == ["generated-w10-s20-seed0.yaml"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:\uff18\uff10",  # fullwidth 80
        "http://127.0.0.1:\u0668\u0660",  # Arabic-Indic 80
        "http://127.0.0.1:8_0",
        "http://127.0.0.1:+80",
        "http://[::1]:\u0668",
    ],
)
def test_a_server_port_is_written_in_ascii_digits(url: str) -> None:
    """httpx reads a URL's port with int(): `--server` with a fullwidth 80 asked port 80."""
    result = CliRunner(mix_stderr=False).invoke(app, ["--server", url, "chips"])
    assert result.exit_code == 2, result.output
    assert "--server" in result.stderr
    for good in ("http://127.0.0.1:8000", "http://h", "https://h:/", "http://u:p@[::1]:1/x"):
        _check_server(good, None)


def _date_params() -> list[tuple[list[str], click.Command, click.Parameter]]:
    found: list[tuple[list[str], click.Command, click.Parameter]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        found.extend((path, cmd, p) for p in cmd.params if isinstance(p.type, click.DateTime))

    walk(typer.main.get_command(app), [])
    return found


DATES = _date_params()


@pytest.mark.parametrize(
    ("path", "cmd", "param"), DATES, ids=[" ".join([*a, p.opts[0]]) for a, _, p in DATES]
)
def test_a_date_is_written_yyyy_mm_dd_in_ascii_digits(
    path: list[str], cmd: click.Command, param: click.Parameter
) -> None:
    """strptime's \\d is any script's digit: `rules list --date` in Arabic-Indic digits
    listed the rules of 2025-06-01."""
    assert isinstance(param.type, IsoDate)
    for value in (
        "\u0662\u0660\u0662\u0665-06-01",
        "\uff12025-06-01",
        "2025-\u0666-1",
        " 2025-06-01",
    ):
        with pytest.raises(click.BadParameter) as e:
            _parse(cmd, param, value)
        assert e.value.param is param
    for value in ("2025-06-01", "2025-6-1"):  # one-digit months and days, as before
        read = param.process_value(click.Context(cmd), value)
        assert read.date().isoformat() == "2025-06-01"


@pytest.mark.parametrize(
    ("path", "cmd", "param"), DATES, ids=[" ".join([*a, p.opts[0]]) for a, _, p in DATES]
)
def test_a_day_the_calendar_lacks_is_not_said_to_be_in_another_form(
    path: list[str], cmd: click.Command, param: click.Parameter
) -> None:
    """`--date 2025-02-30` or `2025-13-01` is written YYYY-MM-DD: it was refused with
    click's "does not match the format '%Y-%m-%d'" (user64); it names the day the calendar
    lacks, exit 2 as before."""
    for value in ("2025-02-30", "2025-13-01", "2025-04-31", "0000-01-01"):
        with pytest.raises(click.BadParameter) as e:
            _parse(cmd, param, value)
        assert e.value.param is param
        assert "%Y" not in e.value.format_message() and value in e.value.format_message()


@pytest.mark.parametrize(
    ("path", "cmd", "param"), DATES, ids=[" ".join([*a, p.opts[0]]) for a, _, p in DATES]
)
def test_a_dates_help_shows_the_form_the_docs_name(
    path: list[str], cmd: click.Command, param: click.Parameter
) -> None:
    """`--help` showed every date as `[%Y-%m-%d]`, strptime's codes, where the docs and the
    errors say `YYYY-MM-DD` (user64)."""
    assert param.type.get_metavar(param) == "YYYY-MM-DD"
