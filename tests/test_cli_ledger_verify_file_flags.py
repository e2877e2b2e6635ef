"""`straits ledger verify --file F` refuses the database's flags (h49): `--quick` ("database
only") and `--db` were taken and ignored, the export rescanned in full, exit 0, where
docs/cli.md says a flag the command would not read is exit 2 naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from straits.cli import app


@pytest.mark.parametrize("flag", [["--quick"], ["--db", "sqlite:///elsewhere.db"]])
def test_an_export_check_refuses_the_flags_of_a_database(tmp_path: Path, flag: list[str]) -> None:
    export = tmp_path / "ledger.jsonl"
    export.write_text("")
    r = CliRunner().invoke(app, ["ledger", "verify", "--file", str(export), *flag])
    assert r.exit_code == 2
    assert flag[0] in r.output


def test_an_export_check_alone_still_runs(tmp_path: Path) -> None:
    export = tmp_path / "ledger.jsonl"
    export.write_text("")
    r = CliRunner().invoke(app, ["ledger", "verify", "--file", str(export), "--json"])
    assert r.exit_code == 0, r.output
