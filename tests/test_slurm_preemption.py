"""A stage preempted for real (slurm32): a job of a higher-tier partition takes the node from a
running stage of an exported bundle on a cluster with preemption in requeue mode; slurm33: with
the stages' partition switched (``scontrol update``, put back after) to CANCEL, CANCEL with a
GraceTime, and SUSPEND.

Needs the one-machine Slurm of `.ci/slurm.sh` started with STRAITS_SLURM_PREEMPT=1 (slow; skips
on a cluster without preemption, which is the default, and without Slurm; fails instead where
STRAITS_REQUIRE_SLURM_PREEMPT=1, as `.ci/run` sets it for the preempting cluster it starts).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from straits.rules import RuleSet
from test_export_slurm import _export_ci, _slurm_env, _submit_rc, _wait
from test_slurm_operator_faults import _ci, _until
from test_slurm_status import _real_status

URGENT = "urgent"  # .ci/slurm_conf.py's partition above the others


def _preempting(env: dict[str, str]) -> None:
    conf = subprocess.run(
        ["scontrol", "show", "config"], env=env, capture_output=True, text=True
    ).stdout
    part = subprocess.run(
        ["scontrol", "show", "partition", URGENT], env=env, capture_output=True, text=True
    )
    mode = re.search(r"^PreemptMode\s*=\s*(\S+)", conf, re.M)
    gang = mode is not None and "GANG" in mode.group(1)  # SUSPEND needs it
    if "preempt/partition_prio" not in conf or part.returncode != 0 or not gang:
        why = "no preemption (partition_prio, GANG): start it with STRAITS_SLURM_PREEMPT=1"
        if os.environ.get("STRAITS_REQUIRE_SLURM_PREEMPT") == "1":  # .ci/run's second cluster
            pytest.fail(why)
        pytest.skip(why)


@pytest.mark.slow
def test_a_preempted_stage_is_requeued_runs_again_and_says_so(
    rules: RuleSet, tmp_path: Path
) -> None:
    """A whole-node job in the urgent partition while pretrain runs: pretrain is requeued
    (its batch shell says it was stopped by Slurm, exit 143, not complete), runs again once the
    urgent job ends, to its end, then sft and serve, each once, in order; status.sh says
    it was requeued while Slurm holds it (exit 3), not that it waits for its planned start,
    and completed after (exit 0)."""
    env, out, log = _ci(rules, tmp_path, 12)
    _preempting(env)
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    _until(log, "start")
    urgent = _urgent(env)
    for _ in range(60):  # requeued: held a while before it may start again
        rc, table = _real_status(out, env)
        assert rc == 3, table
        if table[1][4] == "PENDING/BeginTime (requeued 1)":
            break
        time.sleep(1)
    else:
        pytest.fail(f"pretrain never shown requeued: {table}")
    states = _wait([urgent, *ids], env, timeout=300)
    assert [states[i] for i in [urgent, *ids]] == ["COMPLETED"] * 4, states
    assert log.read_text().split() == ["start", "start", "end", "sft", "serve"]
    text = (out / "slurm" / "straits-ci" / f"tiny-pretrain-{ids[0]}.out").read_text()
    assert len(re.findall(r"^straits: tiny/pretrain job 1 of 1 on", text, re.M)) == 2, text
    assert "stopped by Slurm (SIGTERM" in text, text
    show = subprocess.run(
        ["scontrol", "show", "job", "-o", ids[0]], env=env, capture_output=True, text=True
    ).stdout
    assert re.search(r"Restarts=1\b", show), show
    rc, table = _real_status(out, env)
    assert rc == 0 and [r[1] for r in table[1:]] == ["completed"] * 3, table


@contextmanager
def _partition(env: dict[str, str], partition: str, **settings: str) -> Iterator[None]:
    """The partition's ``settings`` (PreemptMode, GraceTime, OverSubscribe) for the block
    (``scontrol update``: no restart of the cluster; a preempted job's mode is its
    partition's), then each put back as it was."""
    show = subprocess.run(
        ["scontrol", "show", "partition", partition], env=env, capture_output=True, text=True
    ).stdout
    was = {}
    for key in settings:
        m = re.search(rf"\b{key}=(\S+)", show)
        assert m, show
        was[key] = m.group(1)
    update = ["scontrol", "update", f"PartitionName={partition}"]
    subprocess.run([*update, *(f"{k}={v}" for k, v in settings.items())], env=env, check=True)
    try:
        yield
    finally:
        subprocess.run([*update, *(f"{k}={v}" for k, v in was.items())], env=env, check=True)


def _stage_partition(out: Path) -> str:
    script = (out / "slurm" / "straits-ci" / "tiny-pretrain.sbatch").read_text()
    m = re.search(r"^#SBATCH --partition=(\S+)", script, re.M)
    assert m, script
    return m.group(1)


def _urgent(env: dict[str, str], *size: str) -> str:
    """A job of a minute in the urgent partition, of ``size`` (default the whole node): its
    id."""
    return (
        subprocess.run(
            [
                "sbatch",
                "--parsable",
                f"--partition={URGENT}",
                *(size or ["--exclusive"]),
                "--time=1",
                "--output=/dev/null",
                "--wrap",
                "sleep 3",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .split(";")[0]
    )


@pytest.mark.slow
def test_a_stage_preempted_in_cancel_mode_is_said_preempted_and_the_rest_never_start(
    rules: RuleSet, tmp_path: Path
) -> None:
    """slurm33: the stages' partition in PreemptMode=CANCEL. The urgent job ends pretrain for
    good: PREEMPTED, not requeued (its batch shell says it was stopped by Slurm, not marked
    complete), sft and serve cancelled before they started (DependencyNeverSatisfied), nothing
    of them run. status.sh said pretrain ``failed``; now ``preempted``, the two after it name
    it, exit 1. Submitted again, the pipeline runs to its end (exit 0)."""
    env, out, log = _ci(rules, tmp_path, 12)
    _preempting(env)
    with _partition(env, _stage_partition(out), PreemptMode="CANCEL"):
        rc, ids, err = _submit_rc(out, env)
        assert rc == 0, err
        _until(log, "start")
        urgent = _urgent(env)
        states = _wait([urgent, *ids], env, timeout=120)
    assert [states[i] for i in [urgent, *ids]] == [
        "COMPLETED",
        "PREEMPTED",
        "CANCELLED",
        "CANCELLED",
    ], states
    assert log.read_text().split() == ["start"]
    text = (out / "slurm" / "straits-ci" / f"tiny-pretrain-{ids[0]}.out").read_text()
    assert "stopped by Slurm (SIGTERM" in text and "pretrain complete" not in text, text
    rc, table = _real_status(out, env)
    assert rc == 1, table
    assert [r[1:5] for r in table[1:]] == [
        ["preempted", "1/1", ids[0], "PREEMPTED/None"],
        ["cancelled", "1/1", ids[1], "CANCELLED/DependencyNeverSatisfied"],
        ["cancelled", "1/1", ids[2], "CANCELLED/DependencyNeverSatisfied"],
    ], table
    assert all(table[1][0] in r[5] for r in table[2:]), table
    rc, again, err = _submit_rc(out, env)
    assert rc == 0, err
    _wait(again, env, timeout=180)
    rc, table = _real_status(out, env)
    assert rc == 0 and [(r[1], r[3]) for r in table[1:]] == [("completed", i) for i in again]


@pytest.mark.slow
def test_a_stage_preempted_with_a_grace_time_stops_itself_and_is_said_preempted(
    rules: RuleSet, tmp_path: Path
) -> None:
    """slurm33: CANCEL mode with a GraceTime on the stages' partition. The preemption sends
    the command SIGTERM and lets it finish its checkpoint (here 3 s, within the grace); the job
    then ends itself (Slurm says FAILED, not PREEMPTED: the task shell died of the SIGTERM),
    which status.sh said was a ``failed`` stage. Its PreemptTime, after its start, makes it
    ``preempted`` now, named by the stages after it (exit 1)."""
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(tmp_path / "ckpt")}
    _preempting(env)
    log = tmp_path / "stages.log"
    save = f"trap 'sleep 3; echo saved >> {log}; exit 0' TERM"
    runs = [
        f"pretrain={save}; echo start >> {log}; sleep 60 & wait; echo end >> {log}",
        f"sft=echo sft >> {log}",
        f"serve=echo serve >> {log}",
    ]
    out, _ = _export_ci(tmp_path, rules, runs)
    with _partition(env, _stage_partition(out), PreemptMode="CANCEL", GraceTime="20"):
        rc, ids, err = _submit_rc(out, env)
        assert rc == 0, err
        _until(log, "start")
        urgent = _urgent(env)
        states = _wait([urgent, *ids], env, timeout=120)
    assert states[urgent] == "COMPLETED", states
    assert states[ids[0]] in ("FAILED", "PREEMPTED"), states
    assert log.read_text().split() == ["start", "saved"]
    rc, table = _real_status(out, env)
    assert rc == 1, table
    assert [r[1:4] for r in table[1:]] == [
        ["preempted", "1/1", ids[0]],
        ["cancelled", "1/1", ids[1]],
        ["cancelled", "1/1", ids[2]],
    ], table
    assert all(table[1][0] in r[5] for r in table[2:]), table


@pytest.mark.slow
def test_a_stage_suspended_by_a_preemption_goes_on_where_it_stopped(
    rules: RuleSet, tmp_path: Path
) -> None:
    """slurm33: the stages' partition in PreemptMode=SUSPEND (GANG in the cluster's mode, as
    .ci/slurm_conf.py writes it; OverSubscribe=FORCE:1 on it and on urgent for the test). An
    urgent job of every CPU of the node (not --exclusive: a suspended job keeps its GPUs, and
    an exclusive job waits for them) suspends pretrain: status.sh says ``running``,
    ``SUSPENDED/...`` (exit 3); once the urgent job ends pretrain goes on where it stopped, to
    its end, once, then sft and serve (exit 0)."""
    env, out, log = _ci(rules, tmp_path, 8)
    _preempting(env)
    node = subprocess.run(
        ["scontrol", "show", "node", "straits-ci"], env=env, capture_output=True, text=True
    ).stdout
    cpus = re.search(r"\bCPUTot=(\d+)", node)
    assert cpus, node
    force = {"OverSubscribe": "FORCE:1"}
    with (
        _partition(env, _stage_partition(out), PreemptMode="SUSPEND", **force),
        _partition(env, URGENT, **force),
    ):
        rc, ids, err = _submit_rc(out, env)
        assert rc == 0, err
        _until(log, "start")
        urgent = _urgent(env, "--nodes=1", f"--ntasks={cpus.group(1)}")
        for _ in range(30):
            rc, table = _real_status(out, env)
            if table[1][4].startswith("SUSPENDED/"):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"pretrain never shown suspended: {table}")
        assert rc == 3 and table[1][1] == "running", table
        states = _wait([urgent, *ids], env, timeout=180)
    assert [states[i] for i in [urgent, *ids]] == ["COMPLETED"] * 4, states
    assert log.read_text().split() == ["start", "end", "sft", "serve"]
    rc, table = _real_status(out, env)
    assert rc == 0 and [r[1] for r in table[1:]] == ["completed"] * 3, table
