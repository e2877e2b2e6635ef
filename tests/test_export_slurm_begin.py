"""Slurm starts no stage before its planned start (pass atk91: a stage the plan holds for
chips still to arrive was released when its predecessor ended). ``submit.sh`` adds
``--begin=now+SECONDS`` to a stage's first job when the planned start is still to come, and
nothing when it has passed (the examples' 2025 plans run at once, as before)."""

from __future__ import annotations

import copy
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from straits.export import export_input, exporter
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from test_export_slurm import _submit_offline


@pytest.fixture(scope="module")
def planned(example_path: Path, rules: RuleSet) -> tuple[Any, dict[str, Any]]:
    sc = load_scenario(example_path)
    return sc, make_plan(sc, rules=rules, time_limit=5).to_json()


def _shifted(plan: dict[str, Any], by: dt.timedelta) -> dict[str, Any]:
    out = copy.deepcopy(plan)
    for a in out["assignments"]:
        for k in ("start", "end"):
            t = dt.datetime.fromisoformat(a[k].replace("Z", "+00:00")) + by
            a[k] = t.isoformat()
    return out


def _first_jobs(calls: list[list[str]]) -> dict[str, list[str]]:
    """Each stage's first job's sbatch arguments, by script name."""
    out: dict[str, list[str]] = {}
    for _jid, *args in calls:
        if "STRAITS_SEGMENT=1," in " ".join(args):
            out.setdefault(args[-1].removesuffix(".sbatch"), args)
    return out


@pytest.mark.parametrize("years", [0, 80])
def test_a_stage_does_not_start_before_its_planned_start(
    planned: tuple[Any, dict[str, Any]], rules: RuleSet, tmp_path: Path, years: int
) -> None:
    sc, plan = planned
    plan = _shifted(plan, dt.timedelta(days=365 * years))
    inp = export_input(sc, plan, rules, plan_id="begin", run="python train.py")
    before = time.time()
    calls = _submit_offline(exporter("slurm").render(inp).files, tmp_path)
    after = time.time()
    first = _first_jobs(calls)
    assert set(first) == {j.name for j in inp.jobs}
    for job in inp.jobs:
        begins = [a for a in first[job.name] if a.startswith("--begin=")]
        start = job.placement.start.timestamp()
        if start <= before:
            assert begins == []
            continue
        assert len(begins) == 1
        wait = int(begins[0].removeprefix("--begin=now+"))
        assert start - after - 1 <= wait <= start - before + 1
    later = [a for _jid, *args in calls if "STRAITS_SEGMENT=1," not in " ".join(args) for a in args]
    assert not [a for a in later if a.startswith("--begin")]  # parts after the first follow it
