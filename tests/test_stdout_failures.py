"""Standard output that takes no more: ``> /dev/full`` (a full disk), closed, or a reader that
closes the pipe at once.

Every command said so in one line and exited 1, where it ended in an OSError traceback
(``cli.output.GuardedStdout``, ``fileio.write_stdout``). ``tokens create`` has more at stake:
the token was stored and its secret, printed nowhere, lost while the token stayed valid. It
is revoked now when its secret could not be printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FULL = "/dev/full"

pytestmark = pytest.mark.skipif(not os.path.exists(FULL), reason="needs /dev/full (Linux)")


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "PYTHONPATH": str(ROOT / "src"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "STRAITS_DATABASE_URL": f"sqlite:///{tmp_path / 'straits.db'}",
    }


def _run(args: list[str], tmp_path: Path, stdout: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["chips"],
        ["chips", "--json"],
        ["chips", "-o", "yaml"],
        ["rules", "list"],
        ["estimate", "--help"],
        ["--help"],
    ],
    ids=lambda a: " ".join(a),
)
def test_a_full_stdout_is_one_error_line(args: list[str], tmp_path: Path) -> None:
    with open(FULL, "w") as full:
        p = _run(args, tmp_path, full)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert "standard output" in p.stderr
    assert "Exception ignored" not in p.stderr  # the last flush is quiet too


def _tokens(tmp_path: Path) -> list[dict[str, Any]]:
    p = _run(["tokens", "list", "--json"], tmp_path, subprocess.PIPE)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("fmt", [[], ["--json"], ["-o", "yaml"]], ids=["table", "json", "yaml"])
@pytest.mark.parametrize("where", ["full", "closed", "pipe closed"])
def test_a_token_that_could_not_be_printed_is_revoked(
    where: str, fmt: list[str], tmp_path: Path
) -> None:
    args = ["tokens", "create", "--tenant", "acme", "--role", "viewer", *fmt]
    if where == "full":
        with open(FULL, "w") as full:
            p = _run(args, tmp_path, full)
    elif where == "closed":
        p = subprocess.run(
            [sys.executable, "-m", "straits", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(tmp_path),
            cwd=tmp_path,
            timeout=120,
            preexec_fn=lambda: os.close(1),
        )
    else:
        r, w = os.pipe()
        os.close(r)  # nobody will read it
        with os.fdopen(w, "w") as pipe:
            p = _run(args, tmp_path, pipe)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    rows = _tokens(tmp_path)
    assert len(rows) == 1 and rows[0]["revoked_at"] is not None


def test_a_printed_token_stays_valid(tmp_path: Path) -> None:
    p = _run(
        ["tokens", "create", "--tenant", "acme", "--role", "viewer"], tmp_path, subprocess.PIPE
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip()
    rows = _tokens(tmp_path)
    assert len(rows) == 1 and rows[0]["revoked_at"] is None


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["plan", "no-such-file.yaml"], 2),  # an error whose line cannot be shown keeps its status
        (["chips", "--bogus"], 2),
        (["chips"], 0),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else str(a),
)
def test_a_full_stderr_keeps_the_exit_status(args: list[str], code: int, tmp_path: Path) -> None:
    with open(FULL, "w") as full:
        p = subprocess.run(
            [sys.executable, "-m", "straits", *args],
            stdout=subprocess.DEVNULL,
            stderr=full,
            env=_env(tmp_path),
            cwd=tmp_path,
            timeout=120,
        )
    assert p.returncode == code
