"""Exported Slurm jobs under faults: a submit.sh that stops half way, a job whose limit is
shorter than the warning before it.

Offline with stand-ins for sbatch, scontrol and scancel; then against the real one-machine
Slurm of `.ci/slurm.sh` (slow; they skip without it, and fail under STRAITS_REQUIRE_SLURM=1),
as in tests/test_export_slurm.py, whose helpers they use.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from straits.export import export_input, exporter, write_bundle
from straits.export.base import ExportInput
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from test_export_slurm import _export_ci, _log, _slurm_env, _wait, fake_slurm


@pytest.fixture(scope="module")
def inp(example_path: Path, rules: RuleSet) -> ExportInput:
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    return export_input(sc, plan, rules, plan_id="fault-plan", run="true")


#: sbatch stand-in that hands out ids from 101 and fails its call number $SBATCH_FAIL_AT
#: (exit 1, or a SIGTERM to the submit.sh whose pid is in $FAKE_LOGS/submit.pid)
FAILING_SBATCH = """#!/bin/bash
n=$(( $(wc -l < "$SBATCH_LOG" 2>/dev/null || echo 0) + 101 ))
echo "$n $*" >> "$SBATCH_LOG"
if [ "$n" -eq $(( 100 + SBATCH_FAIL_AT )) ]; then
  if [ "${SBATCH_FAIL_HOW:-}" = term ]; then kill -TERM "$(cat "$FAKE_LOGS/submit.pid")"
  else echo "sbatch: error: Batch job submission failed: Node count specification invalid" >&2
    exit 1; fi
fi
echo "$n"
"""


def _submit_with_failure(inp: ExportInput, tmp_path: Path, how: str) -> tuple[int, list[str]]:
    files = exporter("slurm").render(inp).files
    write_bundle(tmp_path, files, executable=(".sh", ".sbatch"))
    env = fake_slurm(tmp_path)
    (tmp_path / "bin" / "sbatch").write_text(FAILING_SBATCH)
    submit = next(iter(sorted(tmp_path.glob("slurm/*/submit.sh"))))
    p = subprocess.run(
        ["bash", "-c", f'echo $$ > "$FAKE_LOGS/submit.pid"; exec bash "{submit}"'],
        env={**env, "SBATCH_FAIL_AT": "2", "SBATCH_FAIL_HOW": how},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return p.returncode, (tmp_path / "sbatch.log").read_text().splitlines()


@pytest.mark.parametrize(("how", "rc"), [("exit", 1), ("term", 143)])
def test_a_submit_sh_stopped_half_way_cancels_what_it_submitted(
    inp: ExportInput, tmp_path: Path, how: str, rc: int
) -> None:
    """sbatch refuses the second job (a stage asking more nodes than the partition has), or
    submit.sh is terminated while submitting it: the first job, held since it waits for
    nothing, is cancelled and never released, so a rerun does not run that stage twice."""
    code, calls = _submit_with_failure(inp, tmp_path, how)
    assert code == rc
    first = calls[0].split()
    assert "--hold" in first
    assert (tmp_path / "scancel.log").read_text().split() == [first[0]]
    assert not (tmp_path / "scontrol.log").exists()  # nothing released


# --- against a real Slurm -----------------------------------------------------------------------
def _submit_rc(out: Path, env: dict[str, str]) -> tuple[int, list[str], str]:
    p = subprocess.run(
        ["bash", str(out / "slurm" / "straits-ci" / "submit.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return p.returncode, re.findall(r": job (\d+) \(part", p.stdout), p.stderr


@pytest.mark.slow
def test_a_stage_the_partition_cannot_hold_starts_nothing(rules: RuleSet, tmp_path: Path) -> None:
    """sft on 2 nodes of the CI partition's 1: sbatch refuses it after pretrain was submitted.
    submit.sh used to exit 1 with pretrain queued and then running (a rerun ran it twice);
    now it exits non-zero, pretrain's job is cancelled before it started."""
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(tmp_path / "ckpt")}
    log = tmp_path / "stages.log"

    def two_nodes(doc: dict[str, Any]) -> None:
        doc["sites"][0]["pools"][0]["count"] = 8
        doc["workloads"][0]["stages"][1]["chips"] = 8

    out, _ = _export_ci(
        tmp_path, rules, [_log(s, log) for s in ("pretrain", "sft", "serve")], change=two_nodes
    )
    rc, ids, err = _submit_rc(out, env)
    assert rc != 0 and len(ids) == 1, err
    assert _wait(ids, env, timeout=60) == {ids[0]: "CANCELLED"}
    assert not log.exists()
