"""rev51: a plan recorded before obj51 still reads.

obj51 checks a scenario's ``objective`` with the planner's parser when the scenario is read.
A plan recorded before that (planned with ``--objective time`` over a scenario whose own
objective the planner refuses, or with a weight finer than 0.001 the old tolerance passed)
keeps that scenario in the store, and every read of it (``plan --show``, ``report``, the
console, ``rules replay``) refused the recorded plan, exit 2. A stored
scenario is read as recorded; a scenario a user gives is still checked."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import straits.plan.objectives as objectives
from straits.errors import ScenarioError
from straits.loading import parse_document, parse_scenario
from test_cli_conventions import run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "offshore-2025.yaml"
OLD = ["cost+cost", "cost+0.0001*time", "cost+500000.0001*time"]


def _doc(goal: str) -> dict[str, Any]:
    doc = parse_document(EXAMPLE.read_text(), source="example")
    assert isinstance(doc, dict)
    doc["objective"] = goal
    return doc


@pytest.mark.parametrize("goal", OLD)
def test_a_stored_scenario_reads_and_a_given_one_is_checked(goal: str) -> None:
    with pytest.raises(ScenarioError) as err:
        parse_scenario(_doc(goal), source="given")
    assert err.value.path == "objective"
    assert parse_scenario(_doc(goal), source="stored", stored=True).objective == goal


def _record_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], goal: str
) -> str:
    """Record a plan as the code before obj51 did: the scenario's objective unchecked, the plan
    made with ``--objective time``."""
    from straits.cli import main

    real = objectives.objective
    monkeypatch.setattr(objectives, "objective", lambda t: real("cost" if t == goal else t))
    path = tmp_path / "s.yaml"
    path.write_text(EXAMPLE.read_text().replace("\nobjective: cost\n", f"\nobjective: '{goal}'\n"))
    argv = ["plan", str(path), "--objective", "time", "--record", "--time-limit", "5"]
    monkeypatch.setattr(sys, "argv", ["in-process", *argv, "--db", _db(tmp_path), "-o", "id"])
    with pytest.raises(SystemExit):
        main()
    monkeypatch.setattr(objectives, "objective", real)
    printed = capsys.readouterr().out
    plan_id = printed.split()[-1]
    assert len(plan_id) == 32, printed
    return plan_id


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'old.db'}"


def test_a_plan_recorded_before_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_id = _record_as_before(tmp_path, monkeypatch, capsys, "cost+cost")
    db = _db(tmp_path)
    shown = run("plan", plan_id, "--show", "--db", db, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert plan_id in shown.stdout
    report = run("report", plan_id, "--db", db, "-o", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    verify = run("ledger", "verify", "--db", db)
    assert verify.returncode == 0, verify.stderr
