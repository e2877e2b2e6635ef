"""Exported Slurm jobs under faults: a submit.sh that stops half way, a warning (SIGUSR1) that
comes before the command has had its time.

Offline with stand-ins for sbatch, scontrol and scancel; then against the real one-machine
Slurm of `.ci/slurm.sh` (slow; they skip without it, and fail under STRAITS_REQUIRE_SLURM=1),
as in tests/test_export_slurm.py, whose helpers they use.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from export_support import RUN_STEP, offline_job
from straits.export import export_input, exporter, write_bundle
from straits.export.base import ExportInput
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from test_export_slurm import _export_ci, _log, _slurm_env, _submit_rc, _wait, fake_slurm


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


def test_a_reader_that_stops_early_does_not_stop_the_submission(
    inp: ExportInput, tmp_path: Path
) -> None:
    """`submit.sh | head -1`: the reader closes the pipe after the first line. The next progress
    line used to kill submit.sh with SIGPIPE (no EXIT trap runs for it), leaving the jobs it had
    submitted held and the rest not submitted. Now its output is best effort: it submits and
    releases what a run whose output is read to the end does, cancels nothing and exits 0."""
    files = exporter("slurm").render(inp).files

    def submit(into: Path, pipe: str) -> tuple[int, list[str], list[str]]:
        write_bundle(into, files, executable=(".sh", ".sbatch"))
        env = fake_slurm(into)
        # the site that submits most (the first in name order held one job since est33's
        # estimator refit moved the example's pre-train next to its fine-tune)
        script = max(sorted(into.glob("slurm/*/submit.sh")), key=lambda f: len(f.read_bytes()))
        p = subprocess.run(
            ["bash", "-c", f'set -o pipefail; bash "{script}" {pipe}'],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert not (into / "scancel.log").exists()
        calls = (into / "sbatch.log").read_text().splitlines()
        return p.returncode, calls, (into / "scontrol.log").read_text().split()

    rc, calls, released = submit(tmp_path / "piped", "| head -1 >/dev/null")
    assert rc == 0
    _, whole, released_whole = submit(tmp_path / "whole", ">/dev/null")
    assert len(whole) >= 2  # more than one job to submit, so a line to print after the first
    assert len(calls) == len(whole)
    assert released == released_whole and released[0] == "release"


#: srun stand-in: asks the batch shell at once, as an early Slurm warning would, then runs
#: the step (a second); records whether the step got SIGUSR1
EARLY_WARNING_SRUN = (
    "#!/bin/bash\n"
    + RUN_STEP
    + """trap 'echo got-usr1 >> "$OUT"; exit 0' USR1
kill -USR1 "$PPID"
sleep 1 & wait
echo ran >> "$OUT"
STRAITS_COMMAND=true step "$@"
"""
)


def test_a_step_lost_with_its_node_does_not_complete_the_stage(
    inp: ExportInput, tmp_path: Path
) -> None:
    """srun exits 0 when the step is lost with a node (the command still running), and the
    job's state may still read RUNNING then: the CI's one-machine Slurm showed it, and the
    stage was marked complete on a pretrain that never finished. Now only the command's own
    record of ending with exit 0 completes the stage; the same script with a step that does
    run its command completes it."""
    res = exporter("slurm").render(inp)
    write_bundle(tmp_path, res.files, executable=(".sh", ".sbatch"))
    job = next(j for j in inp.jobs if not j.serving)
    script = next(tmp_path / p for p in res.files if p.endswith(f"/{job.name}.sbatch"))
    out = tmp_path / "out.txt"
    lost = offline_job(tmp_path, '#!/bin/bash\necho lost >> "$OUT"\nexit 0\n', out)
    p = subprocess.run(["bash", str(script)], env=lost, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert not list(tmp_path.rglob(".straits-stage-complete"))
    ran = offline_job(
        tmp_path, "#!/bin/bash\n" + RUN_STEP + 'STRAITS_COMMAND=true step "$@"\n', out
    )
    p = subprocess.run(["bash", str(script)], env=ran, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert list(tmp_path.rglob(".straits-stage-complete"))
    assert not list(tmp_path.rglob(".straits-step-ran*"))  # the record does not outlive its job


def test_an_early_warning_waits_for_the_commands_time(inp: ExportInput, tmp_path: Path) -> None:
    """Slurm may warn up to a minute before the time asked (a 1-minute job warned 60 s ahead
    was warned at its start, failing a stage that would have finished in 30 s and cancelling
    every stage after it). The batch shell now passes the warning on only once the command
    has had its minutes in the job: a command that ends before then completes the stage."""
    res = exporter("slurm").render(inp)
    write_bundle(tmp_path, res.files, executable=(".sh", ".sbatch"))
    job = next(j for j in inp.jobs if not j.serving)
    script = next(tmp_path / p for p in res.files if p.endswith(f"/{job.name}.sbatch"))
    out = tmp_path / "out.txt"
    env = offline_job(tmp_path, EARLY_WARNING_SRUN, out)
    p = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert out.read_text().split() == ["ran"]
    assert list(tmp_path.rglob(".straits-stage-complete"))


# --- against a real Slurm -----------------------------------------------------------------------
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


@pytest.mark.slow
def test_a_short_stage_is_not_warned_at_its_start(rules: RuleSet, tmp_path: Path) -> None:
    """The CI pretrain needs a minute with its margin. Its job was --time=1 with a warning 60 s
    before the limit: Slurm warned it at once, a command of 40 s was asked to stop, the stage
    failed and the others were cancelled. Now the job is its minute plus the warning, and the
    command runs to its end."""
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(tmp_path / "ckpt")}
    log = tmp_path / "stages.log"
    pretrain = (
        f"pretrain=trap 'echo warned >> {log}; exit 0' USR1; sleep 40 & wait; echo done >> {log}"
    )
    out, _ = _export_ci(tmp_path, rules, [pretrain, _log("sft", log), _log("serve", log)])
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    states = _wait(ids, env, timeout=240)
    assert [states[i] for i in ids] == ["COMPLETED"] * 3, states
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["done", "sft", "serve"]


@pytest.mark.slow
def test_a_bundle_submitted_twice_runs_each_stage_once(rules: RuleSet, tmp_path: Path) -> None:
    """submit.sh run twice (a user who did not see the first had worked): the two pretrain jobs
    of a stage that shares its node start together and both ran, writing the same checkpoint
    folder. Now a running job of a stage holds a lock there: the second copy stops (FAILED,
    its chain CANCELLED), or, once the first has completed, finds the stage done."""
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(tmp_path / "ckpt")}
    log = tmp_path / "stages.log"

    def shared(doc: dict[str, Any]) -> None:
        doc["workloads"][0]["stages"][0]["chips"] = 2  # half a node: no --exclusive

    runs = [f"pretrain=sleep 20; {_log('pretrain', log)[len('pretrain=') :]}"]
    runs += [_log(s, log) for s in ("sft", "serve")]
    out, _ = _export_ci(tmp_path, rules, runs, change=shared)
    assert "--exclusive" not in (out / "slurm" / "straits-ci" / "tiny-pretrain.sbatch").read_text()
    # a second copy on purpose: submit.sh refuses one while the first is queued
    first, second = _submit_rc(out, env), _submit_rc(out, {**env, "STRAITS_SUBMIT_AGAIN": "1"})
    assert first[0] == second[0] == 0, first[2] + second[2]
    states = _wait(first[1] + second[1], env, timeout=240)
    chains = [[states[i] for i in ids] for ids in (first[1], second[1])]
    assert ["COMPLETED"] * 3 in chains, chains
    assert all(c in (["COMPLETED"] * 3, ["FAILED", "CANCELLED", "CANCELLED"]) for c in chains)
    assert [line.split()[0] for line in log.read_text().splitlines()] == [
        "pretrain",
        "sft",
        "serve",
    ]


def _node_state(env: dict[str, str]) -> str:
    return subprocess.run(
        ["sinfo", "-h", "-n", "straits-ci", "-o", "%t"], env=env, capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.slow
def test_a_stage_whose_node_fails_is_run_again_not_marked_complete(
    rules: RuleSet, tmp_path: Path
) -> None:
    """The node set DOWN while pretrain runs: Slurm requeues the job, and srun, having lost its
    step, exits 0. The batch script took that for success and marked the stage complete, so
    the requeued job found it done and sft ran on a pretrain that never finished. Now a step
    that ends while the job is no longer RUNNING does not complete the stage: the requeued job
    runs the command again, to its end, before sft."""
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(tmp_path / "ckpt")}
    log = tmp_path / "stages.log"
    pretrain = f"pretrain=echo start >> {log}; sleep 20; echo end >> {log}"
    out, _ = _export_ci(
        tmp_path, rules, [pretrain, f"sft=echo sft >> {log}", f"serve=echo serve >> {log}"]
    )
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    try:
        for _ in range(60):  # until the command has started
            if log.exists():
                break
            time.sleep(0.5)
        down = ["scontrol", "update", "nodename=straits-ci", "state=down", "reason=straits-test"]
        subprocess.run(down, env=env, check=True)
        states = _wait(ids, env, timeout=420)
    finally:
        if _node_state(env) not in ("idle", "alloc", "mix"):
            resume = ["scontrol", "update", "nodename=straits-ci", "state=resume"]
            subprocess.run(resume, env=env, capture_output=True)
    assert [states[i] for i in ids] == ["COMPLETED"] * 3, states
    rows = [line.strip() for line in log.read_text().splitlines()]
    assert rows[-4:] == ["start", "end", "sft", "serve"] and rows.count("end") == 1, rows
