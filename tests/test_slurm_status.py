"""A Slurm bundle's ``status.sh`` (slurm32): where each planned stage stands after ``submit.sh``,
stages that never started and why, as rows and an exit status.

Offline with stand-ins for sbatch, squeue, sacct, scontrol and scancel; then against the real
one-machine Slurm of `.ci/slurm.sh` (slow; they skip without it and fail under
STRAITS_REQUIRE_SLURM=1), with the helpers of tests/test_export_slurm.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from straits.export import exporter, write_bundle
from straits.export.base import ExportInput
from straits.rules import RuleSet
from test_export_slurm import _export_ci, _slurm_env, _submit_rc, _wait, fake_slurm
from test_slurm_faults import FAILING_SBATCH, inp  # noqa: F401  (inp: the fixture)
from test_slurm_operator_faults import _ci, _until

#: squeue stand-in: the rows of $SQUEUE_ROWS whatever the format asked (status.sh's
#: ``JobID|State|BatchHost|RestartCnt|StartTime|PreemptTime|Comment|Name|Reason|``,
#: :func:`qrow`; submit.sh's
#: ``%i %k`` finds no comment in them); SQUEUE_FAIL=1 fails
ROWS_SQUEUE = """#!/bin/bash
[ -z "${SQUEUE_FAIL:-}" ] || { echo "squeue: error: Unable to contact controller" >&2; exit 1; }
[ ! -f "${SQUEUE_ROWS:-}" ] || cat "$SQUEUE_ROWS"
"""

#: sacct stand-in: accounting not configured, as on the CI cluster
NO_SACCT = '#!/bin/bash\necho "Slurm accounting storage is disabled" >&2\nexit 1\n'


def qrow(
    job: object,
    mark: str,
    state: str,
    reason: str,
    host: str,
    name: str,
    restarts: int = 0,
    preempt: str = "N/A",
) -> str:
    """One row of status.sh's squeue, in the order it asks the columns (free text last);
    the job started at 2026-12-04T10:00:00, ``preempt`` its PreemptTime."""
    start = "2026-12-04T10:00:00"
    return f"{job}|{state}|{host}|{restarts}|{start}|{preempt}|{mark}|{name}|{reason}|"


def _status(folder: Path, env: dict[str, str], *args: str) -> tuple[int, list[list[str]]]:
    """status.sh --tsv: its exit status and its rows (header first)."""
    p = subprocess.run(
        ["bash", str(folder / "status.sh"), "--tsv", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return p.returncode, [line.split("\t") for line in p.stdout.splitlines()]


def _offline(files: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], Path]:
    write_bundle(tmp_path, files, executable=(".sh", ".sbatch"))
    env = fake_slurm(tmp_path)
    for name, text in (("squeue", ROWS_SQUEUE), ("sacct", NO_SACCT)):
        (tmp_path / "bin" / name).write_text(text)
    env["SQUEUE_ROWS"] = str(tmp_path / "squeue.rows")
    # the site that submits most (the first in name order held one job since est33's
    # estimator refit moved the example's greedy pre-train next to its fine-tune)
    scripts = sorted(tmp_path.glob("slurm/*/submit.sh"))
    return env, max(scripts, key=lambda f: len(f.read_bytes())).parent


def _planned(folder: Path) -> list[str]:
    return [p.stem for p in sorted(folder.glob("*.sbatch"))]


def test_every_cluster_folder_has_a_status_sh_that_parses(
    inp: ExportInput,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Beside each submit.sh a status.sh, that bash (and shellcheck, where installed) accepts,
    naming every stage of its folder; a bad argument is exit 2."""
    files = exporter("slurm").render(inp).files
    submits = {p.rsplit("/", 1)[0] for p in files if p.endswith("/submit.sh")}
    assert submits and submits == {p.rsplit("/", 1)[0] for p in files if p.endswith("/status.sh")}
    write_bundle(tmp_path, files, executable=(".sh", ".sbatch"))
    for folder in submits:
        script = tmp_path / folder / "status.sh"
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
        if shutil.which("shellcheck"):
            p = subprocess.run(["shellcheck", "-S", "warning", str(script)], capture_output=True)
            assert p.returncode == 0, p.stdout
        stages = script.read_text().split("STAGES=(", 1)[1].split(")", 1)[0].split()
        assert sorted(s.split(":")[0] for s in stages) == _planned(tmp_path / folder)
    env = fake_slurm(tmp_path)
    p = subprocess.run(["bash", str(script), "--json"], env=env, capture_output=True)
    assert p.returncode == 2


def test_a_submit_sh_stopped_half_way_leaves_stages_not_submitted(
    inp: ExportInput,  # noqa: F811
    tmp_path: Path,
) -> None:
    """sbatch refuses the second job: submit.sh cancels the first and stops. status.sh says the
    first stage was cancelled by it before it started and the rest were never submitted
    (exit 1), from the record submit.sh keeps beside itself."""
    env, folder = _offline(exporter("slurm").render(inp).files, tmp_path)
    (tmp_path / "bin" / "sbatch").write_text(FAILING_SBATCH)
    p = subprocess.run(
        ["bash", str(folder / "submit.sh")],
        env={**env, "SBATCH_FAIL_AT": "2"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 1
    first = (tmp_path / "sbatch.log").read_text().split()[0]
    mark = (folder / "submit.sh").read_text().split("MARK=", 1)[1].split("\n", 1)[0]
    first_name = next(
        line.split()[1]
        for line in (folder / ".straits-submitted").read_text().splitlines()
        if line.startswith("job ")
    )
    rows = qrow(first, mark, "CANCELLED", "JobHeldUser", "n/a", first_name) + "\n"
    (tmp_path / "squeue.rows").write_text(rows)
    rc, table = _status(folder, env)
    assert rc == 1
    assert table[0] == ["stage", "state", "part", "jobs", "slurm", "why"]
    states = {r[0]: (r[1], r[3], r[4]) for r in table[1:]}
    assert sorted(states) == _planned(folder)
    assert states.pop(first_name) == ("cancelled", first, "CANCELLED/JobHeldUser")
    assert {s[0] for s in states.values()} == {"not-submitted"}


def test_status_reads_the_queue_by_comment_without_a_record(rules: RuleSet, tmp_path: Path) -> None:
    """No record (a bundle submitted by hand, the file removed): the jobs with the plan's
    comment and the stage's name, the newest; another plan's jobs are not counted. A job the
    controller forgot with no accounting is unknown (exit 4); squeue failing is exit 4."""
    bundle, _ = _export_ci(tmp_path / "ci", rules, ["true"])
    files = {str(p.relative_to(bundle)): p.read_text() for p in bundle.rglob("*") if p.is_file()}
    env, folder = _offline(files, tmp_path)
    mark = (folder / "submit.sh").read_text().split("MARK=", 1)[1].split("\n", 1)[0]
    names = [e.split(":")[0] for e in _stages(folder)]
    rows = [qrow(i + 10, mark, "COMPLETED", "None", "node", n) for i, n in enumerate(names)]
    rows.append(qrow(99, "straits:other/x", "FAILED", "NonZeroExitCode", "node", names[0]))
    rows.append(qrow(5, mark, "FAILED", "NonZeroExitCode", "node", names[0]))  # an older run's
    (tmp_path / "squeue.rows").write_text("\n".join(rows) + "\n")
    rc, table = _status(folder, env)
    assert rc == 0 and [(r[1], r[3]) for r in table[1:]] == [
        ("completed", "10"),
        ("completed", "11"),
        ("completed", "12"),
    ], table
    (folder / ".straits-submitted").write_text(f"run 1\njob {names[0]} 1 1 7\ndone\n")
    rc, table = _status(folder, env)
    assert rc == 1  # the record's run submitted only the first stage
    assert table[1][:4] == [names[0], "unknown", "1/1", "7"]
    assert {r[1] for r in table[2:]} == {"not-submitted"}
    rc, _ = _status(folder, {**env, "SQUEUE_FAIL": "1"})
    assert rc == 4


def test_a_requeued_stage_is_not_said_to_wait_for_its_planned_start(
    rules: RuleSet, tmp_path: Path
) -> None:
    """Preempted (or its node failed, or scontrol requeue): the job is PENDING on BeginTime
    while Slurm holds it before it may start again, which status.sh read as the plan's
    --begin; now its Slurm column says it was requeued (found preempting on the real cluster,
    tests/test_slurm_preemption.py)."""
    bundle, _ = _export_ci(tmp_path / "ci", rules, ["true"])
    files = {str(p.relative_to(bundle)): p.read_text() for p in bundle.rglob("*") if p.is_file()}
    env, folder = _offline(files, tmp_path)
    mark = (folder / "submit.sh").read_text().split("MARK=", 1)[1].split("\n", 1)[0]
    names = [e.split(":")[0] for e in _stages(folder)]
    rows = [qrow(10, mark, "PENDING", "BeginTime", "straits-ci", names[0], 1)]
    rows += [qrow(i + 11, mark, "PENDING", "Dependency", "n/a", n) for i, n in enumerate(names[1:])]
    (tmp_path / "squeue.rows").write_text("\n".join(rows) + "\n")
    rc, table = _status(folder, env)
    assert rc == 3
    assert [r[1:5] for r in table[1:]] == [
        ["pending", "1/1", "10", "PENDING/BeginTime (requeued 1)"],
        ["pending", "1/1", "11", "PENDING/Dependency"],
        ["pending", "1/1", "12", "PENDING/Dependency"],
    ]


#: squeue stand-in that prints the columns ``-O`` asks, in its order with its suffixes, from
#: the JSON lines of $SQUEUE_JOBS (one object per job, keyed by column)
FORMAT_SQUEUE = """#!PYTHON
import json, os, sys
fmt = sys.argv[sys.argv.index("-O") + 1].split(",")
for line in open(os.environ["SQUEUE_JOBS"]):
    job = json.loads(line)
    print("".join(str(job[f.split(":")[0]]) + f.split(":", 1)[1] for f in fmt))
"""


def test_a_bar_in_slurm_s_text_shifts_no_column(rules: RuleSet, tmp_path: Path) -> None:
    """squeue's rows were split on '|' with the free-text reason in the middle: a '|' in it
    (free text as far as status.sh knows) moved the host into the name and the name
    into the restart count, so a stage found without a record was not-submitted. The reason is
    the last column now, read to the end of the row; a tab in it is no --tsv column; another
    job's comment with a '|' in it is not ours and moves nothing either."""
    bundle, _ = _export_ci(tmp_path / "ci", rules, ["true"])
    files = {str(p.relative_to(bundle)): p.read_text() for p in bundle.rglob("*") if p.is_file()}
    env, folder = _offline(files, tmp_path)
    squeue = tmp_path / "bin" / "squeue"
    squeue.write_text(FORMAT_SQUEUE.replace("PYTHON", sys.executable))
    env["SQUEUE_JOBS"] = str(tmp_path / "jobs.jsonl")
    mark = (folder / "submit.sh").read_text().split("MARK=", 1)[1].split("\n", 1)[0]
    names = [e.split(":")[0] for e in _stages(folder)]

    def job(i: int, state: str, reason: str, name: str, comment: str = mark) -> str:
        host = "n/a" if reason == "DependencyNeverSatisfied" else "straits-ci"
        cols = {"JobID": i, "Comment": comment, "State": state, "Reason": reason}
        times = {"StartTime": "2026-12-04T10:00:00", "PreemptTime": "N/A"}
        return json.dumps({**cols, **times, "BatchHost": host, "Name": name, "RestartCnt": 0})

    jobs = [
        job(10, "FAILED", "launch failed|held\tby admin|", names[0]),
        job(11, "CANCELLED", "DependencyNeverSatisfied", names[1]),
        job(12, "CANCELLED", "DependencyNeverSatisfied", names[2]),
        job(13, "COMPLETED", "None", names[0], f"{mark}|x"),
        job(14, "COMPLETED", "None", names[0], f"note|{mark}"),
    ]
    (tmp_path / "jobs.jsonl").write_text("\n".join(jobs) + "\n")
    want = [
        ["failed", "1/1", "10", "FAILED/launch failed|held by admin|"],
        ["cancelled", "1/1", "11", "CANCELLED/DependencyNeverSatisfied"],
        ["cancelled", "1/1", "12", "CANCELLED/DependencyNeverSatisfied"],
    ]
    rc, table = _status(folder, env)  # no record: found by comment and name
    assert rc == 1 and [r[1:5] for r in table[1:]] == want, table
    assert {len(r) for r in table} == {6}
    record = "run 1\n" + "".join(f"job {n} 1 1 {i + 10}\n" for i, n in enumerate(names))
    (folder / ".straits-submitted").write_text(record + "done\n")
    rc, table = _status(folder, env)
    assert rc == 1 and [r[1:5] for r in table[1:]] == want, table


def test_a_stage_preempted_in_cancel_mode_is_preempted_and_named_by_the_stages_after_it(
    rules: RuleSet, tmp_path: Path
) -> None:
    """PreemptMode=CANCEL: the preempted job ends PREEMPTED (as the real cluster shows it,
    tests/test_slurm_preemption.py), which status.sh said was a ``failed`` stage; now
    ``preempted`` (exit 1), the stages after it cancelled before they started name it; so is
    one that ended itself (FAILED) after the preemption signalled it (a GraceTime). A
    suspended stage (SUSPEND mode, scontrol suspend) is still going: ``running``, exit 3."""
    bundle, _ = _export_ci(tmp_path / "ci", rules, ["true"])
    files = {str(p.relative_to(bundle)): p.read_text() for p in bundle.rglob("*") if p.is_file()}
    env, folder = _offline(files, tmp_path)
    mark = (folder / "submit.sh").read_text().split("MARK=", 1)[1].split("\n", 1)[0]
    names = [e.split(":")[0] for e in _stages(folder)]
    never = "DependencyNeverSatisfied"
    rows = [qrow(10, mark, "PREEMPTED", "None", "straits-ci", names[0])]
    rows += [qrow(i + 11, mark, "CANCELLED", never, "n/a", n) for i, n in enumerate(names[1:])]
    (tmp_path / "squeue.rows").write_text("\n".join(rows) + "\n")
    rc, table = _status(folder, env)
    assert rc == 1
    assert [r[1:5] for r in table[1:]] == [
        ["preempted", "1/1", "10", "PREEMPTED/None"],
        ["cancelled", "1/1", "11", f"CANCELLED/{never}"],
        ["cancelled", "1/1", "12", f"CANCELLED/{never}"],
    ]
    assert all(names[0] in r[5] for r in table[2:]), table
    # with a GraceTime the job is signalled and ends itself: FAILED, preempted after its start
    late, early = "2026-12-04T10:05:00", "2026-12-04T09:55:00"
    rows[0] = qrow(10, mark, "FAILED", "NonZeroExitCode", "straits-ci", names[0], 0, late)
    (tmp_path / "squeue.rows").write_text("\n".join(rows) + "\n")
    rc, table = _status(folder, env)
    assert rc == 1 and table[1][1:5] == ["preempted", "1/1", "10", "FAILED/NonZeroExitCode"]
    assert all(names[0] in r[5] for r in table[2:]), table
    # preempted in a run before (requeued), failed in its last one: failed
    rows[0] = qrow(10, mark, "FAILED", "NonZeroExitCode", "straits-ci", names[0], 1, early)
    (tmp_path / "squeue.rows").write_text("\n".join(rows) + "\n")
    rc, table = _status(folder, env)
    assert rc == 1 and table[1][1] == "failed", table
    rows[0] = qrow(10, mark, "SUSPENDED", "Preempted", "straits-ci", names[0])
    rows[1:] = [
        qrow(i + 11, mark, "PENDING", "Dependency", "n/a", n) for i, n in enumerate(names[1:])
    ]
    (tmp_path / "squeue.rows").write_text("\n".join(rows) + "\n")
    rc, table = _status(folder, env)
    assert rc == 3
    assert [r[1:5] for r in table[1:2]] == [["running", "1/1", "10", "SUSPENDED/Preempted"]]


def _stages(folder: Path) -> list[str]:
    return (folder / "status.sh").read_text().split("STAGES=(", 1)[1].split(")", 1)[0].split()


# --- against a real Slurm -----------------------------------------------------------------------
def _real_status(out: Path, env: dict[str, str]) -> tuple[int, list[list[str]]]:
    return _status(out / "slurm" / "straits-ci", env)


@pytest.mark.slow
def test_status_of_a_pipeline_that_completes(rules: RuleSet, tmp_path: Path) -> None:
    """Running: exit 3, pretrain pending or running, sft and serve pending on their
    dependency; once done: exit 0, every stage completed with its job id."""
    env, out, log = _ci(rules, tmp_path, 6)
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    _until(log, "start")
    rc, table = _real_status(out, env)
    assert rc == 3, table
    assert [r[1] for r in table[1:]] == ["running", "pending", "pending"], table
    assert table[2][4] == "PENDING/Dependency"
    _wait(ids, env, timeout=240)
    rc, table = _real_status(out, env)
    assert rc == 0, table
    assert [(r[1], r[3]) for r in table[1:]] == [("completed", i) for i in ids]


@pytest.mark.slow
def test_status_of_a_suspended_stage_says_running_and_it_goes_on(
    rules: RuleSet, tmp_path: Path
) -> None:
    """slurm33: pretrain suspended (``scontrol suspend``, as a preemption in SUSPEND mode
    leaves it): still going, ``running`` with Slurm's SUSPENDED, exit 3; resumed, it and the
    stages after it run to their end, each once (exit 0)."""
    env, out, log = _ci(rules, tmp_path, 6)
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    _until(log, "start")
    subprocess.run(["scontrol", "suspend", ids[0]], env=env, check=True)
    try:
        rc, table = _real_status(out, env)
        assert rc == 3, table
        assert [r[1:5] for r in table[1:2]] == [["running", "1/1", ids[0], table[1][4]]]
        assert table[1][4].startswith("SUSPENDED/"), table
    finally:
        subprocess.run(["scontrol", "resume", ids[0]], env=env, check=True)
    _wait(ids, env, timeout=240)
    rc, table = _real_status(out, env)
    assert rc == 0 and [(r[1], r[3]) for r in table[1:]] == [("completed", i) for i in ids]
    assert log.read_text().split() == ["start", "end", "sft", "serve"]


@pytest.mark.slow
def test_status_of_a_failed_stage_names_the_stages_that_never_started(
    rules: RuleSet, tmp_path: Path
) -> None:
    """pretrain exits 3: it failed, sft and serve were cancelled before they started
    (DependencyNeverSatisfied); exit 1."""
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(tmp_path / "ckpt")}
    out, _ = _export_ci(tmp_path, rules, ["pretrain=exit 3", "sft=true", "serve=true"])
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    _wait(ids, env, timeout=120)
    rc, table = _real_status(out, env)
    assert rc == 1, table
    assert [r[1:5] for r in table[1:]] == [
        ["failed", "1/1", ids[0], "FAILED/NonZeroExitCode"],
        ["cancelled", "1/1", ids[1], "CANCELLED/DependencyNeverSatisfied"],
        ["cancelled", "1/1", ids[2], "CANCELLED/DependencyNeverSatisfied"],
    ]


@pytest.mark.slow
def test_status_of_a_pipeline_cancelled_half_way(rules: RuleSet, tmp_path: Path) -> None:
    """scancel of the running pretrain: cancelled while it ran, sft and serve cancelled before
    they started; exit 1. Submitted again (the way to resume), status.sh reads the new run."""
    env, out, log = _ci(rules, tmp_path, 30)
    rc, ids, err = _submit_rc(out, env)
    assert rc == 0, err
    _until(log, "start")
    subprocess.run(["scancel", ids[0]], env=env, check=True)
    _wait(ids, env, timeout=120)
    rc, table = _real_status(out, env)
    assert rc == 1, table
    assert [(r[1], r[4]) for r in table[1:]] == [
        ("cancelled", table[1][4]),
        ("cancelled", "CANCELLED/DependencyNeverSatisfied"),
        ("cancelled", "CANCELLED/DependencyNeverSatisfied"),
    ]
    assert table[1][4].startswith("CANCELLED/")
    rc, again, err = _submit_rc(out, env)
    assert rc == 0, err
    rc, table = _real_status(out, env)
    assert rc == 3 and [r[3] for r in table[1:]] == again, table
    subprocess.run(["scancel", *again], env=env, check=True)
