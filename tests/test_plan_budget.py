"""One time budget for the whole `straits plan`: the Deadline, phases that stop when their
share is spent, what a plan cut short says, and the timings in the JSON. Clocks are fakes:
the tests assert what the planner does when time runs out, never how fast a machine is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from invariants import (
    budget_violations,
    capacity_violations,
    deadline_violations,
    precedence_violations,
    residency_violations,
)
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.candidates import Candidates
from straits.plan.deadline import Deadline
from straits.plan.greedy import GreedyPlanner
from straits.plan.objectives import objective
from straits.plan.pareto import frontier
from straits.plan.reasons import ReasonCode
from straits.plan.result import Plan
from straits.rules import ruleset
from straits.simulate.generate import generate


class FakeClock:
    """A clock that moves only when told to (or by ``step`` at every reading)."""

    def __init__(self, step: float = 0.0) -> None:
        self.t = 100.0
        self.step = step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


def assert_sound(sc: Scenario, plan: Plan) -> None:
    for check in (
        capacity_violations,
        precedence_violations,
        deadline_violations,
        budget_violations,
        residency_violations,
    ):
        assert check(sc, plan) == []


# --- the Deadline --------------------------------------------------------------------------------
def test_a_deadline_counts_down_and_keeps_reserves() -> None:
    clock = FakeClock()
    d = Deadline(10, clock=clock)
    assert d.left() == 10 and not d.expired
    clock.t += 4
    assert d.left() == pytest.approx(6)
    assert d.until(2) == pytest.approx(4)
    assert d.at(2) == pytest.approx(clock.t + 4)
    clock.t += 7
    assert d.left() == 0 and d.expired and d.until(1) == 0
    assert Deadline.unlimited().left() == float("inf")


def test_a_command_counts_from_when_its_process_started() -> None:
    """The command's budget includes the interpreter's start and imports (Linux: /proc); a
    process that has lived longer (this test runner) starts the budget now."""
    code = (
        "from straits.plan.deadline import Deadline, process_age;"
        "d = Deadline.from_process_start(10); print(process_age() is not None,"
        " d.phases.get('start', 0.0) > 0, d.elapsed() >= d.phases.get('start', 0.0))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    if out[0] == "False":
        pytest.skip("no /proc: the budget starts when the command does")
    assert out == ["True", "True", "True"]


def test_a_long_lived_process_starts_the_budget_now(monkeypatch: pytest.MonkeyPatch) -> None:
    import straits.plan.deadline as deadline

    monkeypatch.setattr(deadline, "process_age", lambda: None)
    d = Deadline.from_process_start(10)
    assert "start" not in d.phases and d.elapsed() < 1.0


@pytest.mark.parametrize("limit", [0, -1, float("nan"), float("inf")])
def test_a_deadline_needs_a_positive_finite_limit(limit: float) -> None:
    with pytest.raises(ValueError):
        Deadline(limit)


def test_phases_add_up_and_counters_are_exclusive() -> None:
    clock = FakeClock()
    d = Deadline(60, clock=clock)
    with d.phase("greedy"):
        clock.t += 1
        with d.count("rule checks"):
            clock.t += 2
            with d.count("estimates"):  # estimates asked for by a rule check
                clock.t += 3
    with d.phase("greedy"):
        clock.t += 1
    assert d.phases == {"greedy": pytest.approx(7)}
    assert d.counters == {"rule checks": pytest.approx(2), "estimates": pytest.approx(3)}
    doc = d.to_json()
    assert doc["time_limit_s"] == 60 and doc["elapsed_s"] == pytest.approx(7)


# --- planners that stop when their share is spent ------------------------------------------------
def test_the_greedy_planner_stops_and_marks_what_it_did_not_reach() -> None:
    sc = generate(workloads=12, sites=6, seed=3)
    clock = FakeClock(step=0.001)  # one reading per workload
    cand = Candidates(sc, ruleset(), regime=sc.regime, date=sc.date)
    g = GreedyPlanner(cand, objective=objective("cost"), stop_at=clock.t + 0.005, clock=clock)
    plan = g.run()
    assert g.stopped
    cut = [d for d in plan.diagnosis if "time-limit" in d.lost_codes]
    assert cut and all(d.chosen is None for d in cut)
    assert all(d.lawful_and_free == 0 for d in cut)
    assert len(plan.unplaced) >= len(cut) and plan.status == "infeasible"
    assert any("time limit ran out" in n for n in plan.notes)
    assert_sound(sc, plan)


def test_out_of_time_after_a_volume_check_fails_drops_what_the_check_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the check of every placement against the year's final export volumes fails and
    no time is left to plan again, the failing placements and the stages after them are
    dropped (dropping exports only lowers the volumes the others were checked against) and
    say why; the rest of the plan stands, sound."""
    sc = generate(workloads=8, sites=6, seed=5)
    clock = FakeClock()
    cand = Candidates(sc, ruleset(), regime=sc.regime, date=sc.date)
    g = GreedyPlanner(cand, objective=objective("cost"), stop_at=clock.t + 1, clock=clock)
    real_failing = GreedyPlanner.failing
    chosen: list[tuple[str, str]] = []

    def failing(self: GreedyPlanner, state: Any) -> list[tuple[str, str]]:
        clock.t += 10  # the pass used the whole budget
        first = next(
            k for k in state.placed if any(k[1] in s.after for s in sc.workload(k[0]).stages)
        )
        chosen.append(first)
        return [*real_failing(self, state), first]

    monkeypatch.setattr(GreedyPlanner, "failing", failing)
    plan = g.run()
    assert g.rounds == 1 and chosen
    wid, sid = chosen[0]
    after = {s.id for s in sc.workload(wid).stages if sid in s.after}
    gone = {(d.workload, d.stage) for d in plan.unplaced if d.lost_codes.get("time-limit")}
    assert (wid, sid) in gone and {(wid, s) for s in after} <= {
        (d.workload, d.stage) for d in plan.unplaced
    }
    assert plan.assignment(wid, sid) is None
    assert_sound(sc, plan)


def test_a_plan_out_of_time_skips_the_search_and_says_so() -> None:
    sc = generate(workloads=10, sites=6, seed=1)
    clock = FakeClock(step=0.002)
    plan = make_plan(sc, solver="lns", deadline=Deadline(0.2, clock=clock))
    assert plan.search is not None and plan.search["answer"] == "greedy"
    assert "whole_model" not in plan.search
    assert any("time" in n for n in plan.notes)
    assert plan.timings is not None and "search" not in plan.timings["phases"]
    assert_sound(sc, plan)


def test_a_frontier_out_of_time_is_the_greedy_plan() -> None:
    sc = generate(workloads=4, sites=6, seed=2)
    cand = Candidates(sc, ruleset(), regime=sc.regime, date=sc.date)
    clock = FakeClock(step=0.05)  # every reading costs a twentieth of a second
    points = frontier(cand, points=4, deadline=Deadline(0.5, clock=clock))
    assert [p.status for p in points] == ["greedy"]
    assert points[0].unplaced == len(make_plan(sc, solver="greedy").unplaced)


@pytest.mark.parametrize("solver", ["greedy", "cpsat", "lns"])
def test_every_phase_is_timed(solver: str) -> None:
    sc = generate(workloads=6, sites=6, seed=4)
    plan = make_plan(sc, solver=solver, time_limit=10)
    assert plan.timings is not None
    phases = plan.timings["phases"]
    assert {"start", "rules", "candidates", "greedy"} <= set(phases)
    if solver != "greedy":
        assert {"model", "search"} <= set(phases)
    assert set(plan.timings["within"]) <= {"estimates", "rule checks"}
    # each figure is rounded to the millisecond
    assert sum(phases.values()) <= plan.timings["elapsed_s"] + 5e-4 * (len(phases) + 1)


# --- the command ---------------------------------------------------------------------------------
def _straits(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_command_reports_where_its_time_went(tmp_path: Path) -> None:
    out = tmp_path / "gen.yaml"
    assert (
        _straits(
            "scenario",
            "generate",
            "--workloads",
            "12",
            "--sites",
            "8",
            "--seed",
            "2",
            "-o",
            str(out),
        ).returncode
        == 0
    )
    p = _straits("plan", str(out), "--json", "--time-limit", "4")
    assert p.returncode in (0, 3), p.stderr
    doc = json.loads(p.stdout)
    t = doc["timings"]
    assert t["time_limit_s"] == 4
    assert {"start", "load", "rules", "greedy"} <= set(t["phases"])
    assert doc["search"]["requested"] == "auto" and doc["solver"] in ("cpsat", "lns")
    for d in doc["diagnosis"]:
        assert set(d["lost_codes"]) <= {c.value for c in ReasonCode}
    bad = _straits("plan", str(out), "--objective", "speed")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "unknown objective" in bad.stderr
