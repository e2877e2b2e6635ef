"""A stage's batch shell and Slurm's signals, offline (stand-ins for srun and scontrol).

Slurm stops a job (preemption, requeue, scancel, its limit) by signalling the step and the batch
shell together: the step dies, the shell goes on past ``wait`` and gets its SIGTERM a moment
later. bash 5.2, given a signal while it expands a command substitution, may fail to parse the
signal's trap ("trap: line 2: unexpected EOF while looking for matching `)'") and go on as if
no signal had come: a clean-clone CI saw the preempted stage's output lack its "stopped by
Slurm" line once. The shell therefore reads what it needs through a pipe into ``read`` (with
``lastpipe``, in the shell itself) and expands no command substitution.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from export_support import RUN_STEP, offline_job
from straits.export import export_input, exporter, write_bundle
from straits.export.base import ExportInput
from straits.export.slurm import DONE_MARKER
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.rules import RuleSet

#: ``$(`` not followed by ``(``: a command substitution, not an arithmetic expansion
COMSUB = re.compile(r"\$\((?!\()")


@pytest.fixture(scope="module")
def inp(example_path: Path, rules: RuleSet) -> ExportInput:
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, time_limit=5).to_json()
    return export_input(sc, plan, rules, plan_id="test-plan", run="python train.py")


def _scripts(inp: ExportInput, tmp_path: Path) -> dict[str, Path]:
    res = exporter("slurm").render(inp)
    write_bundle(tmp_path, res.files, executable=(".sh", ".sbatch"))
    return {
        j.name: next(tmp_path / p for p in res.files if p.endswith(f"/{j.name}.sbatch"))
        for j in inp.jobs
    }


def test_the_batch_shell_expands_no_command_substitution(
    inp: ExportInput,
    tmp_path: Path,
) -> None:
    for name, script in _scripts(inp, tmp_path).items():
        lines = script.read_text().splitlines()
        code = [(i, line) for i, line in enumerate(lines) if not line.lstrip().startswith("#")]
        assert [line for _, line in code if COMSUB.search(line)] == [], name
        first_trap = min(i for i, line in code if line.startswith("trap "))
        assert (lines.index("shopt -s lastpipe"), name) < (first_trap, name)


def _job_state_stand_in(tmp_path: Path, state: str) -> None:
    """scontrol: ``show hostnames`` lists node-a, ``show job`` says the job is in ``state``."""
    (tmp_path / "bin" / "scontrol").write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        '  "show hostnames"*) echo node-a ;;\n'
        f'  "show job"*) echo "JobId=42 JobName=x JobState={state} Reason=None" ;;\n'
        "esac\n"
    )


@pytest.mark.parametrize(("state", "complete"), [("RUNNING", True), ("COMPLETING", False)])
def test_the_job_state_read_through_a_pipe_decides_completion(
    inp: ExportInput,
    tmp_path: Path,
    state: str,
    complete: bool,
) -> None:
    """The step exits 0 having run to its end: complete only while the job still runs (a job
    COMPLETING lost its node, or was cancelled or requeued)."""
    job = next(j for j in inp.jobs if not j.serving)
    script = _scripts(inp, tmp_path / "bundle")[job.name]
    out = tmp_path / "out.txt"
    srun = "#!/bin/bash\n" + RUN_STEP + 'echo "ran $MASTER_ADDR" >> "$OUT"\n'
    srun += 'STRAITS_COMMAND="exit 0" step "$@"\n'
    env = offline_job(tmp_path, srun, out)
    _job_state_stand_in(tmp_path, state)
    res = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert out.read_text().split() == ["ran", "node-a"]  # MASTER_ADDR read through a pipe
    assert (res.returncode == 0) is complete, res.stderr
    assert (f"job is {state}" in res.stderr) is not complete, res.stderr


def _start_until_the_step_runs(
    script: Path, env: dict[str, str], out: Path
) -> tuple[subprocess.Popen[str], int]:
    """The batch shell, started and waited on until its step (the stand-in srun) has written
    its pid to ``out``; the test fails if it never does within 5 s."""
    shell = subprocess.Popen(
        ["bash", str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for _ in range(500):
        if out.exists() and out.read_text().strip():
            return shell, int(out.read_text())
        time.sleep(0.01)
    shell.kill()
    pytest.fail(f"the step never started: {shell.communicate()}")


@pytest.mark.parametrize("later_s", [0.0, 0.002, 0.05])
def test_sigterm_after_the_step_dies_stops_the_stage_and_says_so(
    inp: ExportInput,
    tmp_path: Path,
    later_s: float,
) -> None:
    """As Slurm stops a job: the step (srun) gets SIGTERM first and dies, the batch shell gets
    it ``later_s`` after: exit 143, the output says Slurm stopped it, nothing marked complete."""
    job = next(j for j in inp.jobs if not j.serving)
    script = _scripts(inp, tmp_path / "bundle")[job.name]
    out = tmp_path / "out.txt"
    srun = '#!/bin/bash\necho "$$" > "$OUT"\nexec sleep 60\n'
    env = offline_job(tmp_path, srun, out)
    _job_state_stand_in(tmp_path, "COMPLETING")
    shell, step = _start_until_the_step_runs(script, env, out)
    subprocess.run(["kill", "-TERM", str(step)], check=True)
    time.sleep(later_s)
    shell.send_signal(signal.SIGTERM)
    _, err = shell.communicate(timeout=30)
    assert shell.returncode in (143, 1), err  # 1: the shell had seen the step end first
    if shell.returncode == 143:
        assert "stopped by Slurm (SIGTERM" in err, err
    else:
        assert "job is COMPLETING" in err, err
    assert "trap:" not in err, err
    assert not list(tmp_path.rglob(DONE_MARKER))


def test_submit_sh_expands_no_command_substitution_under_its_traps(
    inp: ExportInput, tmp_path: Path
) -> None:
    """Ctrl-C or SIGTERM while submit.sh expanded one could leave the trap unparsed and the
    submission going on (1 run in 300 of a loop of ``$(sleep | cut)`` ignored Ctrl-C)."""
    res = exporter("slurm").render(inp)
    for path, text in res.files.items():
        if not path.endswith("/submit.sh"):
            continue
        lines = text.splitlines()
        first_trap = next(i for i, line in enumerate(lines) if line.startswith("trap "))
        assert lines.index("shopt -s lastpipe") < first_trap, path
        code = [ln for ln in lines[first_trap:] if not ln.lstrip().startswith("#")]
        assert [ln for ln in code if COMSUB.search(ln)] == [], path


@pytest.mark.parametrize(
    ("sbatch", "why"),
    [("exit 0", "no job id"), ('echo "sbatch: error: refused" >&2; exit 1', "sbatch fails")],
)
def test_submit_sh_stops_when_sbatch_gives_no_job_id(
    inp: ExportInput, tmp_path: Path, sbatch: str, why: str
) -> None:
    """The job id read through a pipe: sbatch printing none, or failing, stops submit.sh
    (exit 1) with nothing left queued by it; a good run releases the held first jobs."""
    from test_export_slurm import fake_slurm

    res = exporter("slurm").render(inp)
    write_bundle(tmp_path, res.files, executable=(".sh", ".sbatch"))
    env = fake_slurm(tmp_path)
    submit = sorted(tmp_path.glob("slurm/*/submit.sh"))[0]
    ok = subprocess.run(["bash", str(submit)], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    released = (tmp_path / "scontrol.log").read_text().split()
    assert released[0] == "release" and all(i.isdigit() for i in released[1].split(","))
    (tmp_path / "bin" / "sbatch").write_text(f"#!/bin/bash\n{sbatch}\n")
    again = {**env, "STRAITS_SUBMIT_AGAIN": "1"}
    bad = subprocess.run(["bash", str(submit)], env=again, capture_output=True, text=True)
    assert bad.returncode == 1, (why, bad.stderr)
    assert (tmp_path / "scontrol.log").read_text().split() == released, why  # none released


#: sbatch's output: the job id on a line of its own (``;CLUSTER`` after it on a multi-cluster
#: setup), as a site's wrapper may print it, with the id submit.sh must take from it
SBATCH_OUTPUT_WITH_AN_ID = [
    ('echo "$n;cluster-a"', "the cluster after the id"),
    ('printf "%s \\r\\n" "$n"', "a trailing space and CRLF"),
    ('printf "\\n%s\\n" "$n"', "a blank line first"),
    ('echo "sbatch: notice: account x is over quota"; echo "$n"', "a wrapper's notice first"),
    ('printf "%s" "$n"', "no newline at the end"),
]


def _numbered_sbatch(tmp_path: Path, prints: str) -> None:
    """sbatch stand-in: ids from 101, each call logged as the fake's are, printing ``prints``
    (shell text with the id in ``$n``)."""
    (tmp_path / "bin" / "sbatch").write_text(
        "#!/bin/bash\n"
        'n=$(( $(cat "$SBATCH_LOG" 2>/dev/null | wc -l) + 101 ))\n'
        'echo "$n $*" >> "$SBATCH_LOG"\n' + prints + "\n"
    )


def _submit_with_sbatch_printing(
    inp: ExportInput, tmp_path: Path, prints: str
) -> subprocess.CompletedProcess[str]:
    """The plan's first submit.sh, run against the stand-in Slurm whose sbatch prints
    ``prints`` (``$n`` the job's number)."""
    from test_export_slurm import fake_slurm

    res = exporter("slurm").render(inp)
    write_bundle(tmp_path, res.files, executable=(".sh", ".sbatch"))
    env = fake_slurm(tmp_path)
    _numbered_sbatch(tmp_path, prints)
    submit = sorted(tmp_path.glob("slurm/*/submit.sh"))[0]
    return subprocess.run(["bash", str(submit)], env=env, capture_output=True, text=True)


@pytest.mark.parametrize(("prints", "why"), SBATCH_OUTPUT_WITH_AN_ID)
def test_submit_sh_takes_the_job_id_from_the_line_that_holds_it(
    inp: ExportInput, tmp_path: Path, prints: str, why: str
) -> None:
    """The line read was sbatch's first, whole: a notice before the id became the 'id' every
    later job depended on and that was released, a blank line left the job held and said sbatch
    gave none, a CR stayed in it. Now: the one line of digits, the rest passed on to stderr."""
    run = _submit_with_sbatch_printing(inp, tmp_path, prints)
    assert run.returncode == 0, (why, run.stderr)
    calls = (tmp_path / "sbatch.log").read_text().splitlines()
    ids = [c.split()[0] for c in calls]
    deps = [a.split(":", 1)[1] for c in calls for a in c.split() if a.startswith("--dependency=")]
    assert deps and all(set(d.split(":")) <= set(ids) for d in deps), (why, deps)
    assert (tmp_path / "scontrol.log").read_bytes() == b"release 101\n", why
    assert ("notice: account x" in run.stderr) is ("notice" in why), run.stderr


@pytest.mark.parametrize(
    ("prints", "said"),
    [
        ('echo "Submitted batch job $n"', "no job id"),
        ('echo "$n"; echo "$(( n + 1 ))"', "2 job ids"),
        ('echo "sbatch: notice: x"', "no job id"),
    ],
)
def test_submit_sh_stops_when_sbatch_prints_no_single_job_id(
    inp: ExportInput, tmp_path: Path, prints: str, said: str
) -> None:
    """Not one line of digits: submit.sh stops (exit 1), says what sbatch printed, releases
    nothing (the 'id' was the whole first line: 'Submitted batch job 101' was taken as one)."""
    run = _submit_with_sbatch_printing(inp, tmp_path, prints)
    assert run.returncode == 1, run.stderr
    assert f"sbatch gave {said}" in run.stderr, run.stderr
    assert not (tmp_path / "scontrol.log").exists()
    assert len((tmp_path / "sbatch.log").read_text().splitlines()) == 1


#: job control on (an operator's ``export SHELLOPTS`` carries ``monitor`` into every bash they
#: start, and sbatch's ``--export=ALL`` into the job; ``bash -i submit.sh`` too): bash runs the
#: last command of a pipeline in this shell (lastpipe) only with job control off
MONITOR = {"SHELLOPTS": "monitor"}


def test_the_batch_shell_reads_through_its_pipes_with_job_control_on(
    inp: ExportInput, tmp_path: Path
) -> None:
    """With job control on, ``read`` ran in a subshell: MASTER_ADDR empty and the job's state
    empty, so a step that ran to its end while the job was COMPLETING was marked complete."""
    job = next(j for j in inp.jobs if not j.serving)
    script = _scripts(inp, tmp_path / "bundle")[job.name]
    out = tmp_path / "out.txt"
    srun = "#!/bin/bash\n" + RUN_STEP + 'echo "ran $MASTER_ADDR" >> "$OUT"\n'
    srun += 'STRAITS_COMMAND="exit 0" step "$@"\n'
    env = {**offline_job(tmp_path, srun, out), **MONITOR}
    _job_state_stand_in(tmp_path, "COMPLETING")
    res = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert out.read_text().split() == ["ran", "node-a"]
    assert res.returncode == 1 and "job is COMPLETING" in res.stderr, res.stderr
    assert not list(tmp_path.rglob(DONE_MARKER))


def test_submit_sh_reads_the_job_ids_with_job_control_on(inp: ExportInput, tmp_path: Path) -> None:
    """With job control on, the id was read in a subshell: the first job submitted (held), then
    "sbatch gave no job id", exit 1, the job left in the queue."""
    from test_export_slurm import fake_slurm

    res = exporter("slurm").render(inp)
    write_bundle(tmp_path, res.files, executable=(".sh", ".sbatch"))
    env = {**fake_slurm(tmp_path), **MONITOR}
    submit = sorted(tmp_path.glob("slurm/*/submit.sh"))[0]
    run = subprocess.run(["bash", str(submit)], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "scontrol.log").read_text() == "release 101\n"


def test_the_batch_shell_outlives_slurms_warning_under_submit_shs_shell_options(
    inp: ExportInput, tmp_path: Path
) -> None:
    """An exported SHELLOPTS leaves submit.sh with its own options in it (errexit among them),
    and --export=ALL hands it to the job: the batch shell started with errexit, and the wait
    that Slurm's warning (SIGUSR1) interrupts (status 138) ended it, the step still running."""
    job = next(j for j in inp.jobs if not j.serving)
    script = _scripts(inp, tmp_path / "bundle")[job.name]
    out = tmp_path / "out.txt"
    srun = "#!/bin/bash\n" + RUN_STEP + 'echo "$$" > "$OUT"\nSTRAITS_COMMAND="sleep 2" step "$@"\n'
    env = offline_job(tmp_path, srun, out)
    env["SHELLOPTS"] = "braceexpand:errexit:hashall:interactive-comments:nounset:pipefail"
    _job_state_stand_in(tmp_path, "RUNNING")
    shell, _ = _start_until_the_step_runs(script, env, out)
    shell.send_signal(signal.SIGUSR1)  # early (the command has not had its time): a timer
    stdout, err = shell.communicate(timeout=30)
    assert shell.returncode == 0, err
    assert "complete" in stdout, stdout
