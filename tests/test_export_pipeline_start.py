"""A SkyPilot pipeline's task after the first starts no earlier than its planned start (exp30).

``sky jobs launch`` runs a pipeline's tasks one after another, each as the one before succeeds:
a fine-tune kept in its pre-train's pipeline (it follows it but for moving the checkpoint)
started as soon as the pre-train succeeded, however much shorter than planned the pre-train ran,
while Slurm's ``--begin`` and ``apply.sh`` never start a stage before the plan does. Each such
task's ``run`` now first waits for its planned start (``wait_start``, as ``launch.sh``), and
``launch.sh`` hands ``STRAITS_START_NOW`` to the pipeline (``sky jobs launch --env``).

The task's ``run`` runs under bash with the stand-ins of tests/test_export_start_wait.py (the
clock a file, ``sleep`` recorded and moving the clock on)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from export_support import _pipelines
from straits.export import export_input, exporter, write_bundle
from straits.export.base import WAIT_CHUNK_S, ExportInput
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from test_export_start_wait import OFFSHORE, _stand_ins, _waits

W = "chat-72b"
#: the stage's command: it records that it ran (after the sleeps it waited)
RAN = 'echo "ran $STRAITS_STAGE" >> "$LOG"'


@pytest.fixture(scope="module")
def offshore(rules: RuleSet) -> ExportInput:
    sc = load_scenario(OFFSHORE)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    return export_input(sc, plan, rules, plan_id="early", run=RAN)


@pytest.fixture(scope="module")
def files(offshore: ExportInput) -> dict[str, str]:
    files = exporter("skypilot").render(offshore).files
    assert _pipelines(files) == {W: ["pretrain", "sft"]}
    return files


def _task(files: dict[str, str], stage: str) -> dict[str, Any]:
    docs = list(yaml.safe_load_all(files[f"skypilot/{W}.pipeline.yaml"]))
    return next(d for d in docs[1:] if d["envs"]["STRAITS_STAGE"] == stage)


def _run_task(
    task: dict[str, Any], tmp_path: Path, clock: int | str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The task's ``run`` on one node, as SkyPilot runs it: its ``envs`` and SkyPilot's."""
    full = {
        **_stand_ins(tmp_path, clock, None, **env),
        **{k: str(v) for k, v in task["envs"].items()},
        "SKYPILOT_NODE_IPS": "10.0.0.1",
        "SKYPILOT_NUM_NODES": "1",
        "SKYPILOT_NODE_RANK": "0",
        "SKYPILOT_NUM_GPUS_PER_NODE": "8",
    }
    subprocess.run(["bash", "-n", "-c", task["run"]], check=True)
    p = subprocess.run(
        ["bash", "-c", task["run"]], env=full, capture_output=True, text=True, timeout=60
    )
    log = tmp_path / "calls.log"
    return p, log.read_text().splitlines() if log.exists() else []


def test_a_task_whose_predecessor_ran_short_waits_for_its_planned_start(
    offshore: ExportInput, files: dict[str, str], tmp_path: Path
) -> None:
    """The pre-train succeeded 100 s before the fine-tune's planned start: the fine-tune's task
    sleeps those 100 s (in chunks of a minute), then runs its command."""
    sft = offshore.job(W, "sft")
    p, log = _run_task(_task(files, "sft"), tmp_path, sft.begin - 100)
    assert p.returncode == 0, p.stdout + p.stderr
    assert _waits(log) == [WAIT_CHUNK_S, 100 - WAIT_CHUNK_S]
    assert log[-1] == "ran sft"
    assert f"{W}/sft waits until its planned start, {sft.begin_utc}" in p.stdout


@pytest.mark.parametrize(
    ("offset", "start_now"),
    [(0, None), (3600, None), (-86400, "1"), (-86400, f"x/y,{W}/sft")],
)
def test_a_task_due_or_named_starts_at_once(
    offshore: ExportInput,
    files: dict[str, str],
    tmp_path: Path,
    offset: int,
    start_now: str | None,
) -> None:
    """At or after its planned start (the pre-train ran as planned or longer), or named in
    STRAITS_START_NOW, the task runs its command without sleeping."""
    env = {"STRAITS_START_NOW": start_now} if start_now else {}
    p, log = _run_task(_task(files, "sft"), tmp_path, offshore.job(W, "sft").begin + offset, **env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert _waits(log) == [] and log == ["ran sft"]


def test_a_task_that_cannot_read_the_clock_runs_nothing(
    files: dict[str, str], tmp_path: Path
) -> None:
    p, log = _run_task(_task(files, "sft"), tmp_path, "soon")
    assert p.returncode != 0
    assert f"{W}/sft: cannot read the clock (date +%s): not started" in p.stderr
    assert log == []


def test_the_first_task_is_left_to_launch_sh(
    offshore: ExportInput, files: dict[str, str], tmp_path: Path
) -> None:
    """The pipeline's first task does not wait itself: launch.sh launched it at its start."""
    p, log = _run_task(_task(files, "pretrain"), tmp_path, offshore.job(W, "pretrain").begin - 900)
    assert p.returncode == 0, p.stdout + p.stderr
    assert log == ["ran pretrain"]


def test_launch_sh_hands_start_now_to_the_pipeline(files: dict[str, str], tmp_path: Path) -> None:
    """``sky jobs launch`` is given the operator's STRAITS_START_NOW (empty when unset), in a
    form SkyPilot's CLI and pipeline loader take, so a task named there starts at once too."""
    write_bundle(tmp_path, files, executable=(".sh",))
    for start_now in (f"{W}/sft", None):
        env = _stand_ins(
            tmp_path, None, None, **({"STRAITS_START_NOW": start_now} if start_now else {})
        )
        (tmp_path / "bin" / "sky").write_text('#!/bin/bash\nprintf "%s\\n" "$@" >> "$LOG"\n')
        p = subprocess.run(
            ["bash", str(tmp_path / "skypilot" / "launch.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stdout + p.stderr
        args = (tmp_path / "calls.log").read_text().splitlines()
        launch = args[: args.index("up")] if "up" in args else args
        assert launch[:2] == ["jobs", "launch"]
        assert launch[launch.index("--env") + 1] == f"STRAITS_START_NOW={start_now or ''}"
        sky_cli = pytest.importorskip("sky.client.cli.command")
        sky_cli.jobs.commands["launch"].make_context("launch", launch[2:])
        dag_utils = pytest.importorskip("sky.utils.dag_utils")
        dag = dag_utils.load_chain_dag_from_yaml(
            str(tmp_path / "skypilot" / f"{W}.pipeline.yaml"),
            env_overrides=[("STRAITS_START_NOW", start_now or "")],
        )
        assert [t.envs["STRAITS_START_NOW"] for t in dag.tasks] == [start_now or ""] * 2
