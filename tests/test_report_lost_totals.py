"""The report's headline of the options lost over the plan names every reason (web50).

It drew the 8 most frequent reasons and dropped the rest without a word: the 1,000-workload
portfolio lost options to 14 reasons, and the line named 8, leaving out the PIPL contract and
assessment, the US D:5 destination and headquarters rules and the H20 licence (over 2,700
options) while it read as the whole plan's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.report import plan_report
from straits.rules import RuleSet


@pytest.fixture(scope="module")
def demo(rules: RuleSet, example_path: Path) -> tuple[Scenario, dict[str, Any]]:
    sc = load_scenario(example_path)
    return sc, make_plan(sc, rules=rules, solver="greedy").to_json(details=True)


def test_every_reason_is_counted_in_the_headline(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    sc, plan = demo
    plan = {**plan, "diagnosis": [dict(d) for d in plan["diagnosis"]]}
    extra = {f"reason {i:02d}": 1000 * (i + 1) for i in range(12)}
    plan["diagnosis"][0]["lost"] = {**plan["diagnosis"][0]["lost"], **extra}
    expected: dict[str, int] = {}
    for d in plan["diagnosis"]:
        for reason, n in d["lost"].items():
            expected[reason] = expected.get(reason, 0) + n
    html = plan_report(plan, sc, rules, source="demo")
    line = re.search(r'<p id="lost-totals">(.*?)</p>', html, re.S)
    assert line is not None
    shown = {r: int(n) for r, n in re.findall(r'data-reason="([^"]*)" data-count="(\d+)"', line[1])}
    assert shown == expected
    assert "12,000 reason 11" in line[1]
