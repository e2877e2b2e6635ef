"""`straits rules replay --actor A` without `--record` is exit 2 (h49): the actor names who
records the replay, and without `--record` it was dropped, exit 0, as `plan` and `check`
refuse it (docs/cli.md)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from straits.cli import app


def test_an_actor_without_record_is_refused(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'none.db'}"
    args = ["rules", "replay", "--since", "2025-01-01", "--actor", "bob", "--db", db]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert "--actor" in r.output
    assert not (tmp_path / "none.db").exists()
