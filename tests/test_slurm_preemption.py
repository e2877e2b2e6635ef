"""A stage preempted for real (slurm32): a job of a higher-tier partition takes the node from a
running stage of an exported bundle on a cluster with preemption in requeue mode.

Needs the one-machine Slurm of `.ci/slurm.sh` started with STRAITS_SLURM_PREEMPT=1 (slow; skips
on a cluster without preemption, which is the default, and without Slurm; fails instead where
STRAITS_REQUIRE_SLURM_PREEMPT=1, as `.ci/run` sets it for the preempting cluster it starts).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from straits.rules import RuleSet
from test_export_slurm import _submit_rc, _wait
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
    if "preempt/partition_prio" not in conf or part.returncode != 0:
        why = "no preemption: start the cluster with STRAITS_SLURM_PREEMPT=1"
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
    urgent = (
        subprocess.run(
            [
                "sbatch",
                "--parsable",
                f"--partition={URGENT}",
                "--exclusive",
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
