"""Exported Slurm jobs under an operator's hands (slurm31): the controller restarted, a stage
cancelled, held and released or requeued, submit.sh run twice, a working directory gone.

Offline with stand-ins for sbatch, squeue, scontrol, scancel and srun; then against the real
one-machine Slurm of `.ci/slurm.sh` (slow; they skip without it and fail under
STRAITS_REQUIRE_SLURM=1), with the helpers of tests/test_export_slurm.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from export_support import offline_job
from straits.export import exporter, write_bundle
from straits.export.base import ExportInput
from straits.rules import RuleSet
from test_export_slurm import _export_ci, _slurm_env, _submit_rc, _wait, fake_slurm
from test_slurm_faults import inp  # noqa: F401  (the fixture)

STAGES = ("pretrain", "sft", "serve")


def _bundle(export: ExportInput, into: Path) -> tuple[dict[str, str], Path]:
    files = exporter("slurm").render(export).files
    write_bundle(into, files, executable=(".sh", ".sbatch"))
    return fake_slurm(into), next(iter(sorted(into.glob("slurm/*/submit.sh"))))


def _sbatch_calls(into: Path) -> list[str]:
    log = into / "sbatch.log"
    return log.read_text().splitlines() if log.exists() else []


def test_submit_sh_run_twice_refuses_naming_the_queued_jobs(
    inp: ExportInput,  # noqa: F811
    tmp_path: Path,
) -> None:
    """An operator retries submit.sh after a lost login: the second run queued every stage
    again. Now every job carries the plan and cluster in its comment, and while squeue lists
    one the second run submits nothing and exits 1 naming them; STRAITS_SUBMIT_AGAIN=1 queues
    a second copy anyway."""
    env, submit = _bundle(inp, tmp_path)
    env = {**env, "SQUEUE_FROM_LOG": "1"}
    first = subprocess.run(["bash", str(submit)], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    calls = _sbatch_calls(tmp_path)
    ids = [c.split()[0] for c in calls]
    comments = {re.search(r"--comment=(\S+)", c).group(1) for c in calls}  # type: ignore[union-attr]
    assert len(comments) == 1 and inp.plan_id in comments.pop()
    again = subprocess.run(["bash", str(submit)], env=env, capture_output=True, text=True)
    assert again.returncode == 1
    assert _sbatch_calls(tmp_path) == calls  # nothing submitted
    assert set(ids) <= set(again.stderr.split(": ")[-1].split(";")[0].split())
    assert not (tmp_path / "scancel.log").exists()
    forced = {**env, "STRAITS_SUBMIT_AGAIN": "1"}
    copy = subprocess.run(["bash", str(submit)], env=forced, capture_output=True, text=True)
    assert copy.returncode == 0 and len(_sbatch_calls(tmp_path)) == 2 * len(calls)


def test_submit_sh_submits_nothing_when_the_queue_cannot_be_read(
    inp: ExportInput,  # noqa: F811
    tmp_path: Path,
) -> None:
    """squeue fails (the controller is down or restarting): submit.sh cannot tell whether the
    plan is queued already, so it submits nothing and exits 1."""
    env, submit = _bundle(inp, tmp_path)
    p = subprocess.run(
        ["bash", str(submit)], env={**env, "SQUEUE_FAIL": "1"}, capture_output=True, text=True
    )
    assert p.returncode == 1
    assert _sbatch_calls(tmp_path) == []


def test_a_job_stopped_by_slurm_exits_143_not_complete(
    inp: ExportInput,  # noqa: F811
    tmp_path: Path,
) -> None:
    """scancel, scontrol requeue or a preemption send the batch shell SIGTERM: it died of it
    and the job's output did not say which stage stopped or why. Now it exits 143 after saying
    so, and the stage is not marked complete."""
    res = exporter("slurm").render(inp)
    write_bundle(tmp_path, res.files, executable=(".sh", ".sbatch"))
    job = next(j for j in inp.jobs if not j.serving)
    script = next(tmp_path / p for p in res.files if p.endswith(f"/{job.name}.sbatch"))
    out = tmp_path / "out.txt"
    srun = '#!/bin/bash\nkill -TERM "$PPID"\nsleep 5 & wait\necho ran >> "$OUT"\n'
    env = offline_job(tmp_path, srun, out)
    p = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 143, p.stdout + p.stderr
    assert not list(tmp_path.rglob(".straits-stage-complete"))
    assert "#SBATCH --open-mode=append" in script.read_text().splitlines()


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder every user can enter (pytest's tmp_path is its owner's alone), for a
    submit.sh run as another user."""
    base = Path(tempfile.mkdtemp(prefix="straits-slurm31-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _as_one_who_cannot_write(folder: Path, env: dict[str, str], *cmd: str) -> list[str]:
    """``cmd`` run by a user who cannot write in ``folder``: nobody when this is root (root
    writes anywhere), else this user with the folder made read-only."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return list(cmd)
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("root without runuser: no user here who cannot write")
    return [runuser, "-u", "nobody", "--", "env", *(f"{k}={v}" for k, v in env.items()), *cmd]


def test_submit_sh_where_the_jobs_cannot_write_submits_nothing(
    inp: ExportInput,  # noqa: F811
    shared_tmp: Path,
) -> None:
    """The bundle in a folder its user cannot write (another user's, a read-only mount):
    submit.sh queued every job, each then failed to launch (its output cannot be opened;
    JobLaunchFailure, the reason only in slurmd's log on the node). Now it submits nothing and
    exits 1."""
    env, submit = _bundle(inp, shared_tmp)
    logs = shared_tmp / "logs"
    logs.mkdir(mode=0o777)
    logs.chmod(0o777)
    env = {**env, "SBATCH_LOG": str(logs / "sbatch.log"), "FAKE_LOGS": str(logs)}
    cmd = _as_one_who_cannot_write(submit.parent, env, "bash", str(submit))
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert not (logs / "sbatch.log").exists()
    assert list(submit.parent.glob(".straits-write-probe*")) == []


# --- against a real Slurm -----------------------------------------------------------------------
def _until(path: Path, text: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not (path.exists() and text in path.read_text().split()):
        if time.monotonic() > deadline:
            pytest.fail(f"{text!r} never written to {path}")
        time.sleep(0.5)


def _ci(rules: RuleSet, tmp_path: Path, seconds: int) -> tuple[dict[str, str], Path, Path]:
    """The CI bundle with a pretrain of ``seconds`` (it logs start and end), sft and serve
    logging their names: (environment, bundle, log)."""
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(tmp_path / "ckpt")}
    log = tmp_path / "stages.log"
    runs = [
        f"pretrain=echo start >> {log}; sleep {seconds}; echo end >> {log}",
        f"sft=echo sft >> {log}",
        f"serve=echo serve >> {log}",
    ]
    out, _ = _export_ci(tmp_path, rules, runs)
    return env, out, log


def _restart_controller(env: dict[str, str], down: float) -> None:
    conf = Path(env["SLURM_CONF"])
    pid_file = conf.parent / "slurmctld.pid"
    if not pid_file.exists():
        pytest.skip(f"no {pid_file}: not a cluster of .ci/slurm.sh")
    pid = int(pid_file.read_text())
    os.kill(pid, 15)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    time.sleep(down)  # down while the job runs (or ends) and its successors wait
    subprocess.run(["slurmctld", "-f", str(conf), "-i"], env=env, check=True)
    for _ in range(60):
        if subprocess.run(["scontrol", "ping"], env=env, capture_output=True).returncode == 0:
            return
        time.sleep(0.5)
    pytest.fail("slurmctld did not come back")


@pytest.mark.slow
@pytest.mark.parametrize(("seconds", "down"), [(15, 2), (4, 12)])
def test_a_controller_restarted_mid_pipeline_loses_and_repeats_nothing(
    rules: RuleSet, tmp_path: Path, seconds: int, down: float
) -> None:
    """slurmctld stopped and started while pretrain runs and sft waits on afterok, back before
    pretrain ends or only after it ended: held, each stage runs once, in order."""
    env, out, log = _ci(rules, tmp_path, seconds)
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    _until(log, "start")
    _restart_controller(env, down)
    states = _wait(ids, env, timeout=240)
    assert [states[i] for i in ids] == ["COMPLETED"] * 3, states
    assert log.read_text().split() == ["start", "end", "sft", "serve"]


@pytest.mark.slow
def test_a_cancelled_stage_stops_the_pipeline_and_says_so(rules: RuleSet, tmp_path: Path) -> None:
    """scancel of the running pretrain: sft and serve are cancelled, never run; pretrain is
    not marked complete and its output (appended to) records that Slurm stopped it."""
    env, out, log = _ci(rules, tmp_path, 30)
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    _until(log, "start")
    subprocess.run(["scancel", ids[0]], env=env, check=True)
    states = _wait(ids, env, timeout=120)
    assert [states[i] for i in ids] == ["CANCELLED"] * 3, states
    assert log.read_text().split() == ["start"]
    assert not list((tmp_path / "ckpt").rglob(".straits-stage-complete"))
    assert [p.name for p in out.rglob("*.out")] == [f"tiny-pretrain-{ids[0]}.out"]


@pytest.mark.slow
def test_a_held_stage_runs_once_released(rules: RuleSet, tmp_path: Path) -> None:
    """sft held (scontrol hold) while pretrain runs, released after pretrain completed: held,
    sft and serve run then, once each, in order."""
    env, out, log = _ci(rules, tmp_path, 5)
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    subprocess.run(["scontrol", "hold", ids[1]], env=env, check=True)
    _until(log, "end")
    time.sleep(3)  # the scheduler had its chance to start sft
    assert log.read_text().split() == ["start", "end"]
    subprocess.run(["scontrol", "release", ids[1]], env=env, check=True)
    states = _wait(ids, env, timeout=240)
    assert [states[i] for i in ids] == ["COMPLETED"] * 3, states
    assert log.read_text().split() == ["start", "end", "sft", "serve"]


@pytest.mark.slow
def test_a_requeued_stage_runs_again_and_keeps_its_first_output(
    rules: RuleSet, tmp_path: Path
) -> None:
    """scontrol requeue of the running pretrain: the requeued job runs the command again to
    its end before sft (held), and its output file, which the requeued job truncated, losing
    the first run's record, is now appended to: both runs are in it."""
    env, out, log = _ci(rules, tmp_path, 15)
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    _until(log, "start")
    subprocess.run(["scontrol", "requeue", ids[0]], env=env, check=True)
    states = _wait(ids, env, timeout=300)
    assert [states[i] for i in ids] == ["COMPLETED"] * 3, states
    assert log.read_text().split() == ["start", "start", "end", "sft", "serve"]
    text = (out / "slurm" / "straits-ci" / f"tiny-pretrain-{ids[0]}.out").read_text()
    assert len(re.findall(r"^straits: tiny/pretrain job 1 of 1 on", text, re.M)) == 2, text


@pytest.mark.slow
def test_submit_sh_run_twice_on_slurm_queues_nothing_more(rules: RuleSet, tmp_path: Path) -> None:
    """submit.sh retried while its jobs are queued: it used to queue the whole plan again;
    now it exits 1 and queues nothing, and the first run's jobs complete, each stage once."""
    env, out, log = _ci(rules, tmp_path, 5)
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    rc2, ids2, err2 = _submit_rc(out, env)
    assert rc2 == 1 and ids2 == [], err2
    assert set(ids) <= set(re.findall(r"\d+", err2))
    states = _wait(ids, env, timeout=240)
    assert [states[i] for i in ids] == ["COMPLETED"] * 3, states
    assert log.read_text().split() == ["start", "end", "sft", "serve"]


@pytest.mark.slow
def test_a_stage_whose_directory_is_gone_fails_and_stops_the_rest(
    rules: RuleSet, tmp_path: Path
) -> None:
    """The bundle's folder (the jobs' working directory and output path) moved away while
    pretrain runs: held, sft cannot start there and fails without running, serve is
    cancelled."""
    env, out, log = _ci(rules, tmp_path, 8)
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    _until(log, "start")
    out.rename(tmp_path / "moved")
    states = _wait(ids, env, timeout=240)
    assert [states[i] for i in ids] == ["COMPLETED", "FAILED", "CANCELLED"], states
    assert log.read_text().split() == ["start", "end"]


@pytest.mark.slow
def test_submit_sh_where_the_jobs_cannot_write_queues_nothing_on_slurm(
    rules: RuleSet, shared_tmp: Path
) -> None:
    """As nobody (or read-only), a bundle in a folder it cannot write: before, exit 0 and
    pretrain FAILED at launch (JobLaunchFailure), sft and serve CANCELLED; now exit 1, no job."""
    ckpt = shared_tmp / "ckpt"
    ckpt.mkdir()
    ckpt.chmod(0o777)
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(ckpt)}
    log = ckpt / "stages.log"
    out, _ = _export_ci(shared_tmp, rules, [f"{s}=echo {s} >> {log}" for s in STAGES])
    submit = out / "slurm" / "straits-ci" / "submit.sh"
    cmd = _as_one_who_cannot_write(submit.parent, env, "bash", str(submit))
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and re.findall(r": job (\d+)", p.stdout) == [], p.stdout + p.stderr
    assert not log.exists()
