"""The conventions every command follows (docs/cli.md): help, version, completion, `-` for
stdin/stdout, `-o json|yaml|table`, -q, straits.toml and the XDG directories, tokens on stdout
alone, wrapping, guidance where a user would be stuck. Through the real `straits` process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import H20_BEFORE
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


# --- config and the XDG directories --------------------------------------------------------------
def test_default_database_is_in_the_xdg_data_dir_and_named(
    home: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    p = run("check", "--record", stdin=json.dumps(DESIGN_REQUEST), env=home, cwd=work)
    assert p.returncode == 0, p.stderr
    db = Path(home["XDG_DATA_HOME"]) / "straits" / "straits.db"
    assert db.is_file() and str(db) in p.stderr
    assert not list(work.iterdir())  # nothing in the directory the command ran in
    again = run("check", "--record", stdin=json.dumps(DESIGN_REQUEST), env=home, cwd=work)
    assert "creating the database" not in again.stderr
    show = json.loads(run("config", "show", "--json", env=home).stdout)
    assert show["settings"]["database"] == {"value": f"sqlite:///{db}", "from": "default"}
    # the actor that would be recorded, not a blank (docs/cli.md: default cli:$USER)
    assert show["settings"]["actor"]["from"] == "default"
    assert show["settings"]["actor"]["value"].startswith("cli:")


def test_straits_toml_sets_defaults_and_flags_win(home: dict[str, str], tmp_path: Path) -> None:
    cfg = Path(home["XDG_CONFIG_HOME"]) / "straits" / "straits.toml"
    cfg.parent.mkdir(parents=True)
    db = tmp_path / "from-config.db"
    cfg.write_text(f'database = "sqlite:///{db}"\nactor = "alice@example"\n')
    p = run("check", "--record", "--json", stdin=json.dumps(DESIGN_REQUEST), env=home)
    assert p.returncode == 0, p.stderr
    shown = json.loads(run("ledger", "show", "--json", env=home).stdout)
    assert [e["actor"] for e in shown] == ["alice@example"]
    assert db.is_file()
    flag_db = tmp_path / "flag.db"
    run(
        "check",
        "--record",
        "--actor",
        "bob",
        "--db",
        f"sqlite:///{flag_db}",
        stdin=json.dumps(DESIGN_REQUEST),
        env=home,
    )
    assert (
        json.loads(
            run("ledger", "show", "--json", "--db", f"sqlite:///{flag_db}", env=home).stdout
        )[0]["actor"]
        == "bob"
    )
    env_db = tmp_path / "env.db"
    s = json.loads(
        run(
            "config",
            "show",
            "-o",
            "json",
            env={**home, "STRAITS_DATABASE_URL": f"sqlite:///{env_db}"},
        ).stdout
    )
    assert s["settings"]["database"]["from"] == "environment (STRAITS_DATABASE_URL)"
    assert s["settings"]["actor"] == {"value": "alice@example", "from": str(cfg)}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('databse = "sqlite://"\n', ("databse", "unknown key", "database")),
        ("database = 5\n", ("database", "non-empty string")),
        ('rules = "packs"\n', ("rules", "list of paths")),
        ('database = "x\n', ("not valid TOML", "line 1")),
        (b"\xff\xfe", ("UTF-8",)),
    ],
)
def test_a_bad_config_file_exits_2_naming_it(
    home: dict[str, str], tmp_path: Path, content: Any, words: tuple[str, ...]
) -> None:
    cfg = tmp_path / "bad.toml"
    if isinstance(content, bytes):
        cfg.write_bytes(content)
    else:
        cfg.write_text(content)
    one_line_error(run("--config", str(cfg), "config", "show", env=home), str(cfg), *words)
    one_line_error(run("chips", "--json", env={**home, "STRAITS_CONFIG": str(cfg)}), str(cfg))


def test_a_bad_database_url_is_blamed_on_where_it_came_from(
    home: dict[str, str], tmp_path: Path
) -> None:
    cfg = tmp_path / "straits.toml"
    cfg.write_text('database = "nonsense://x"\n')
    one_line_error(
        run("--config", str(cfg), "ledger", "verify", env=home), f"{cfg}: database:", "nonsense://x"
    )
    env = {**home, "STRAITS_DATABASE_URL": "nonsense://y"}  # the variable wins, and is named
    one_line_error(
        run("--config", str(cfg), "ledger", "verify", env=env),
        "STRAITS_DATABASE_URL:",
        "nonsense://y",
    )


def test_an_explicit_config_must_exist(home: dict[str, str], tmp_path: Path) -> None:
    one_line_error(
        run("--config", str(tmp_path / "nope.toml"), "config", "show", env=home),
        "nope.toml",
        "not found",
    )


def test_a_readable_token_in_the_config_is_warned_about(
    home: dict[str, str], tmp_path: Path
) -> None:
    cfg = tmp_path / "straits.toml"
    cfg.write_text('token = "st_x_y"\n')
    cfg.chmod(0o644)
    p = run("--config", str(cfg), "config", "show", "--json", env=home)
    assert p.returncode == 0 and "chmod 600" in p.stderr
    assert json.loads(p.stdout)["settings"]["token"]["value"] == "(set)"
    assert "st_x_y" not in p.stdout


# --- quiet, wrapping, whole ids -------------------------------------------------------------------
def test_quiet_plan_prints_one_summary_line(example_path: Path) -> None:
    p = run("plan", str(example_path), "-q", "--solver", "greedy", "--progress")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1 and "Total $" in lines[0]
    assert run("-q", "plan", str(example_path), "--solver", "greedy").stdout == p.stdout


def test_quiet_export_impact_and_recheck_print_one_line_each(tmp_path: Path) -> None:
    """docs/cli.md: -q drops stderr and shrinks what a command prints to its summary line."""
    h20 = ROOT / "examples" / "h20-2025.yaml"
    # made and exported with the rules of 2025-04-08 (conftest.H20_BEFORE): it buys H20s
    before = ("--rules", str(H20_BEFORE))
    doc = run("plan", str(h20), "--solver", "greedy", "-o", "json", *before)
    assert doc.returncode == 0, doc.stderr
    f = tmp_path / "plan.json"
    f.write_text(doc.stdout)
    jobs = tmp_path / "jobs"
    cases = [
        (("export", str(f), "--to", "slurm", "-o", str(jobs), *before), 0, "file(s) of plan"),
        (("impact", "--plan", str(f), "--date", "2025-04-10", "--no-replan"), 0, "1 blocked"),
        (("plan", str(f), "--recheck", "--date", "2025-04-10"), 4, "1 blocked"),
    ]
    for args, code, words in cases:
        for p in (run(*args, "-q", columns=400), run("-q", *args, columns=400)):
            assert p.returncode == code, (args, p.stderr)
            assert p.stderr == ""
            lines = p.stdout.strip().splitlines()
            assert len(lines) == 1 and words in lines[0], (args, p.stdout)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("market", "-o", "."), ("'.'", ".json")),
        (("report", "examples/offshore-2025.yaml", "-o", "."), ("'.'", ".html")),
        (("scenario", "validate", "."), ("directory",)),
    ],
)
def test_a_dot_for_a_file_is_named_in_the_error(
    args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    """`-o .` used to be a traceback; the error names the path given, not '' (its name)."""
    one_line_error(run(*args, cwd=ROOT), *words)


def test_long_reasons_wrap_under_their_own_text() -> None:
    p = run("check", stdin=json.dumps(DESIGN_REQUEST), columns=70)
    lines = p.stdout.splitlines()
    assert max(len(line) for line in lines) <= 70
    assert all(line == line.rstrip() for line in lines)
    body = [ln for ln in lines[2:] if ln.strip()]  # after the title
    assert body and all(ln.startswith("  ") for ln in body), body


@pytest.mark.parametrize("columns", [60, 80, 200])
def test_chips_never_cut_a_cell(columns: int) -> None:
    chips = json.loads(run("chips", "--json").stdout)
    table = run("chips", columns=columns).stdout
    assert "\u2026" not in table  # no ellipsis anywhere
    rows = {ln.split()[0]: ln for ln in table.splitlines() if ln.strip()}
    for c in chips:  # each chip on one line, with its id, TPP and 2023 class whole
        row = rows[c["id"]]
        assert f"{c['derived']['tpp']:,.0f}" in row.split()
        assert c["derived"]["class_2023"] in row.split()


# --- guidance ------------------------------------------------------------------------------------
def test_an_estimate_on_too_few_chips_says_how_many() -> None:
    req = {**ESTIMATE, "chip": "H20", "chips": 8}
    out = json.loads(run("estimate", "--json", stdin=json.dumps(req)).stdout)
    assert not out["fits"]
    hint = next(g for g in out["guidance"] if g["code"] == "needs-more-chips")
    assert hint["min_chips"] == out["min_chips"] > req["chips"]
    at_min = json.loads(
        run("estimate", "--json", stdin=json.dumps({**req, "chips": hint["min_chips"]})).stdout
    )
    assert at_min["fits"] and hint["days_at_min_chips"] == pytest.approx(at_min["days"], 0.01)
    table = run("estimate", stdin=json.dumps(req), columns=120).stdout
    assert f"--chips {hint['min_chips']}" in table


def test_a_years_long_run_says_which_cluster_finishes_in_90_days() -> None:
    req = {**ESTIMATE, "chip": "H100-SXM", "chips": 64}
    out = json.loads(run("estimate", "--json", stdin=json.dumps(req)).stdout)
    hint = next(g for g in out["guidance"] if g["code"] == "long-run")
    assert out["days"] > 365 and hint["chips_for_target"] > req["chips"]
    there = json.loads(
        run(
            "estimate", "--json", stdin=json.dumps({**req, "chips": hint["chips_for_target"]})
        ).stdout
    )
    assert there["days"] <= hint["target_days"]
    assert not [g for g in there["guidance"] if g["code"] == "long-run"]
    half = json.loads(
        run(
            "estimate", "--json", stdin=json.dumps({**req, "chips": hint["chips_for_target"] // 2})
        ).stdout
    )
    assert half["days"] > hint["target_days"] or not half["fits"]


def test_a_plan_past_its_horizon_says_so(example_path: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(example_path.read_text())
    doc["horizon_days"] = 20
    f = tmp_path / "short.yaml"
    f.write_text(yaml.safe_dump(doc))
    out = json.loads(run("plan", str(f), "-o", "json", "--solver", "greedy").stdout)
    hint = next(g for g in out["guidance"] if g["code"] == "past-horizon")
    ends = {f"{a['workload']}/{a['stage']}": a["end"] for a in out["assignments"]}
    late = sorted(k for k, end in ends.items() if end.replace("Z", "+00:00") > hint["horizon_end"])
    assert late and sorted(hint["stages"]) == late
    assert "horizon_days" in run("plan", str(f), "--solver", "greedy", columns=200).stdout
    full = json.loads(run("plan", str(example_path), "-o", "json", "--solver", "greedy").stdout)
    assert not [g for g in full["guidance"] if g["code"] == "past-horizon"]


def test_export_with_no_target_mapped_names_the_field(example_path: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(example_path.read_text())
    for site in doc["sites"]:
        site.pop("targets", None)
        for pool in site["pools"]:
            pool.pop("targets", None)
    f = tmp_path / "bare.yaml"
    f.write_text(yaml.safe_dump(doc))
    out = tmp_path / "jobs"
    for to in ("slurm", "all"):
        p = run("-q", "export", str(f), "--to", to, "-o", str(out))  # -q: the error alone
        one_line_error(p, "targets", "no site of the plan is mapped")
        assert "sites[].targets." in p.stderr
        assert not out.exists() or not any(out.iterdir())


def test_ctrl_c_while_the_cli_starts_exits_130_without_a_traceback() -> None:
    """Ctrl-C in the first second (the CLI importing Typer and Rich, longer on a loaded
    machine) was a KeyboardInterrupt traceback and death by signal. The signal is sent from
    inside the import of `rich`, so the test does not depend on timing."""
    code = (
        "import os, signal, sys\n"
        "class Hook:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'rich':\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hook())\n"
        "sys.argv = ['straits', 'chips']\n"
        "from straits.cli import main\n"
        "main()\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        # SIGINT as a terminal delivers it (a test runner may have it ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert p.returncode == 130, p.stderr
    assert "Traceback" not in p.stderr and "KeyboardInterrupt" not in p.stderr
    assert p.stdout == ""
