"""A plan names the stages the rules block on a later day they run on (h49): the planner asks
the rules in force on the scenario's date, and a serving stage placed in Malaysia from November
under the AI Diffusion rule, planned on 1 May 2025, came back lawful with no word, although the
rule blocked Tier 3 parties' use of H100s there from 15 May."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.ahead import rules_ahead
from straits.plan.deadline import Deadline
from straits.rules import RuleSet

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "offshore-2025.yaml"
RULE = "us-diffusion-tier3-hq-compute"


def _scenario(date: str, regime: str) -> Scenario:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["date"], doc["regime"] = date, regime
    return parse_scenario(doc)


def _ahead(notes: tuple[str, ...] | list[str]) -> list[str]:
    return [n for n in notes if "when the rules in force block it" in n]


def test_a_stage_running_past_a_blocking_rule_is_noted_once(rules: RuleSet) -> None:
    sc = _scenario("2025-05-01", "ai-diffusion")
    plan = make_plan(sc, rules=rules, solver="greedy")
    blocked = _ahead(plan.notes)
    assert len(blocked) == 1  # once, on the first day, not on every later change
    (note,) = blocked
    assert RULE in note and "2025-05-15" in note
    (a,) = [a for a in plan.assignments if f"{a.workload}/{a.stage}" in note]
    assert a.site == "my-johor" and a.chip == "H100-SXM"
    assert "ahead" in (plan.timings or {})["phases"]


@pytest.mark.parametrize(
    ("date", "regime"), [("2025-05-15", "ai-diffusion"), ("2025-05-01", "enacted")]
)
def test_no_note_where_no_later_rule_blocks_a_stage(rules: RuleSet, date: str, regime: str) -> None:
    plan = make_plan(_scenario(date, regime), rules=rules, solver="greedy")
    assert plan.assignments
    assert _ahead(plan.notes) == []


def test_days_left_unchecked_by_the_time_limit_are_said(rules: RuleSet) -> None:
    sc = _scenario("2025-05-01", "ai-diffusion")
    plan = make_plan(sc, rules=rules, solver="greedy")
    spent = Deadline(1.0, clock=iter([0.0, 5.0, 5.0, 5.0]).__next__)  # started, then spent
    notes = rules_ahead(plan, sc, rules, "ai-diffusion", spent)
    assert len(notes) == 1 and "2025-05-15" in notes[0] and "unchecked" in notes[0]
    assert dt.date(2025, 5, 15).isoformat() in notes[0]


def test_a_requirement_that_lapses_before_a_stage_starts_is_no_note(rules: RuleSet) -> None:
    """The 2023 standard-contract rule (cn-sa-2022-contract, 2023-06-01 to 2024-03-21) does not
    block a fine-tune that starts in June 2024, when 50,000 individuals' data is exempt: it was
    named blocked "on 2023-06-01", a day it did not run."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["date"] = "2023-05-01"
    doc["tenants"][0]["authorizations"] = ["pipl-art38-basis"]
    next(d for d in doc["datasets"] if d["id"] == "cn-dialogs")["subjects"] = 50000
    w = doc["workloads"][0]
    w["deadline"] = "2026-12-31"
    next(s for s in w["stages"] if s["id"] == "sft")["locations"] = ["SG"]
    plan = make_plan(parse_scenario(doc), rules=rules, solver="greedy")
    (sft,) = [a for a in plan.assignments if a.stage == "sft"]
    assert sft.site == "sg-jurong"
    assert (plan.start + dt.timedelta(hours=sft.start_h)).date() > dt.date(2024, 3, 21)
    assert _ahead(plan.notes) == []


def test_a_stage_that_starts_after_the_day_is_named_with_its_start(rules: RuleSet) -> None:
    plan = make_plan(_scenario("2025-05-01", "ai-diffusion"), rules=rules, solver="greedy")
    (note,) = _ahead(plan.notes)
    (a,) = [a for a in plan.assignments if f"{a.workload}/{a.stage}" in note]
    start = (plan.start + dt.timedelta(hours=a.start_h)).date()
    assert start > dt.date(2025, 5, 15)
    assert f"starts on {start.isoformat()}" in note and "runs on 2025-05-15" not in note
