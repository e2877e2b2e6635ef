"""Hostile ledger files and service inputs, third round: an export whose lines carry fields of
the wrong JSON type is bad input naming the line, not a log that verifies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hostile_corpus import DESIGN_REQUEST


def _straits(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    """Two recorded checks, exported."""
    d = tmp_path_factory.mktemp("export")
    db = f"sqlite:///{d / 'l.db'}"
    for _ in range(2):
        p = _straits(
            "check", "--json", "--record", "--db", db, cwd=d, stdin=json.dumps(DESIGN_REQUEST)
        )
        assert p.returncode == 0, p.stderr
    p = _straits("ledger", "export", "--db", db, "-o", "e.jsonl", cwd=d)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in (d / "e.jsonl").read_text().splitlines()]


# a string where Straits writes a number (`"seq": "2"`, and any digits int() reads: "٢" is
# Arabic-Indic 2) verified, exit 0, as did a number where it writes a string; a list or an
# object where it writes a string was "entry 2 was altered", exit 1: the file is not an export
RETYPED = [
    ("seq", "2"),
    ("seq", " 2 "),
    ("seq", "\u0662"),
    ("tenant_seq", "2"),
    ("tenant", 5),
    ("actor", ["cli:x"]),
    ("body", {}),
    ("recorded_at", None),
    ("salt", 0),
]


@pytest.mark.parametrize(("field", "value"), RETYPED, ids=[f"{f}={v!r}" for f, v in RETYPED])
def test_an_export_line_of_the_wrong_types_is_bad_input_naming_the_line(
    export: list[dict[str, object]], tmp_path: Path, field: str, value: object
) -> None:
    docs = [dict(d) for d in export]
    docs[1][field] = value
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    p = _straits("ledger", "verify", "--file", "x.jsonl", cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "line 2" in p.stderr and field in p.stderr and "Traceback" not in p.stderr


def test_the_export_as_written_still_verifies(
    export: list[dict[str, object]], tmp_path: Path
) -> None:
    (tmp_path / "x.jsonl").write_text("".join(json.dumps(d) + "\n" for d in export))
    p = _straits("ledger", "verify", "--file", "x.jsonl", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
