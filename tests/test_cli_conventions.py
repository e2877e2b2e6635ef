"""The conventions every command follows (docs/cli.md): help, version, completion, `-` for
stdin/stdout, `-o json|yaml|table`, tokens on stdout alone. Through the real `straits` process.
(straits.toml and the XDG directories: test_cli_config.py; -q, wrapping and guidance where a
user would be stuck: test_cli_messages.py.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from test_cli import ESTIMATE, one_line_error
from test_rules_engine import DESIGN_REQUEST

ROOT = Path(__file__).resolve().parents[1]


def run(
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    columns: int | None = None,
) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, **(env or {})}
    if columns is not None:
        e["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        input=stdin,
        env=e,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    """An empty XDG config and data home for one test."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data")}


# --- help, version, completion -------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        (),
        ("plan",),
        ("ledger",),
        ("ledger", "show"),
        ("tokens", "create"),
        ("config", "show"),
        ("export",),
    ],
)
def test_h_is_help_everywhere_and_types_render_as_designed(args: tuple[str, ...]) -> None:
    p = run(*args, "-h", columns=100)
    assert p.returncode == 0, p.stderr
    assert "Usage: straits" in p.stdout
    assert p.stdout == run(*args, "--help", columns=100).stdout
    assert "<bool>" not in p.stdout and "<list[" not in p.stdout  # the pinned Typer


def test_version() -> None:
    from straits import __version__

    p = run("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"straits {__version__}"


def test_completion_script_and_install(tmp_path: Path) -> None:
    # the shell named, not detected from the parent processes (a test run under nohup or a
    # CI runner may have no shell above it); Typer's own switch for that
    env = {"HOME": str(tmp_path), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    p = run("--show-completion", "bash", env=env)
    assert p.returncode == 0 and "_STRAITS_COMPLETE" in p.stdout
    i = run("--install-completion", "bash", env=env)
    assert i.returncode == 0, i.stderr
    assert "straits" in (tmp_path / ".bashrc").read_text()
    # the completion itself: the commands for `straits pl<TAB>`
    c = run(
        env={"_STRAITS_COMPLETE": "complete_bash", "COMP_WORDS": "straits pl", "COMP_CWORD": "1"}
    )
    assert "plan" in c.stdout.split()


def test_cli_choices_match_the_models() -> None:
    from straits.cli import choices
    from straits.cli.plan_cmd import SolverName
    from straits.model import types
    from straits.plan import DEFAULT_TIME_LIMIT
    from straits.plan.registry import SOLVER_NAMES

    assert typing.get_args(choices.Regime) == typing.get_args(types.Regime)
    assert [s.value for s in SolverName] == list(SOLVER_NAMES)  # --solver offers the registry
    assert choices.DEFAULT_TIME_LIMIT == DEFAULT_TIME_LIMIT


def _every_command() -> list[tuple[str, Any]]:
    import typer.main

    from straits.cli import app

    out: list[tuple[str, Any]] = []

    def walk(cmd: Any, path: str) -> None:
        out.append((path, cmd))
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return out


def _option(cmd: Any, flag: str) -> Any:
    return next((p for p in cmd.params if flag in getattr(p, "opts", ())), None)


@pytest.mark.parametrize(
    "rule", ["--json names -o json only where -o is a format", "a range never reads None"]
)
def test_every_commands_help_says_what_its_options_do(rule: str) -> None:
    """`export`, `report`, `market run` and the ledger's key commands take a file or directory
    as -o (or have no -o): their --json help must not send users to `-o json`; an unbounded
    float range must not print as "x<=None"."""
    import click

    wrong = []
    for path, cmd in _every_command():
        if rule.startswith("--json"):
            j, o = _option(cmd, "--json"), _option(cmd, "-o")
            if (
                j is not None
                and "-o json" in (j.help or "")
                and (o is None or o.metavar != "FORMAT")
            ):
                wrong.append(path)
        else:
            for p in cmd.params:
                if (
                    isinstance(p.type, click.types._NumberRangeBase)
                    and "None" in p.type._describe_range()
                ):
                    wrong.append(f"{path} {p.opts[0]}")
    assert wrong == []


def test_help_imports_no_solver_database_or_rules() -> None:
    """What `straits --help` and `straits check` load (benchmarks/startup.py times it). The
    planner's registry and deadline are light (they list the solvers for --help); its solvers,
    candidates and greedy planner are not."""
    probe = (
        "import sys, runpy; sys.argv = {argv!r}\n"
        "try:\n    runpy.run_module('straits', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = ('ortools', 'numpy', 'pandas', 'sqlalchemy', 'cedarpy', 'fastapi', "
        "'httpx', 'straits.plan.solvers', 'straits.plan.candidates', "
        "'straits.plan.greedy', 'straits.store')\n"
        "print(sorted({{m.split('.')[0] if not m.startswith('straits') else "
        "'.'.join(m.split('.')[:2]) for m in sys.modules if m.startswith(heavy)}}))"
    )

    def loaded(argv: list[str], stdin: str | None = None) -> list[str]:
        p = subprocess.run(
            [sys.executable, "-c", probe.format(argv=argv)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr
        return list(json.loads(p.stdout.strip().splitlines()[-1].replace("'", '"')))

    assert loaded(["straits", "--help"]) == []
    assert loaded(["straits", "check", "--json"], json.dumps(DESIGN_REQUEST)) == ["cedarpy"]


# --- output formats ------------------------------------------------------------------------------
def test_o_json_and_yaml_are_the_same_document() -> None:
    j = run("chips", "--json")
    assert json.loads(run("chips", "-o", "json").stdout) == json.loads(j.stdout)
    assert yaml.safe_load(run("chips", "-o", "yaml").stdout) == json.loads(j.stdout)
    c = run("check", "-o", "yaml", stdin=json.dumps(DESIGN_REQUEST))
    assert yaml.safe_load(c.stdout)["decision"] == "conditional"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("chips", "-o", "xml"), ("-o", "xml", "table, json or yaml")),
        (("chips", "-o", "chips.json"), ("redirect",)),
        (("chips", "--json", "-o", "yaml"), ("--json", "two formats")),
        (("rules", "list", "-o", "csv"), ("-o",)),
        (("plan", "examples/offshore-2025.yaml", "-o", "xml"), ("-o", "xml", "yaml or id")),
    ],
)
def test_bad_output_formats_exit_2(args: tuple[str, ...], words: tuple[str, ...]) -> None:
    one_line_error(run(*args), *words)


#: the byte 0xFF, which is no UTF-8, as Python holds it in sys.argv (surrogateescape)
NOT_UTF8 = "\udcff"
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"


@pytest.mark.parametrize(
    "args",
    [
        ("export", str(EXAMPLE), "--to", "slurm", "-o", "x", "--run", NOT_UTF8),
        ("ledger", "show", "--tenant", NOT_UTF8),
        ("impact", "--date", "2025-07-01", "--tenant", NOT_UTF8),
        ("tokens", "revoke", NOT_UTF8),
        ("market", "sweep", "--runs", "2", "--out", "sweep-" + NOT_UTF8),
    ],
)
def test_an_argument_that_is_not_utf8_exits_2(
    args: tuple[str, ...], home: dict[str, str], tmp_path: Path
) -> None:
    """Bytes that are no UTF-8 in an argument (a shell's $'\\xff', a Latin-1 file name)
    were a UnicodeEncodeError traceback wherever the text reached a file, the database or
    Ray; now exit 2 naming the argument, before anything runs."""
    p = run(*args, env=home, cwd=tmp_path)
    i = args.index(next(a for a in args if NOT_UTF8 in a))
    one_line_error(p, f"argument {i + 1}", *([args[i - 1]] if args[i - 1].startswith("-") else []))
    assert "UTF-8" in p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == []


# --- `-` as stdin and stdout ---------------------------------------------------------------------
def test_dash_reads_stdin(example_path: Path) -> None:
    assert json.loads(run("check", "-", "--json", stdin=json.dumps(DESIGN_REQUEST)).stdout)
    assert json.loads(run("estimate", "-", "--json", stdin=json.dumps(ESTIMATE)).stdout)
    v = run("scenario", "validate", "-", stdin=example_path.read_text())
    assert v.returncode == 0 and "valid (" in v.stdout
    p = run("plan", "-", "-o", "json", "--solver", "greedy", stdin=example_path.read_text())
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["scenario"] == "offshore-2025"
    one_line_error(run("plan", "-", stdin=""), "<stdin>", "empty")


def test_dash_writes_stdout(tmp_path: Path) -> None:
    g = run("scenario", "generate", "--workloads", "2", "--sites", "3", "-o", "-")
    assert g.returncode == 0 and yaml.safe_load(g.stdout)["name"]
    assert not (Path.cwd() / "-").exists()
    db = f"sqlite:///{tmp_path / 'l.db'}"
    run("check", "--record", "--db", db, stdin=json.dumps(DESIGN_REQUEST))
    e = run("ledger", "export", "-o", "-", "--db", db)
    assert e.returncode == 0 and len(e.stdout.splitlines()) == 1
    v = run("ledger", "verify", "--file", "-", "--json", stdin=e.stdout)
    assert v.returncode == 0 and json.loads(v.stdout)["ok"]


def test_output_never_replaces_a_directory(tmp_path: Path) -> None:
    """A directory is written into (a file named after the options), never replaced; a
    directory where that file would go is refused."""
    d = tmp_path / "d"
    d.mkdir()
    p = run("scenario", "generate", "-o", str(d))
    assert p.returncode == 0, p.stderr
    written = list(d.iterdir())
    assert len(written) == 1 and written[0].is_file()
    (d / "taken").mkdir()
    q = run("scenario", "generate", "-o", str(d / "taken" / ".."), "--seed", "5")
    assert q.returncode == 0, q.stderr  # `..` resolves to d itself: still a directory
    blocker = tmp_path / "e" / "generated-w10-s20-seed0.yaml"
    blocker.mkdir(parents=True)
    one_line_error(
        run("scenario", "generate", "-o", str(tmp_path / "e")), str(blocker), "directory"
    )
    assert blocker.is_dir()


# --- tokens --------------------------------------------------------------------------------------
def test_tokens_create_prints_only_the_token(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    p = run("tokens", "create", "--tenant", "hz-cloud", "--role", "viewer", "--db", db)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(r"st_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}\n", p.stdout)
    from straits.store import Store
    from straits.store.tokens import authenticate

    who = authenticate(Store(db), p.stdout.strip())
    assert (who.tenant, who.role) == ("hz-cloud", "viewer")
    assert p.stdout.strip() not in p.stderr
    q = run("-q", "tokens", "create", "--tenant", "t", "--role", "viewer", "--db", db)
    assert q.stderr == "" and q.stdout.startswith("st_")
