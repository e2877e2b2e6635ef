"""``straits export -o -`` (a .tar.gz on standard output) when standard output takes nothing.

Started with standard output closed (``>&-``) it ended in an AttributeError traceback (the
closed stand-in has no binary buffer); into a full disk (``> /dev/full``) it said ``--out:
cannot write`` with exit 2, the status of bad input. Both are now what every other command
does: one error line about standard output, exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"
ARGS = ("export", str(EXAMPLE), "--to", "slurm", "--run", "true", "-o", "-")


def _run(redirect: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["sh", "-c", f'exec "$0" -m straits "$@" {redirect}', sys.executable, *ARGS],
        capture_output=True,
        timeout=300,
    )


@pytest.mark.parametrize("redirect", [">&-", "> /dev/full"])
def test_an_archive_to_a_standard_output_that_takes_nothing_is_exit_1(redirect: str) -> None:
    if "full" in redirect and not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    p = _run(redirect)
    assert p.returncode == 1, p.stderr
    assert b"Traceback" not in p.stderr
    assert p.stderr.count(b"error:") == 1 and b"standard output" in p.stderr, p.stderr


def test_an_archive_to_a_pipe_is_written_whole() -> None:
    p = subprocess.run([sys.executable, "-m", "straits", *ARGS], capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr
    listing = subprocess.run(
        ["tar", "tz"], input=p.stdout, capture_output=True, check=True, timeout=60
    )
    assert any(n.endswith("/submit.sh") for n in listing.stdout.decode().split())
