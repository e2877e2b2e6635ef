"""An exported serving stage asks for the planned chips in the estimator's replicas (pass
atk91). The estimator sizes a replica to a power of two (tensor parallelism); export rounded a
replica of more than a node to whole nodes instead: for a 4M-token context the 72B model needs
18 H20s a replica, the estimator prices 32-chip replicas, and the export wrote 85 replicas of
24 chips, 2,040 of the 2,048 planned, on every target."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.catalog import catalog
from straits.estimate.serving import replica_throughput
from straits.export.base import export_input
from straits.loading import parse_scenario
from straits.plan import make_plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("prompt_tokens", "replica"),
    [(None, 4), (2_000_000, 16), (3_000_000, 16), (4_000_000, 32), (5_000_000, 32)],
)
def test_exported_replicas_are_the_estimator_s_and_hold_the_planned_chips(
    rules_before_h20: Any, prompt_tokens: int | None, replica: int
) -> None:
    rules = rules_before_h20
    text = (ROOT / "examples" / "h20-2025.yaml").read_text("utf-8")
    if prompt_tokens is not None:
        serve = "days: 120, users: [CN],"
        text = text.replace(serve, f"{serve} prompt_tokens: {prompt_tokens},")
    sc = parse_scenario(yaml.safe_load(text), source="long-context")
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    jobs = [j for j in export_input(sc, plan, rules, plan_id="p").jobs if j.serving]
    assert [j.chips for j in jobs] == [2048]
    for job in jobs:
        stage = sc.workload(job.workload).stage(job.stage)
        est = replica_throughput(
            sc.workload(job.workload).model,
            catalog().get(job.placement.chip),
            stage.prompt_tokens,
            stage.output_tokens,
        )
        assert (job.replica_chips, est.replica_chips) == (replica, replica)
        assert job.replicas() * job.replica_chips == job.chips
