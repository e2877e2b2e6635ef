"""The report's greedy baseline says that it counts late penalties (pass atk91). The plan's
`baseline_usd` is the greedy plan's cost plus penalties (docs/contracts.md); the summary put it
as "greedy baseline $13.11M" beside "Total cost $11.80M plus $1.31M late penalties" for a plan
that was the greedy one ("CP-SAT did not improve on the greedy plan"), as if the search had
saved $1.31M."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.report import plan_report
from straits.rules import ruleset

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


#: the late case's soft deadline: the example's own (2025-12-31) was missed under `ai-diffusion`
#: until issue 16's fifteenth pass (est40), whose refit ends its home pre-training on 2025-12-23;
#: a deadline months before any plan can end keeps the case late whatever the estimates
EARLY = "2025-10-01"


@pytest.mark.parametrize(
    ("regime", "deadline", "late"), [("enacted", None, False), ("ai-diffusion", EARLY, True)]
)
def test_the_baseline_is_shown_with_its_penalties(
    regime: str, deadline: str | None, late: bool
) -> None:
    doc = yaml.safe_load((EXAMPLES / "offshore-2025.yaml").read_text(encoding="utf-8"))
    if deadline is not None:
        doc["workloads"][0]["deadline"] = deadline
    sc = parse_scenario(doc)
    rules = ruleset(())
    plan = make_plan(sc, rules=rules, regime=regime, time_limit=20).to_json()
    assert (plan["penalty_usd"] > 0) == late
    # the greedy plan's cost plus its penalties (under the enacted rules the search has improved
    # on the greedy plan since est33's estimator refit: $12.08M against a $13.31M baseline)
    greedy = make_plan(sc, rules=rules, regime=regime, solver="greedy").to_json()
    assert plan["baseline_usd"] == pytest.approx(greedy["total_cost_usd"] + greedy["penalty_usd"])
    html = plan_report(plan, sc, rules, source="test")
    shown = re.search(r'data-field="baseline_usd">([^<]*)<', html)
    assert shown is not None
    assert "penalties included" in shown.group(1)
