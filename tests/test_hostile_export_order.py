"""Stage order when a predecessor is not exported to the target (its site has no mapping for it).

A workload pre-trains offshore, fine-tunes on personal information at home (a site without a
SkyPilot or Kubernetes mapping), then fine-tunes again offshore. SkyPilot's export put the two
offshore stages into one managed-job pipeline, so the second fine-tune started the moment the
pre-train ended, before the fine-tune at home had even begun; Kubernetes' ``apply.sh`` applied
it at once (with a note). Slurm holds such a stage until released. Now the pipeline is split
there and ``launch.sh`` / ``apply.sh`` start the stage only once ``STRAITS_COMPLETED`` lists its
predecessor; a stage listed there is not started again."""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from export_support import _pipelines
from straits.export import export_input, exporter, write_bundle
from straits.export.base import ExportInput
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from test_export_kubernetes import _run_apply

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"
W = "chat-72b"

FAKE_SKY = """#!/bin/bash
# records what launch.sh asks of SkyPilot; every launch succeeds
echo "$*" >> "$SKYLOG"
"""


def _scenario(drop: str) -> Scenario:
    """The example with a second fine-tune (offshore) after the one at home, and the Chinese
    sites without a ``drop`` mapping; the pre-train in Malaysia, where the greedy plan put it
    until est33's estimator refit (since, on cn-ulanqab's H800s beside ``sft``, which the
    plans this pass is about run at home after a pre-train offshore)."""
    doc: dict[str, Any] = copy.deepcopy(load_scenario(EXAMPLE).model_dump(mode="json"))
    stages = doc["workloads"][0]["stages"]
    assert stages[0]["id"] == "pretrain"
    stages[0]["locations"] = ["MY"]
    stages.insert(
        2,
        {
            "id": "dpo",
            "kind": "finetune",
            "after": ["sft"],
            "tokens": 1.0e9,
            "locations": ["SG", "MY"],
        },
    )
    stages[3]["after"] = ["dpo"]
    for site in doc["sites"]:
        if site["country"] == "CN":
            site["targets"][drop] = None
    return Scenario.model_validate(doc)


def _input(drop: str, rules: RuleSet) -> ExportInput:
    sc = _scenario(drop)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="order-plan", run="true")
    where = {j.stage: j.planned.site.country for j in inp.jobs}
    assert where["sft"] == "CN" and where["pretrain"] != "CN" and where["dpo"] != "CN", where
    return inp


@pytest.fixture(scope="module")
def sky_inp(rules: RuleSet) -> ExportInput:
    return _input("skypilot", rules)


def _launch(files: dict[str, str], tmp_path: Path, completed: str | None) -> tuple[int, list[str]]:
    write_bundle(tmp_path, files, executable=(".sh",))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "sky").write_text(FAKE_SKY)
    (bin_dir / "sky").chmod(0o755)
    log = tmp_path / "sky.log"
    log.unlink(missing_ok=True)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SKYLOG": str(log)}
    env.pop("STRAITS_COMPLETED", None)
    if completed is not None:
        env["STRAITS_COMPLETED"] = completed
    p = subprocess.run(
        ["bash", str(tmp_path / "skypilot" / "launch.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return p.returncode, log.read_text().splitlines() if log.exists() else []


def test_a_pipeline_never_runs_a_stage_right_after_one_before_its_predecessor(
    sky_inp: ExportInput,
) -> None:
    files = exporter("skypilot").render(sky_inp).files
    pipelines = _pipelines(files)
    assert sorted(pipelines.values()) == [["dpo"], ["pretrain"]]  # was [["pretrain", "dpo"]]
    launch = files["skypilot/launch.sh"]
    subprocess.run(["bash", "-n", "-c", launch], check=True)


def test_launch_sh_waits_for_the_operator_before_a_stage_after_one_it_does_not_run(
    sky_inp: ExportInput, tmp_path: Path
) -> None:
    files = exporter("skypilot").render(sky_inp).files
    names = {tuple(stages): name for name, stages in _pipelines(files).items()}
    pre, dpo = names[("pretrain",)], names[("dpo",)]
    serve = next(j.name for j in sky_inp.jobs if j.serving)

    rc, log = _launch(files, tmp_path, None)
    assert rc != 0  # dpo (and the service after it) wait for sft
    assert [ln.split()[4] for ln in log] == [pre]

    rc, log = _launch(files, tmp_path, f"{W}/pretrain,{W}/sft")
    assert rc == 0
    assert [ln.split()[4] for ln in log] == [dpo, serve]  # pretrain is not launched again

    rc, log = _launch(files, tmp_path, f"{W}/sft")  # a rerun from the start
    assert rc == 0
    assert [ln.split()[4] for ln in log] == [pre, dpo, serve]


def test_apply_sh_waits_for_the_operator_before_a_stage_after_one_it_does_not_apply(
    rules: RuleSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inp = _input("kubernetes", rules)
    files = exporter("kubernetes").render(inp).files
    by_stage = {j.stage: j.name for j in inp.jobs}

    def applied(log: list[str]) -> list[str]:
        return [ln.split()[2].rsplit("/", 1)[1] for ln in log if ln.startswith("apply")]

    monkeypatch.delenv("STRAITS_COMPLETED", raising=False)
    p, log = _run_apply(files, tmp_path / "a")
    assert p.returncode != 0
    assert applied(log) == [f"{by_stage['pretrain']}.yaml"]

    monkeypatch.setenv("STRAITS_COMPLETED", f"{W}/pretrain,{W}/sft")
    p, log = _run_apply(files, tmp_path / "b")
    assert p.returncode == 0, p.stdout + p.stderr
    assert applied(log) == [f"{by_stage['dpo']}.yaml", f"{by_stage['serve-intl']}.yaml"]


def test_a_training_stage_after_a_service_is_launched_after_it(
    rules: RuleSet, tmp_path: Path
) -> None:
    """A fine-tune after the serving stage (on what it served) was gated on the service being
    listed as completed, which also skipped bringing the service up: launch.sh started
    services only after every pipeline. Launches follow the stages' order now."""
    doc: dict[str, Any] = copy.deepcopy(load_scenario(EXAMPLE).model_dump(mode="json"))
    doc["workloads"][0]["stages"].append(
        {
            "id": "ft2",
            "kind": "finetune",
            "after": ["serve-intl"],
            "tokens": 1.0e9,
            "locations": ["SG", "MY"],
        }
    )
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="order-plan", run="true")
    files = exporter("skypilot").render(inp).files
    names = {tuple(stages): name for name, stages in _pipelines(files).items()}
    serve = next(j.name for j in inp.jobs if j.serving)
    rc, log = _launch(files, tmp_path, None)
    assert rc == 0
    assert [ln.split()[4] for ln in log] == [names[("pretrain", "sft")], serve, names[("ft2",)]]
