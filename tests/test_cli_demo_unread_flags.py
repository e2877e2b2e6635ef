"""`straits demo` refuses the flags its other flags leave unread (h49): `--no-record --db URL`
opened no database and `--no-report --report DIR` wrote no report, both exit 0 with the
flag dropped, where docs/cli.md says such a flag is exit 2 naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from straits.cli import app


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--no-record", "--db", "sqlite:///DIR/x.db", "--no-report"], "--db"),
        (["--no-record", "--no-report", "--report", "DIR/reports"], "--report"),
    ],
)
def test_a_flag_the_demo_would_not_read_is_refused(
    tmp_path: Path, args: list[str], flag: str
) -> None:
    argv = ["demo", "-o", "json", *(a.replace("DIR", str(tmp_path)) for a in args)]
    r = CliRunner().invoke(app, argv)
    assert r.exit_code == 2
    assert flag in r.output
    assert list(tmp_path.iterdir()) == []
