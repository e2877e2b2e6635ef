"""`rules list --date`, `rules diff DATE1 DATE2` and `rules replay --since` read dates as every
other command does (`impact --date`, `plan --recheck --date`): YYYY-MM-DD within the dates
Straits plans for, else exit 2. They read them with `date.fromisoformat`, which also took
`20250601`, `2025-W23-1` and any year from 0001 to 9999."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_cli_conventions import ROOT, run

#: (date, exit status): the same for every command that takes a date
DATES = [
    ("2025-06-01", 0),
    ("2000-01-01", 0),
    ("2100-12-31", 0),
    ("20250601", 2),  # ISO basic
    ("2025-W23-1", 2),  # ISO week date
    ("2025-06-01T00:00", 2),
    ("2025-02-30", 2),
    ("1999-12-31", 2),  # before the dates Straits plans for
    ("2101-01-01", 2),  # after them
    ("0001-01-01", 2),
    ("9999-12-31", 2),
    ("", 2),
]


@pytest.mark.parametrize(("date", "code"), DATES)
def test_rules_list_and_diff_take_the_dates_impact_takes(date: str, code: int) -> None:
    listed = run("rules", "list", "--date", date, "-o", "json")
    assert listed.returncode == code, listed.stderr
    diffed = run("rules", "diff", "2025-04-08", date, "-o", "json")
    assert diffed.returncode == code, diffed.stderr
    first = run("rules", "diff", date, "--vs", "ai-diffusion", "-o", "json")
    assert first.returncode == code, first.stderr
    if code:
        assert "Traceback" not in listed.stderr + diffed.stderr + first.stderr
        assert "--date" in listed.stderr
        assert "DATE2" in diffed.stderr and "DATE1" in first.stderr


REFERENCE = [d for d in DATES if d[0] in ("2025-06-01", "20250601", "2025-W23-1", "1999-12-31")]


@pytest.fixture(scope="module")
def plan_doc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = run("plan", str(ROOT / "examples" / "offshore-2025.yaml"), "-o", "json", "-q")
    assert p.returncode == 0, p.stderr
    f = tmp_path_factory.mktemp("plan") / "plan.json"
    f.write_text(p.stdout)
    return f


@pytest.mark.parametrize(("date", "code"), REFERENCE)
def test_impact_and_plan_recheck_agree(date: str, code: int, plan_doc: Path) -> None:
    """The reference: `impact --date` and `plan --recheck --date` (which took 1999-12-31 and
    re-checked as of the plan's own date, exit 0)."""
    p = run("impact", "--date", date, "--plan", str(plan_doc), "--no-replan", "-q")
    assert p.returncode == code, p.stderr
    p = run("plan", str(plan_doc), "--recheck", "--date", date, "-q")
    assert p.returncode == code, p.stderr


def test_the_table_prints_the_date_as_read() -> None:
    p = run("rules", "list", "--date", "2025-6-1", columns=200)
    assert p.returncode == 0, p.stderr
    assert "in force on 2025-06-01 (enacted)" in p.stdout
