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


def _asked(target: str, files: dict[str, str], name: str) -> int:
    """Chips the target's serving object for ``name`` asks for in all: replicas x chips."""
    for path, text in files.items():
        if name not in path:
            continue
        for doc in yaml.safe_load_all(text):
            if not isinstance(doc, dict):
                continue
            if target == "skypilot" and "service" in doc:
                n, acc = doc["num_nodes"], doc["resources"]["any_of"][0]["accelerators"]
                return int(doc["service"]["replicas"]) * int(n) * int(acc.split(":")[1])
            if doc.get("kind") in ("Deployment", "LeaderWorkerSet"):
                spec = doc["spec"]
                tmpl = spec.get("template") or spec["leaderWorkerTemplate"]["workerTemplate"]
                size = spec.get("leaderWorkerTemplate", {}).get("size", 1)
                gpus = tmpl["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
                return int(spec["replicas"]) * int(size) * int(gpus)
    raise AssertionError(f"no serving object for {name} in {target}")


@pytest.mark.parametrize("target", ["skypilot", "kubernetes", "karmada"])
@pytest.mark.parametrize(("chips", "asked", "noted"), [(256, 256, False), (6, 4, True)])
def test_planned_serving_chips_that_are_no_whole_replicas_are_said(
    example_path: Path, target: str, chips: int, asked: int, noted: bool
) -> None:
    """A serving stage fixed at 6 chips of 4-chip replicas is exported as one replica: 4
    chips; the export said nothing of the other 2 (Slurm asks for all 6)."""
    from straits.export import exporter
    from straits.rules import ruleset

    rules = ruleset(())
    text = example_path.read_text("utf-8").replace(
        "after: [sft], chips: 256,", f"after: [sft], chips: {chips},"
    )
    sc = parse_scenario(yaml.safe_load(text), source="fixed-chips")
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="p", run="serve")
    res = exporter(target).render(inp)
    job = next(j for j in inp.jobs if j.serving)
    assert job.chips == chips
    assert _asked(target, res.files, job.name) == asked
    said = [n for n in res.notes if n.startswith(f"{job.workload}/{job.stage}:") and "replica" in n]
    assert bool(said) == noted
    if noted:
        assert f"{chips} chips" in said[0] and f"{asked} chips" in said[0]


@pytest.mark.parametrize("infra", ["kubernetes/my-johor", "aws/ap-southeast-1"])
def test_every_skypilot_serving_candidate_asks_the_planned_chips(
    example_path: Path, infra: str
) -> None:
    """SkyServe has one `replicas` for every candidate in `any_of`: a lawful H200 alternative
    asked as its own 2-chip replica took 64 x 2 = 128 chips where the plan (and the rules, "at
    256 chips") and the Kubernetes and Karmada exports ask 256. A smaller chip's own replica is
    no smaller than the planned one now."""
    from straits.export import exporter
    from straits.rules import ruleset

    rules = ruleset(())
    sc = parse_scenario(yaml.safe_load(example_path.read_text("utf-8")), source="offshore")
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="p", run="serve")
    job = next(j for j in inp.jobs if j.serving)
    task = yaml.safe_load(
        exporter("skypilot").render(inp).files[f"skypilot/{job.name}.service.yaml"]
    )
    replicas, nodes = task["service"]["replicas"], task["num_nodes"]
    asked = [
        replicas * nodes * int(r["accelerators"].split(":")[1])
        for r in task["resources"]["any_of"]
        if r["infra"] == infra
    ]
    assert asked and asked == [job.chips] * len(asked)
