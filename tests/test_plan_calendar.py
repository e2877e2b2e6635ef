"""A plan never holds a time past the last date Straits plans (2100-12-31): an option that ends
in time beats one that would not, and a stage that can only end later is left unplaced
(``deadline``), with the stages after it (``predecessor``), as a stage that cannot meet a hard
deadline is. Before, one long stage was an OverflowError traceback (its end past year 9999),
a long chain wrote a plan document that export, report and impact refused to read back, and
then one such chain refused the whole plan (exit 2), every other workload's with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from straits.cli import app
from straits.limits import MAX_DATE
from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.rules import RuleSet

SMALL = {"params": 7e9, "active_params": 7e9, "layers": 32, "d_model": 4096, "heads": 32}


def _scenario(example_path: Path, tokens: list[float]) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(example_path.read_text())
    w = {**doc["workloads"][0], "model": {**SMALL, "seq_len": 4096}}
    for key in ("deadline", "budget_usd", "deadline_policy", "late_penalty_usd_per_day"):
        w.pop(key, None)
    w["stages"] = [
        {"id": f"s{i}", "kind": "finetune", "datasets": ["web-crawl"], "chips": 8, "tokens": t}
        | ({"after": [f"s{i - 1}"]} if i else {})
        for i, t in enumerate(tokens)
    ]
    doc["workloads"] = [w]
    return doc


@pytest.mark.parametrize(
    ("tokens", "stage"),
    [([1e17], 0), ([6e11] * 3 + [3e15] + [6e11], 3)],
    ids=["one stage for 60,000 years", "a chain past 2100"],
)
@pytest.mark.parametrize("solver", ["greedy", "cpsat", "lns"])
def test_a_stage_past_the_calendar_is_left_unplaced(
    example_path: Path, rules: RuleSet, tokens: list[float], stage: int, solver: str
) -> None:
    sc = parse_scenario(_scenario(example_path, tokens), source="t.yaml")
    doc = make_plan(sc, rules=rules, solver=solver, time_limit=10).to_json()
    assert [a["stage"] for a in doc["assignments"]] == [f"s{i}" for i in range(stage)]
    assert max((a["end"] for a in doc["assignments"]), default="") < "2101-01-01"
    unplaced = {u["stage"]: u for u in doc["unplaced"]}
    assert set(unplaced) == {f"s{i}" for i in range(stage, len(tokens))}
    if solver == "greedy":  # the search's unplaced stages carry the greedy plan's diagnosis
        first = unplaced[f"s{stage}"]
        assert first["lost_codes"].get("deadline", 0) >= 1
        # grouped as past the calendar, not as a deadline the workload does not have
        assert "deadline" not in first["lost"]
        assert (
            first["lost"].get(f"past {MAX_DATE.isoformat()}", 0) == first["lost_codes"]["deadline"]
        )


def test_a_chain_within_the_calendar_is_planned(example_path: Path, rules: RuleSet) -> None:
    sc = parse_scenario(_scenario(example_path, [6e11] * 3), source="t.yaml")
    plan = make_plan(sc, rules=rules, solver="greedy")
    assert len(plan.assignments) == 3
    assert max(a["end"] for a in plan.to_json()["assignments"]) < "2100-12-31"


def test_the_command_exits_3_with_the_stage_unplaced(example_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(_scenario(example_path, [1e17])))
    r = CliRunner().invoke(app, ["plan", str(path), "--solver", "greedy", "--json"])
    assert r.exit_code == 3, r.output
    doc = json.loads(r.stdout)
    assert doc["assignments"] == []
    assert [u["stage"] for u in doc["unplaced"]] == ["s0"]


def test_the_frontier_offers_no_plan_past_the_calendar(example_path: Path, tmp_path: Path) -> None:
    """`plan --pareto` places no stage `plan` leaves unplaced: before, it printed a frontier
    whose one point ended 14,000 years on (exit 0)."""
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(_scenario(example_path, [1e17])))
    r = CliRunner().invoke(app, ["plan", str(path), "--pareto", "3", "--json"])
    assert r.exit_code in (2, 3), r.output  # nothing to trade off, or points with it unplaced
    ends = [e for line in r.output.splitlines() if '"end"' in line for e in line.split('"')[3:4]]
    assert all(e < "2101-01-01" for e in ends)


def test_a_frontier_within_the_calendar_is_printed(example_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(_scenario(example_path, [6e11] * 2)))
    r = CliRunner().invoke(app, ["plan", str(path), "--pareto", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert '"pareto"' in r.output


def test_a_frontier_that_leaves_stages_unplaced_exits_3(example_path: Path, tmp_path: Path) -> None:
    """`plan --pareto` answers as `plan` does (docs/contracts.md: 3 when some stages are not
    placed): before, a frontier whose every plan left a stage out exited 0. A budget of one
    dollar leaves the workload's stage unplaced in every plan."""
    doc = _scenario(example_path, [6e11])
    doc["workloads"][0]["budget_usd"] = 1
    path = tmp_path / "broke.yaml"
    path.write_text(yaml.safe_dump(doc))
    for extra in (["--json"], ["-o", str(tmp_path / "front.html")]):
        r = CliRunner().invoke(app, ["plan", str(path), "--pareto", "2", *extra])
        assert r.exit_code == 3, r.output
        if extra == ["--json"]:
            points = json.loads(r.stdout)["pareto"]
            assert points and all(p["unplaced"] == 1 for p in points)
    assert (tmp_path / "front.html").is_file()


def test_a_scenario_that_takes_the_whole_time_limit_to_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--time-limit` bounds reading too: a document still being read when the limit runs
    out stops there, exit 2 naming --time-limit and the file, nothing on stdout (before, a
    2 MB portfolio read for 7 s of a 5 s limit, then planned nothing). The clock is made to
    run out at once, so the test does not depend on the machine's speed."""
    from straits.plan.deadline import Deadline
    from straits.simulate.generate import generate_dict

    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(generate_dict(workloads=100, sites=50, seed=3)))
    monkeypatch.setattr(Deadline, "expired", property(lambda self: True))
    r = CliRunner(mix_stderr=False).invoke(app, ["plan", str(path), "--json", "--time-limit", "5"])
    assert r.exit_code == 2, r.output
    assert "--time-limit" in r.stderr and str(path) in r.stderr and not r.stdout.strip()


#: a fine-tuning of :data:`SMALL` that the cheap pool's 8 chips take about a year and a half
#: (541 days with the estimator as fitted in est39; 2T tokens took 465 days before it, 361 after)
SLOW_TOKENS = 3e12


def _cheap_but_slow(tokens: float) -> dict[str, Any]:
    """A cheap pool of 8 chips and a dear one of 4,096, a year before the calendar ends."""
    pool = {"chip": "H100-SXM"}
    return {
        "straits": 1,
        "name": "cheap-but-slow",
        "date": "2100-01-01",
        "tenants": [{"id": "t1", "hq": "SG"}],
        "sites": [
            {
                "id": site,
                "country": "SG",
                "operator_hq": "SG",
                "pools": [{**pool, "count": count, "usd_per_chip_hour": price}],
            }
            for site, count, price in (("cheap", 8, 1.0), ("big", 4096, 3.0))
        ],
        "datasets": [
            {
                "id": "d1",
                "tokens": 1e12,
                "size_gb": 10,
                "located_at": "cheap",
                "origin": "SG",
                "classes": ["public"],
            }
        ],
        "workloads": [
            {
                "id": "w1",
                "tenant": "t1",
                "model": {**SMALL, "seq_len": 4096},
                "stages": [{"id": "ft", "kind": "finetune", "datasets": ["d1"], "tokens": tokens}],
            }
        ],
    }


@pytest.mark.parametrize("solver", ["greedy", "cpsat", "lns"])
def test_an_option_ending_in_time_is_chosen_over_a_cheaper_one_past_the_calendar(
    rules: RuleSet, solver: str
) -> None:
    """The cheapest option (8 chips) would run about 540 days from 2100-01-01: every solver chose
    it and the plan was refused for running past 2100, although the dear pool ends the stage
    within weeks. Options past the calendar now lose (`deadline`) where one ends in time."""
    sc = parse_scenario(_cheap_but_slow(SLOW_TOKENS), source="t.yaml")
    plan = make_plan(sc, rules=rules, solver=solver, time_limit=10)
    assert [a.site for a in plan.assignments] == ["big"]
    assert max(a["end"] for a in plan.to_json()["assignments"]) < "2101-01-01"
    if solver == "greedy":
        (diag,) = plan.diagnosis
        assert diag.lost_codes.get("deadline", 0) >= 1


@pytest.mark.parametrize("solver", ["greedy", "cpsat", "lns"])
def test_with_no_option_in_time_the_stage_is_unplaced(rules: RuleSet, solver: str) -> None:
    doc = _cheap_but_slow(SLOW_TOKENS)
    doc["sites"] = doc["sites"][:1]  # the cheap pool alone
    plan = make_plan(parse_scenario(doc, source="t.yaml"), rules=rules, solver=solver)
    assert plan.assignments == ()
    assert [(u.workload, u.stage) for u in plan.unplaced] == [("w1", "ft")]


def test_a_chain_past_the_calendar_leaves_the_other_workloads_planned(rules: RuleSet) -> None:
    """A portfolio is planned around a workload it cannot finish by 2100-12-31: the generated
    1,000-workload portfolios of seeds 20001 and 20002 were refused whole (exit 2) because one
    serving stage, queued behind decades of work on a cheap pool, would end 86 h too late."""
    doc = _cheap_but_slow(SLOW_TOKENS)
    doc["sites"] = doc["sites"][:1]
    small = {**doc["workloads"][0], "id": "w2"}
    small["stages"] = [{"id": "ft", "kind": "finetune", "datasets": ["d1"], "tokens": 1e9}]
    doc["workloads"].append(small)
    plan = make_plan(parse_scenario(doc, source="t.yaml"), rules=rules, solver="greedy")
    assert [(a.workload, a.stage) for a in plan.assignments] == [("w2", "ft")]
    assert [(u.workload, u.stage) for u in plan.unplaced] == [("w1", "ft")]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("2101-01-01T00:00:00Z", True),  # the end of 2100-12-31: where a plan may end
        ("2100-12-31T23:59:59+00:00", True),
        ("2101-01-01T00:00:01Z", False),
        ("2100-12-31T20:00:00-05:00", False),  # 2101-01-01T01:00Z
        ("1999-12-31T23:59:59Z", False),
    ],
)
def test_a_plan_document_holds_times_up_to_the_calendar_end(text: str, ok: bool) -> None:
    """The planner lets a stage end at the end of 2100-12-31; the generated 1,000-workload
    portfolio of seed 20001 planned one so, and `report` refused its plan document."""
    from straits.plan_fields import _iso_instant

    if ok:
        assert _iso_instant(text) == text
    else:
        with pytest.raises(ValueError):
            _iso_instant(text)
