"""`tokens create --label` longer than its column (200 characters) is exit 2 naming --label,
nothing stored: SQLite stored a 100 KB label in the 200-character column (a table of tokens
a screen long per row), where PostgreSQL's varchar(200) refuses the same command."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli_conventions import run


def test_a_label_longer_than_its_column_is_refused(tmp_path: Path) -> None:
    env = {"STRAITS_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"}
    args = ("tokens", "create", "--tenant", "acme", "--role", "viewer", "--label")
    r = run(*args, "x" * 201, env=env)
    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    assert r.stderr.startswith("error: --label:"), r.stderr
    ok = run(*args, "x" * 200, env=env)
    assert ok.returncode == 0, ok.stderr
    listed = json.loads(run("tokens", "list", "--json", env=env).stdout)
    assert [len(t["label"]) for t in listed] == [200]


def test_a_bad_label_or_role_makes_no_database(tmp_path: Path) -> None:
    """A --label too long (or a --role unknown) was exit 2 after the database named by --db
    was made and migrated: the input's error left a new file behind."""
    for i, bad in enumerate((("--role", "viewer", "--label", "x" * 201), ("--role", "nope"))):
        db = tmp_path / f"new{i}.db"
        r = run("tokens", "create", "--tenant", "acme", *bad, "--db", f"sqlite:///{db}")
        assert r.returncode == 2, r.stderr
        assert not db.exists()
