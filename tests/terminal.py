"""Run the real command with stderr on a pseudo-terminal, as a person at a terminal runs it:
what it draws there (progress bars, spinners) and what it prints on stdout, apart."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def on_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """Run the command with stderr on a pseudo-terminal: (exit status, stdout, terminal)."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "straits", *args], stdout=subprocess.PIPE, stderr=slave, env=env
    )
    os.close(slave)
    out = proc.communicate(timeout=120)[0].decode()
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other end is closed: all read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")
