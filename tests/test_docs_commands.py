"""The README's tour and every shell command in docs/ work as written.

Every ```sh (or bash/shell/console) block of README.md and docs/*.md is extracted. The fast
test parses each `straits ...` invocation with the real command tree (so a renamed command or
option, or a missing required one, fails at once); the slow one runs every block, file by file
in one shell (variables carry over, as for a reader following along), in a fresh directory
that has only `examples/` and `.venv/`, and checks each command's exit status: 0, or N where
the line's comment starts with `exit N`.

A block preceded by `<!-- doc-test: skip: REASON -->`, or a line whose comment says
`doc-test: skip: REASON`, is not run (a server that runs until stopped, `make test` itself).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import typer

from straits.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = ("sh", "bash", "shell", "console")
FENCE = re.compile(r"^```\s*([\w-]*)\s*$")
SKIP_BLOCK = re.compile(r"<!--\s*doc-test:\s*skip:?\s*(.*?)\s*-->")
EXPECT = re.compile(r"#\s*exit (\d+)\b")


@dataclass(frozen=True)
class Command:
    file: str
    line: int
    text: str
    expect: int
    skip: str | None


@dataclass(frozen=True)
class Block:
    file: str
    line: int
    lang: str
    lines: tuple[tuple[int, str], ...]
    skip: str | None


def blocks(path: Path) -> list[Block]:
    out, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang, body = i + 1, m.group(1).lower(), []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append((i + 1, lines[i]))
            i += 1
        before = "\n".join(lines[max(0, start - 4) : start - 1])
        skip = SKIP_BLOCK.search(before)
        out.append(Block(path.name, start, lang, tuple(body), skip.group(1) if skip else None))
        i += 1
    return out


def _complete(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:  # an open quote: the command goes on
        return False
    return not text.rstrip().endswith("\\")


def commands(block: Block) -> list[Command]:
    out, buf, first = [], "", 0
    for n, raw in block.lines:
        line = raw[2:] if raw.startswith("$ ") else raw
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not buf:
            first = n
        buf = f"{buf}\n{line}" if buf else line
        if _complete(buf):
            comment = buf.rsplit("#", 1)[1] if "#" in buf else ""
            exp = EXPECT.search(buf)
            skip = re.search(r"doc-test:\s*skip:?\s*([^)]*)", comment)
            out.append(
                Command(
                    block.file,
                    first,
                    buf,
                    int(exp.group(1)) if exp else 0,
                    skip.group(1).strip() if skip else block.skip,
                )
            )
            buf = ""
    assert not buf, f"{block.file}:{first}: unterminated command {buf!r}"
    return out


def all_blocks() -> list[Block]:
    return [b for p in DOCS for b in blocks(p)]


def shell_blocks() -> list[Block]:
    return [b for b in all_blocks() if b.lang in SHELLS]


def invocations(text: str) -> list[list[str]]:
    """Every `straits ...` in a command line (in pipes and `$(...)` too), up to the next shell
    operator."""
    text = text.replace("\\\n", " ")  # a backslash-newline continues the line, as in sh
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = "#"
    tokens = list(lex)
    out: list[list[str]] = []
    cur: list[str] | None = None
    for tok in tokens:
        if tok == "straits" or tok.endswith("$(straits") or tok.endswith("=$(straits"):
            cur = []
            out.append(cur)
            continue
        if cur is not None:
            if set(tok) <= set("|&;<>()") or tok == "$":
                cur = None
            else:
                cur.append(tok)
    return out


def parse(args: list[str]) -> None:
    """Parse ``args`` as the real CLI would, without running anything."""
    cmd: click.Command = typer.main.get_command(app)
    ctx = cmd.make_context("straits", list(args))
    while isinstance(cmd, click.Group):
        rest = [*ctx.protected_args, *ctx.args]
        if not rest:
            return
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert sub is not None, f"no command {name!r}"
        ctx = sub.make_context(name, rest, parent=ctx)
        cmd = sub


def test_the_docs_have_commands_to_check() -> None:
    runnable = [c for b in shell_blocks() for c in commands(b) if c.skip is None]
    assert len(runnable) >= 25, runnable
    assert {c.file for c in runnable} >= {"README.md", "exports.md", "cli.md"}


def test_command_blocks_are_tagged_as_shell() -> None:
    """An untagged block of `straits` lines would be silently skipped: tag it ```sh."""
    for b in all_blocks():
        if b.lang == "" and any(ln.lstrip().startswith("straits ") for _, ln in b.lines):
            pytest.fail(f"{b.file}:{b.line}: a block of straits commands without ```sh")


@pytest.mark.parametrize("block", shell_blocks(), ids=lambda b: f"{b.file}:{b.line}")
def test_documented_commands_parse(block: Block) -> None:
    for c in commands(block):
        for args in invocations(c.text):
            try:
                parse(args)
            except click.exceptions.Exit:
                pass  # --help, --version
            except click.ClickException as exc:
                pytest.fail(f"{c.file}:{c.line}: `straits {shlex.join(args)}`: {exc}")


@pytest.mark.parametrize(
    "block", [b for b in all_blocks() if b.lang == "toml"], ids=lambda b: f"{b.file}:{b.line}"
)
def test_documented_config_files_load(block: Block, tmp_path: Path) -> None:
    from straits.cli.config import load_config

    f = tmp_path / "straits.toml"
    f.write_text("\n".join(ln for _, ln in block.lines) + "\n")
    load_config(f)


def _script(cmds: list[Command]) -> str:
    parts = []
    for i, c in enumerate(cmds):
        parts.append(f'{c.text}\necho "@@ {i} $?" >&3')
    return "\n".join(parts) + "\n"


@pytest.mark.slow
@pytest.mark.parametrize(
    "doc",
    [
        p
        for p in DOCS
        if any(c.skip is None for b in blocks(p) if b.lang in SHELLS for c in commands(b))
    ],
    ids=lambda p: p.name,
)
def test_documented_commands_run(doc: Path, tmp_path: Path) -> None:
    cmds = [c for b in blocks(doc) if b.lang in SHELLS for c in commands(b) if c.skip is None]
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRAITS_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        COLUMNS="120",
        PATH=f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}",
    )
    script = tmp_path / "doc.sh"
    script.write_text(_script(cmds))
    status = tmp_path / "status"
    with open(status, "w") as fd3:
        p = subprocess.run(
            ["bash", "-c", f"exec 3>{shlex.quote(str(status))}; . ./doc.sh"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            pass_fds=(fd3.fileno(),),
        )
    seen = dict(line.split()[1:] for line in status.read_text().splitlines())
    failures = []
    for i, c in enumerate(cmds):
        rc = seen.get(str(i))
        if rc is None or int(rc) != c.expect:
            failures.append(f"{c.file}:{c.line}: exit {rc} (expected {c.expect}): {c.text}")
    assert not failures, "\n".join(failures) + f"\n--- stderr ---\n{p.stderr[-4000:]}"
