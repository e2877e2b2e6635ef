"""What every target gives a stage's command (docs/exports.md, "The rendezvous every target
gives"), and how long Slurm holds a serving stage (atk72).

* The variables: ``STRAITS_PLAN_ID``, ``STRAITS_WORKLOAD``, ``STRAITS_STAGE``,
  ``STRAITS_STAGE_KIND``, ``STRAITS_SITE``, ``STRAITS_COMMAND``, and for serving
  ``STRAITS_REPLICA_CHIPS`` and ``STRAITS_SERVE_PORT``, on Slurm, SkyPilot and Kubernetes alike:
  Slurm's serving script set no ``STRAITS_SERVE_PORT`` (the docs' own
  ``--port $STRAITS_SERVE_PORT`` got an empty port), SkyPilot's tasks no ``STRAITS_COMMAND``
  and its services no ``STRAITS_REPLICA_CHIPS``.
* Slurm ran a serving stage for its planned period plus the training margin of 25%: 720
  planned hours were held 900 (19 chained jobs), 180 hours of chips the plan did not price,
  and the stages after it started 180 hours late.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from export_support import _containers, _docs, _tasks, demo, inp, offline_job
from straits.export import exporter
from straits.export.base import SERVE_PORT, ExportInput, StageJob
from straits.export.slurm import TIME_MARGIN, SlurmExporter, last_seconds, slurm_site, split

__all__ = ["demo", "inp"]  # fixtures

BASE = {
    "STRAITS_PLAN_ID",
    "STRAITS_WORKLOAD",
    "STRAITS_STAGE",
    "STRAITS_STAGE_KIND",
    "STRAITS_SITE",
    "STRAITS_COMMAND",
}
SERVING = {"STRAITS_REPLICA_CHIPS", "STRAITS_SERVE_PORT"}
DOCUMENTED = BASE | SERVING


def _slurm_envs(files: dict[str, str], job: StageJob) -> dict[str, str] | None:
    text = next((t for p, t in files.items() if p.endswith(f"/{job.name}.sbatch")), None)
    if text is None:
        return None
    out = {}
    for line in text.splitlines():
        if line.startswith("export STRAITS_"):
            for word in shlex.split(line)[1:]:
                key, _, value = word.partition("=")
                out[key] = value
    return out


def _skypilot_envs(files: dict[str, str], job: StageJob) -> dict[str, str] | None:
    task = _tasks(files).get(job.name)
    return None if task is None else {k: str(v) for k, v in task["envs"].items()}


def _kubernetes_envs(files: dict[str, str], job: StageJob) -> dict[str, str] | None:
    """The env of the stage's containers (every one alike: a LeaderWorkerSet's leader and
    workers), the kubelet's ``$$`` undone."""
    found: list[dict[str, str]] = []
    for doc in _docs(files):
        for c in _containers(doc):
            env = {e["name"]: e["value"].replace("$$", "$") for e in c["env"] if "value" in e}
            if env.get("STRAITS_WORKLOAD") == job.workload and env["STRAITS_STAGE"] == job.stage:
                found.append(env)
    if not found:
        return None
    names = {frozenset(k for k in e if k in DOCUMENTED) for e in found}
    assert len(names) == 1, f"{job.stage}: containers differ: {names}"
    return found[0]


TARGETS = {"slurm": _slurm_envs, "skypilot": _skypilot_envs, "kubernetes": _kubernetes_envs}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_target_gives_the_documented_variables(target: str, inp: ExportInput) -> None:
    files = exporter(target).render(inp).files
    seen = set()
    for job in inp.jobs:
        envs = TARGETS[target](files, job)
        if envs is None:  # the target runs no job at this stage's site
            continue
        seen.add(job.kind)
        expected = BASE | (SERVING if job.serving else set())
        assert set(envs) & DOCUMENTED == expected, (target, job.stage, sorted(envs))
        assert envs["STRAITS_COMMAND"] == job.command
        assert envs["STRAITS_STAGE_KIND"] == job.kind
        if job.serving:
            assert envs["STRAITS_SERVE_PORT"] == str(SERVE_PORT)
            assert envs["STRAITS_REPLICA_CHIPS"] == str(job.replica_chips)
    assert {"serve", "pretrain"} <= seen, (target, seen)


# --- how long Slurm holds a serving stage ------------------------------------------------------


def _command_seconds(hours: float, max_minutes: int, serving: bool) -> int:
    parts, work, _ = split(hours, max_minutes, serving)
    return (parts - 1) * work * 60 + last_seconds(hours, parts, work, serving)


@given(
    hours=st.floats(min_value=0.001, max_value=24 * 400),
    max_minutes=st.integers(min_value=1, max_value=60 * 24 * 7),
)
def test_serving_gets_its_planned_period_and_training_its_margin(
    hours: float, max_minutes: int
) -> None:
    served = _command_seconds(hours, max_minutes, serving=True)
    assert hours * 3600 - 1e-3 <= served < hours * 3600 + 60
    assert _command_seconds(hours, max_minutes, serving=False) >= hours * 3600 * TIME_MARGIN


def test_a_serving_chain_on_the_shipped_plan_is_its_planned_period(inp: ExportInput) -> None:
    files = exporter("slurm").render(inp).files
    for job in inp.jobs:
        s = slurm_site(job)
        if s is None:
            continue
        parts, work, _ = split(job.hours, s.max_minutes, job.serving)
        text = next(t for p, t in files.items() if p.endswith(f"/{job.name}.sbatch"))
        assert f"as {parts} job(s) of {work} min of command" in text
        seconds = _command_seconds(job.hours, s.max_minutes, job.serving)
        if job.serving:
            assert abs(seconds - job.hours * 3600) < 60, (job.stage, seconds, job.hours)
            assert "no margin" in text
        else:
            assert seconds >= job.hours * 3600 * TIME_MARGIN
            assert "+ 25%" in text


def test_a_serving_stage_stops_at_its_planned_end_without_a_warning(
    inp: ExportInput, tmp_path: Path
) -> None:
    """The last job of a service's chain: the batch shell asks the command to stop (SIGUSR1)
    once the planned period is over (here 3 s into it), not at Slurm's warning, and marks the
    stage complete; a service whose period is 63 s under a MaxTime of 2 minutes is two jobs,
    one minute and 3 s of command."""
    job = next(j for j in inp.jobs if j.serving and slurm_site(j) is not None)
    p = job.placement
    short = dataclasses.replace(
        job, placement=dataclasses.replace(p, end=p.start + dt.timedelta(seconds=63))
    )
    site = slurm_site(job)
    assert site is not None
    site = site.model_copy(update={"max_time": "2"})
    assert split(short.hours, site.max_minutes, True)[:2] == (2, 1)
    assert last_seconds(short.hours, 2, 1, True) == 3
    script = tmp_path / "serve.sbatch"
    script.write_text(SlurmExporter().script(inp, short, site))
    out = tmp_path / "out.txt"
    # srun stand-in: runs the step (a command of 8 s) and records when it is signalled
    srun = (
        "#!/bin/bash\n"
        'trap \'echo "signalled $SECONDS" >> "$OUT"\' USR1\n'
        'while [ "${1#-}" != "$1" ]; do shift; done\n'
        'STRAITS_COMMAND="sleep 8" SLURM_NODEID=0 "$@" & c=$!\n'
        'while :; do wait "$c"; rc=$?; kill -0 "$c" 2>/dev/null || break; done\n'
        'exit "$rc"\n'
    )
    env = offline_job(tmp_path, srun, out)
    began = time.monotonic()
    last = subprocess.run(
        ["bash", str(script)],
        env={**env, "STRAITS_SEGMENT": "2", "STRAITS_SEGMENTS": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert last.returncode == 0, last.stderr
    assert time.monotonic() - began < 30
    assert "planned serving period" in last.stdout, last.stdout
    signalled = [int(line.split()[1]) for line in out.read_text().splitlines()]
    assert len(signalled) == 1 and 2 <= signalled[0] <= 5, signalled
