"""`straits worker` and `straits serve` with a --rules that holds no rule pack are exit 2
naming it with no database made: the database was created and migrated first (a 140 KB file
left behind by a command refused for its input)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_cli_conventions import run


@pytest.mark.parametrize("command", [("worker",), ("serve", "--port", "18765")])
def test_bad_rules_make_no_database(tmp_path: Path, command: tuple[str, ...]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    db = tmp_path / "new.db"
    r = run(*command, "--rules", str(empty), "--db", f"sqlite:///{db}")
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert str(empty) in r.stderr, r.stderr
    assert not db.exists()
