"""Fixtures and helpers shared by the export tests: the shipped scenario's plan, its export
input, and readers of the exported files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.export import export_input
from straits.export.base import ExportInput
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.recheck import PlanContext
from straits.rules import RuleSet

K8S_VERSION = "1.31"


@pytest.fixture(scope="module")
def demo(example_path: Path, rules: RuleSet) -> tuple[Scenario, dict[str, Any]]:
    sc = load_scenario(example_path)
    return sc, make_plan(sc, rules=rules, time_limit=5).to_json()


@pytest.fixture(scope="module")
def inp(demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> ExportInput:
    sc, plan = demo
    return export_input(sc, plan, rules, plan_id="test-plan", run="python train.py")


def _lawful(ctx: PlanContext, workload: str, stage: str, site: str, chip: str) -> bool:
    w = ctx.sc.workload(workload)
    o = ctx.option(w, w.stage(stage), site, chip, False)
    return o is not None and ctx.verdict(w, w.stage(stage), o).lawful


def _ctx(demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> PlanContext:
    sc, plan = demo
    return PlanContext(sc, plan, rules, date=sc.date, regime=plan["regime"])


def _docs(files: dict[str, str]) -> list[dict[str, Any]]:
    return [d for p, t in files.items() if p.endswith(".yaml") for d in yaml.safe_load_all(t) if d]


def _tasks(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """SkyPilot tasks of the export (pipeline documents and services) by task name."""
    return {d["name"]: d for d in _docs(files) if "resources" in d}


def _objects(files: dict[str, str], kind: str) -> list[dict[str, Any]]:
    return [d for d in _docs(files) if d.get("kind") == kind]


#: for srun stand-ins: ``step "$@"`` runs the step srun was given (its options dropped) on one
#: node, as srun would, so the exported task shell, and its record that the command ran to its
#: end, are what the tests exercise; ``STRAITS_COMMAND=... step "$@"`` swaps the command
RUN_STEP = """step() {
  while [ "${1#-}" != "$1" ]; do shift; done
  SLURM_NODEID=0 "$@"
}
"""


def _containers(obj: Any) -> list[dict[str, Any]]:
    """Every container spec under a Kubernetes object (however deeply nested)."""
    if isinstance(obj, dict):
        if "containers" in obj:
            return list(obj["containers"])
        return [c for v in obj.values() for c in _containers(v)]
    if isinstance(obj, list):
        return [c for v in obj for c in _containers(v)]
    return []


def offline_job(
    tmp_path: Path,
    srun: str,
    out: Path,
    *,
    nodes: tuple[str, ...] = ("node-a",),
    job_id: str = "42",
) -> dict[str, str]:
    """The environment an exported batch script sees inside a job, with no Slurm: stand-ins
    for ``scontrol`` (it lists ``nodes``) and ``srun`` (the script ``srun``) first on PATH, the
    allocation's variables, ``OUT`` for what the stand-ins record and ``HOME`` in tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "scontrol").write_text("#!/bin/sh\n" + "".join(f"echo {n}\n" for n in nodes))
    (bin_dir / "srun").write_text(srun)
    for f in ("scontrol", "srun"):
        (bin_dir / f).chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "OUT": str(out),
        "HOME": str(tmp_path),
        "SLURM_JOB_NODELIST": ",".join(nodes),
        "SLURM_JOB_ID": job_id,
        "SLURM_JOB_NUM_NODES": str(len(nodes)),
    }


def _pipelines(files: dict[str, str]) -> dict[str, list[str]]:
    """Each pipeline's name and its tasks' stages, in order."""
    out = {}
    for path, text in files.items():
        if path.endswith(".pipeline.yaml"):
            docs = list(yaml.safe_load_all(text))
            out[docs[0]["name"]] = [d["envs"]["STRAITS_STAGE"] for d in docs[1:]]
    return out
