"""The small scenarios the solver tests share: one tenant, one Singapore H100 pool, runs stated
by their duration (so they hold whatever the estimator's calibration), and the soundness checks
every plan must pass."""

from __future__ import annotations

import datetime as dt
from typing import Any

from invariants import (
    budget_violations,
    capacity_violations,
    deadline_violations,
    precedence_violations,
    residency_violations,
)
from straits.catalog import get_chip
from straits.estimate import estimate_training
from straits.loading import parse_scenario
from straits.model.scenario import ModelSpec, Scenario
from straits.plan.candidates import Candidates
from straits.plan.greedy import GreedyPlanner
from straits.plan.objectives import objective
from straits.plan.portfolio import Portfolio
from straits.plan.result import Plan
from straits.rules import ruleset

MODEL = {
    "params": 7e9,
    "layers": 32,
    "d_model": 4096,
    "heads": 32,
    "seq_len": 4096,
    "global_batch_tokens": 4e6,
}
DAY0 = dt.date(2025, 6, 1)
SOLVERS = ["greedy", "cpsat", "lns"]


def tokens_for(days: float) -> float:
    """Tokens of a run that takes ``days`` on the 64 H100s of :func:`scenario` (with a fixed
    batch, hours are proportional to tokens): the tests state durations, not token counts, so
    they hold whatever the estimator's calibration."""
    hours = estimate_training(ModelSpec(**MODEL), 1e11, get_chip("H100-SXM"), 64).hours
    return 1e11 * days * 24.0 / hours


def scenario(
    hq: str = "SG",
    pool: dict[str, Any] | None = None,
    workloads: int = 1,
    tokens: float = 1e11,
    chips: int | None = 64,
    **workload: Any,
) -> Scenario:
    """One tenant, one Singapore site with one H100 pool, ``workloads`` pre-training runs."""
    pool = pool or {"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 2.0}
    return parse_scenario(
        {
            "straits": 1,
            "name": "unit",
            "date": DAY0,
            "tenants": [{"id": "t", "hq": hq}],
            "sites": [{"id": "sg", "country": "SG", "operator_hq": "SG", "pools": [pool]}],
            "workloads": [
                {
                    "id": f"w{i}",
                    "tenant": "t",
                    "model": MODEL,
                    **workload,
                    "stages": [
                        {
                            "id": "pretrain",
                            "kind": "pretrain",
                            "tokens": tokens,
                            **({"chips": chips} if chips else {}),
                        }
                    ],
                }
                for i in range(workloads)
            ],
        }
    )


def hours(day: dt.date) -> float:
    return (day - DAY0).days * 24.0


def assert_sound(sc: Scenario, plan: Plan) -> None:
    assert capacity_violations(sc, plan) == []
    assert precedence_violations(sc, plan) == []
    assert deadline_violations(sc, plan) == []
    assert budget_violations(sc, plan) == []
    assert residency_violations(sc, plan) == []


def first_come() -> Scenario:
    """Two two-day runs due in three days; the cheap Singapore pool fits one at a time, a
    dearer Malaysian pool the other, and run b may only run in Singapore. The greedy planner
    gives Singapore to a (first by deadline and id), so b misses its deadline."""
    base = scenario(workloads=2, tokens=tokens_for(2.0), deadline=DAY0 + dt.timedelta(days=2))
    doc = base.model_dump(mode="json", exclude_none=True)
    doc["sites"].append(
        {
            "id": "my",
            "country": "MY",
            "operator_hq": "MY",
            "pools": [{"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": 3.0}],
        }
    )
    doc["workloads"][0]["id"], doc["workloads"][1]["id"] = "a", "b"
    doc["workloads"][1]["stages"][0]["locations"] = ["SG"]
    return parse_scenario(doc)


def _setup(sc: Scenario, goal: str = "cost") -> tuple[Candidates, GreedyPlanner, Plan, Portfolio]:
    cand = Candidates(sc, ruleset(), regime=sc.regime, date=sc.date)
    greedy = GreedyPlanner(cand, objective=objective(goal))
    plan = greedy.run()
    return cand, greedy, plan, Portfolio(cand, objective(goal), greedy.state)
