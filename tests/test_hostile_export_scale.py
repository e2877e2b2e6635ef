"""Enormous stages against the Kubernetes export.

A training stage is one JobSet whose Job is Indexed, one pod per node. The API server refuses
an Indexed Job of more than 100,000 pods (``maxParallelismForIndexedJob``), but it takes the
JobSet: a stage of 900,000 H100s (112,500 nodes) was exported with exit 0 as a JobSet whose
controller could never make its Job, so the stage never started. It is now refused (exit 2,
naming the assignment's chips), nothing written; other targets still take it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.errors import InputError
from straits.export import export_input, exporter, skypilot
from straits.export.base import replica_chips
from straits.export.k8s_objects import MAX_INDEXED_PODS
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.options import NODE
from straits.plandoc import make_document
from straits.rules import RuleSet

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"


def _pretrain_chip(plan: dict[str, Any]) -> str:
    return str(next(a["chip"] for a in plan["assignments"] if a["stage"] == "pretrain"))


@pytest.fixture(scope="module")
def huge(rules: RuleSet) -> tuple[Scenario, dict[str, Any]]:
    """The example with a million chips in every pool of the chip its pretrain stage is planned
    on (H100 until est33's estimator refit, H800 since), planned again on that chip."""
    doc = load_scenario(EXAMPLE).model_dump(mode="json")
    first = make_plan(Scenario.model_validate(doc), rules=rules, solver="greedy").to_json()
    chip = _pretrain_chip(first)
    for site in doc["sites"]:
        for pool in site["pools"]:
            if pool["chip"] == chip:
                pool["count"] = 1_000_000
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    assert _pretrain_chip(plan) == chip
    return sc, plan


def _with_pretrain_chips(plan: dict[str, Any], chips: int) -> tuple[dict[str, Any], int]:
    out = copy.deepcopy(plan)
    i = next(i for i, a in enumerate(out["assignments"]) if a["stage"] == "pretrain")
    out["assignments"][i]["chips"] = chips
    out["assignments"][i].pop("layout", None)  # it is of the planned chips (layout_fits)
    return out, i


@pytest.mark.parametrize("target", ["kubernetes", "karmada"])
def test_a_jobset_of_more_pods_than_an_indexed_job_holds_is_refused(
    target: str, huge: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    sc, plan = huge
    over, i = _with_pretrain_chips(plan, (MAX_INDEXED_PODS + 1) * NODE)
    inp = export_input(sc, over, rules, plan_id="huge", run="true")
    with pytest.raises(InputError) as e:
        exporter(target).render(inp)
    assert e.value.path == f"assignments[{i}].chips"
    # at the limit it is still one JobSet of one Indexed Job
    at, _ = _with_pretrain_chips(plan, MAX_INDEXED_PODS * NODE)
    files = exporter(target).render(export_input(sc, at, rules, plan_id="huge", run="t")).files
    pods = [
        d["spec"]["replicatedJobs"][0]["template"]["spec"]["parallelism"]
        for p, t in files.items()
        if p.endswith(".yaml")
        for d in yaml.safe_load_all(t)
        if d["kind"] == "JobSet"
    ]
    assert max(pods) == MAX_INDEXED_PODS


def test_the_cli_refuses_it_with_exit_2_and_writes_nothing(
    huge: tuple[Scenario, dict[str, Any]], tmp_path: Path
) -> None:
    sc, plan = huge
    over, i = _with_pretrain_chips(plan, 900_000)
    doc = make_document(over, sc.model_dump(mode="json"), {})
    doc.pop("id"), doc.pop("digest")  # an edited plan is a new one
    f = tmp_path / "huge.json"
    f.write_text(json.dumps(doc))

    def export(target: str, out: Path) -> subprocess.CompletedProcess[str]:
        args = ["export", str(f), "--to", target, "--run", "true", "-o", str(out)]
        return subprocess.run(
            [sys.executable, "-m", "straits", "-q", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "1000"},
            timeout=300,
        )

    p = export("all", tmp_path / "jobs")
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert f"assignments[{i}].chips" in p.stderr
    assert not (tmp_path / "jobs").exists()
    p = export("slurm", tmp_path / "slurm-jobs")  # sbatch is the judge of a partition's nodes
    assert p.returncode == 0, p.stderr


def test_a_long_context_replica_gets_its_chips_on_skypilot(rules: RuleSet) -> None:
    """A serving stage of 1M-token requests needs replicas of 48 H100s (the KV cache): the
    Kubernetes export asked 6 nodes of 8, SkyPilot's task 6 nodes of 4 (its candidates' replica
    sizes took no context), half of what one replica needs."""
    doc = load_scenario(EXAMPLE).model_dump(mode="json")
    stage = next(s for s in doc["workloads"][0]["stages"] if s["kind"] == "serve")
    stage["prompt_tokens"] = 1_000_000
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="ctx", run="true")
    job = next(j for j in inp.jobs if j.serving)
    assert job.replica_chips > NODE  # spans nodes
    files = exporter("skypilot").render(inp).files
    task = yaml.safe_load(files[f"skypilot/{job.name}.service.yaml"])
    candidates = task["resources"]["any_of"]
    per_node = [int(c["accelerators"].rsplit(":", 1)[1]) for c in candidates]
    assert task["num_nodes"] * per_node[0] == job.replica_chips
    context = stage["prompt_tokens"] + stage["output_tokens"]
    for c, n in zip(candidates, per_node, strict=True):
        chip = next(
            x.pool.chip
            for x in job.choices
            if c["accelerators"].startswith(skypilot.accelerator(x) + ":")
        )
        assert task["num_nodes"] * n >= replica_chips(sc, job.workload, chip, context=context)
