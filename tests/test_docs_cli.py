"""docs/cli.md's lists of commands match the command tree: the commands whose `-o` is a format,
those whose `-o` is a path, and those that take `-q` after the command name."""

from __future__ import annotations

import re
from pathlib import Path

import click
import typer

from straits.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGE = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")


def leaves() -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        else:
            out[" ".join(path)] = cmd

    walk(typer.main.get_command(app), [])
    return out


def listed(sentence: str) -> set[str]:
    """`rules list|show` -> {rules list, rules show}; `check` -> {check}."""
    names: set[str] = set()
    for span in re.findall(r"`([a-z\s-]+(?:\|[a-z-]+)*)`", sentence):
        head, _, alts = " ".join(span.split()).rpartition(" ")
        names |= {f"{head} {a}".strip() for a in alts.split("|")}
    return names


def option(cmd: click.Command, opt: str) -> click.Parameter | None:
    return next((p for p in cmd.params if opt in p.opts), None)


def test_commands_with_formats() -> None:
    sentence = PAGE.split("Commands with formats:", 1)[1].split(".\n", 1)[0]
    real = {
        name
        for name, cmd in leaves().items()
        if (o := option(cmd, "-o")) is not None
        and (getattr(o, "help", "") or "").startswith("Output format")
    }
    assert listed(sentence) == real


def test_commands_whose_output_is_a_path() -> None:
    sentence = PAGE.split("On a command whose job is to *write files* (", 1)[1].split(")", 1)[0]
    real = {
        name
        for name, cmd in leaves().items()
        if (o := option(cmd, "-o")) is not None
        and not (getattr(o, "help", "") or "").startswith("Output format")
    }
    assert listed(sentence) == real


def test_commands_with_quiet() -> None:
    sentence = PAGE.split("(`straits -q COMMAND`, or after", 1)[1].split(")", 1)[0]
    real = {name for name, cmd in leaves().items() if option(cmd, "-q") is not None}
    assert listed(sentence) == real


def test_the_client_example_calls_methods_that_exist() -> None:
    """The Python client example compiles and every `s.method(...)` it calls is a method of
    `straits.client.Client` that takes the keywords it passes."""
    import inspect

    from straits.client import Client

    block = PAGE.split("```python\n", 1)[1].split("```", 1)[0]
    compile(block, "docs/cli.md", "exec")
    calls = re.findall(r"\bs\.(\w+)\(([^()]*)", block)
    assert calls
    for name, args in calls:
        method = getattr(Client, name, None)
        assert method is not None, f"Client has no {name}"
        params = inspect.signature(method).parameters
        for kw in re.findall(r"(\w+)=", args):
            assert kw in params, f"Client.{name} takes no {kw}="


def test_the_client_exceptions_are_the_documented_ones() -> None:
    """The client section's `CODE/CODE ExceptionName` pairs are what `error_for` raises, and
    every other code is `RemoteError` (docs51: 409, 413 and 422 were InputError, the page said
    "anything else RemoteError")."""
    import httpx

    from straits.client_io import error_for

    sentence = PAGE.split("Errors are Straits' own exceptions:", 1)[1].split(").\n", 1)[0]
    documented: dict[int, str] = {}
    for codes, name in re.findall(r"((?:\d{3}(?:, | and |/))*\d{3})\)? ?`?(\w+Error)`", sentence):
        for code in re.findall(r"\d{3}", codes):
            documented[int(code)] = name
    for code in (400, 401, 403, 404, 405, 409, 410, 413, 422, 429, 500, 502, 503):
        request = httpx.Request("GET", "http://h/v1/chips")
        exc = error_for(httpx.Response(code, json={"detail": "x"}, request=request), "http://h")
        assert type(exc).__name__ == documented.get(code, "RemoteError"), code


def test_ledger_checkpoint_json_writes_what_the_page_says(tmp_path: Path) -> None:
    """`ledger checkpoint --json -o F` writes the checkpoint as the JSON the page names into F,
    prints nothing on stdout, and `ledger verify --head F` reads it (docs51: the page said
    `--json` prints a summary on every command whose `-o` is a path)."""
    import json
    import subprocess
    import sys

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "straits", *args]
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=300)

    db, key, out = f"sqlite:///{tmp_path / 's.db'}", tmp_path / "k", tmp_path / "cp.json"
    request = (ROOT / "examples" / "request.json").read_text(encoding="utf-8")
    assert run("ledger", "keygen", "-o", str(key)).returncode == 0
    assert run("check", "--record", "--db", db, "-q", stdin=request).returncode == 0
    p = run("ledger", "checkpoint", "--db", db, "--key", str(key), "--json", "-o", str(out))
    assert (p.returncode, p.stdout) == (0, ""), p.stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    sentence = PAGE.split("`ledger checkpoint --json`", 1)[1].split(" to `-o`", 1)[0]
    assert set(re.findall(r"\w+", sentence.split("{", 1)[1].split("}", 1)[0])) == set(doc)
    pub = f"{key}.pub"
    verify = run("ledger", "verify", "--db", db, "--pubkey", pub, "--head", str(out))
    assert verify.returncode == 0, verify.stderr
