"""`straits report`'s options against what a run reads (h49): `--regime` takes the regimes
`plan --regime` takes, and `--pareto` refuses the flags only a recorded plan reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from straits.cli import app


@pytest.mark.parametrize("extra", [[], ["--pareto", "2"]])
def test_an_unknown_regime_is_a_usage_error_naming_it(
    example_path: Path, tmp_path: Path, extra: list[str]
) -> None:
    """`--regime` was free text: `--regime foo` reached the planner and ended in a pydantic
    traceback, exit 1, where `plan` and `impact` answer a usage error, exit 2."""
    out = tmp_path / "r.html"
    args = ["report", str(example_path), "-o", str(out), "--regime", "foo", *extra]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "--regime" in r.output
    assert not out.exists()


@pytest.mark.parametrize("flag", [["--key", "ledger.key"], ["--db", "sqlite:///x.db"]])
def test_a_frontier_refuses_the_flags_of_a_recorded_plan(
    example_path: Path, tmp_path: Path, flag: list[str]
) -> None:
    """`report SCENARIO --key K` is exit 2 (a scenario has no ledger entry to sign a receipt
    for), but with `--pareto 2` the same flag was taken and ignored, exit 0 (h49)."""
    out = tmp_path / "f.html"
    args = ["report", str(example_path), "-o", str(out), "--pareto", "2", *flag]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2
    assert flag[0] in r.output
    assert not out.exists()
