"""Karmada failover only into clusters that can run the stage's templates.

A stage's Karmada resource templates are the planned site's objects: its namespace, Kueue
queue and priority class, checkpoint claim, GPU resource and GPU-type node labels, topology.
The PropagationPolicy listed every lawful cluster with the same chip as a fallback, so a
cluster whose LocalQueue or GPU labels are named otherwise was one Karmada could move the stage
into, where Kueue never admits it (no such LocalQueue) or no node matches: the stage hung
instead of failing over. Such a cluster is now left out of the policy, with a note."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from straits.export import export_input, exporter
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from test_hostile_export_plans import EXAMPLE

Edit = Callable[[dict[str, Any]], None]


def _site(doc: dict[str, Any], site: str) -> dict[str, Any]:
    return next(s for s in doc["sites"] if s["id"] == site)


def _queue(doc: dict[str, Any]) -> None:
    _site(doc, "sg-jurong")["targets"]["kubernetes"]["queue"] = "other-queue"


def _gpu_label(doc: dict[str, Any]) -> None:
    pool = next(p for p in _site(doc, "sg-jurong")["pools"] if p["chip"] == "H100-SXM")
    pool["targets"]["kubernetes_node_labels"] = {"nvidia.com/gpu.product": "H100"}


EDITS: dict[str, Edit] = {"queue": _queue, "gpu-label": _gpu_label}


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    """The example with its pre-train kept to Malaysia and Singapore: the greedy plan put it on
    Johor's H100s until est33's estimator refit (since, on cn-ulanqab's H800s, with no lawful
    cluster of that chip to fail over to); Johor's and Jurong's H100 clusters are the pair this
    pass is about."""
    doc: dict[str, Any] = load_scenario(EXAMPLE).model_dump(mode="json")
    assert doc["workloads"][0]["stages"][0]["id"] == "pretrain"
    doc["workloads"][0]["stages"][0]["locations"] = ["MY", "SG"]
    return doc


def _fallbacks(doc: dict[str, Any], rules: RuleSet) -> tuple[dict[str, list[str]], list[str]]:
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    res = exporter("karmada").render(export_input(sc, plan, rules, plan_id="k", run="true"))
    out = {}
    for path, text in res.files.items():
        for d in yaml.safe_load_all(text):
            if d["kind"] == "PropagationPolicy":
                groups = d["spec"]["placement"]["clusterAffinities"]
                out[path] = [c for g in groups[1:] for c in g["clusterNames"]]
    return out, res.notes


def test_a_cluster_that_names_things_alike_stays_a_fallback(
    base: dict[str, Any], rules: RuleSet
) -> None:
    fallbacks, _ = _fallbacks(copy.deepcopy(base), rules)
    assert fallbacks["karmada/chat-72b-pretrain.yaml"] == ["sg-jurong"]


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_cluster_that_names_them_otherwise_is_no_fallback(
    edit: str, base: dict[str, Any], rules: RuleSet
) -> None:
    doc = copy.deepcopy(base)
    EDITS[edit](doc)
    fallbacks, notes = _fallbacks(doc, rules)
    assert "sg-jurong" not in fallbacks["karmada/chat-72b-pretrain.yaml"]
    assert any(n.startswith("chat-72b/pretrain:") and "sg-jurong" in n for n in notes)
