"""The model's cumulative training FLOPs through each stage (what export-control rules on
model weights ask about): each ancestor counted once, whatever the shape of the stages.

Each stage's total added its ancestors' totals, which already held their own ancestors: a
chain of three identical fine-tunes counted the first twice (4x, not 3x), a chain of n stages
2^(n-1) times, so a chain of about 1,100 stages overflowed to infinity and `straits plan` and
`straits export` of the scenario ended in a traceback (OverflowError in ``ops_key``); shorter
chains and diamonds overstated the FLOPs the rules compare with their thresholds (hostile pass
atk26)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan.candidates import Candidates
from straits.rules import RuleSet
from test_hostile_exports import SMALL

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "offshore-2025.yaml"


def _scenario(stages: list[dict[str, Any]]) -> Scenario:
    doc = yaml.safe_load(EXAMPLE.read_text())
    w = doc["workloads"][0]
    w.pop("deadline", None)
    w["model"] = SMALL
    w["stages"] = [{"kind": "finetune", "tokens": 1e7, "chips": 8, **s} for s in stages]
    doc["workloads"] = [w]
    return parse_scenario(doc, source="stages")


def _ops(sc: Scenario, rules: RuleSet) -> dict[str, float]:
    cand = Candidates(sc, rules, regime="enacted", date=sc.date)
    return cand.ops[sc.workloads[0].id]


def test_a_chain_counts_each_ancestor_once(rules: RuleSet) -> None:
    sc = _scenario([{"id": "a"}, {"id": "b", "after": ["a"]}, {"id": "c", "after": ["b"]}])
    ops = _ops(sc, rules)
    assert ops["a"] > 0
    assert ops["b"] == pytest.approx(2 * ops["a"])
    assert ops["c"] == pytest.approx(3 * ops["a"])


def test_a_diamond_counts_the_shared_ancestor_once(rules: RuleSet) -> None:
    sc = _scenario(
        [
            {"id": "a"},
            {"id": "b", "after": ["a"]},
            {"id": "c", "after": ["a"]},
            {"id": "d", "after": ["b", "c"]},
        ]
    )
    ops = _ops(sc, rules)
    assert ops["d"] == pytest.approx(4 * ops["a"])


def test_a_long_chain_stays_finite(rules: RuleSet) -> None:
    n = 1000
    sc = _scenario([{"id": "s0"}, *({"id": f"s{i}", "after": [f"s{i - 1}"]} for i in range(1, n))])
    ops = _ops(sc, rules)
    assert math.isfinite(ops[f"s{n - 1}"])
    assert ops[f"s{n - 1}"] == pytest.approx(n * ops["s0"])
