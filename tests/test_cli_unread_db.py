"""`--db` given on the command line where no recorded plan is read and nothing is recorded is
exit 2 naming it (docs/cli.md, doc49's left-over): `export plan.json --db URL`, `impact --plan
plan.json --db URL`, `plan plan.json --recheck --db URL` and `plan F --db URL` without
--record took the database and never opened it, exit 0. A database from the environment is
a default, never refused; a recorded plan id reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_cli_conventions import run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "offshore-2025.yaml")
NOWHERE = "sqlite:////nonexistent-straits-dir/x.db"  # opened, it would be exit 1


@pytest.mark.parametrize(
    "args",
    [
        ("export", "{plan}", "--to", "slurm", "-o", "{tmp}/out"),
        ("impact", "--date", "2025-06-01", "--plan", "{plan}", "--no-replan"),
        ("plan", "{plan}", "--recheck"),
        ("plan", "{plan}", "--show"),
        ("plan", EXAMPLE, "--solver", "greedy"),
    ],
)
def test_a_db_flag_no_run_reads_is_refused(
    plan_file: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    argv = [a.format(plan=plan_file, tmp=tmp_path) for a in args]
    r = run(*argv, "--db", NOWHERE)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert r.stderr.startswith("error: --db:"), r.stderr
    assert not (tmp_path / "out").exists()
    env = run(*argv, env={"STRAITS_DATABASE_URL": NOWHERE})  # a default: never refused
    assert env.returncode == 0, env.stderr


def test_a_recorded_plan_reads_the_db(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    r = run("plan", EXAMPLE, "--solver", "greedy", "--record", "-o", "id", "--db", db)
    assert r.returncode == 0, r.stderr
    plan_id = r.stdout.strip()
    out = tmp_path / "out"
    assert run("export", plan_id, "--to", "slurm", "-o", str(out), "--db", db).returncode == 0
    assert run("plan", plan_id, "--recheck", "--db", db).returncode == 0
    args = ("impact", "--date", "2025-06-01", "--no-replan", "--db", db)
    assert run(*args, "--plan", plan_id, "--plan", str(EXAMPLE)).returncode == 0
