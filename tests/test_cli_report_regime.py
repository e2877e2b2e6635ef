"""`straits report SCENARIO --regime R` takes the regimes `plan --regime` takes, and nothing
else (h49): `--regime` was free text, so `--regime foo` reached the planner and ended in a
pydantic traceback, exit 1, where `plan` and `impact` answer a usage error, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from straits.cli import app


@pytest.mark.parametrize("extra", [[], ["--pareto", "2"]])
def test_an_unknown_regime_is_a_usage_error_naming_it(
    example_path: Path, tmp_path: Path, extra: list[str]
) -> None:
    out = tmp_path / "r.html"
    args = ["report", str(example_path), "-o", str(out), "--regime", "foo", *extra]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "--regime" in r.output
    assert not out.exists()
