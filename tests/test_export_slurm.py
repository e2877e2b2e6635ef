"""Slurm exports: the scripts' grammar and chaining offline, then against a real Slurm.

The real-Slurm tests (marked slow) need the one-machine cluster of `.ci/slurm.sh start DIR`
(which `.ci/run` starts) and SLURM_CONF pointing at its slurm.conf; they skip without it,
unless STRAITS_REQUIRE_SLURM=1 (set by `.ci/run`), when they fail. That cluster's partitions
come from tests/data/slurm-ci.yaml and the shipped example, so `sbatch --test-only` judges
every exported script against the partitions, node counts, GPUs and MaxTime its targets name.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from export_support import RUN_STEP, offline_job
from straits.export import export_input, exporter, write_bundle
from straits.export.base import ExportInput
from straits.export.commands import parse as parse_run
from straits.export.slurm import MAX_LEAD_S, MIN_LEAD_S, chain, needed_minutes, split
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.model.targets import UNLIMITED, format_minutes, parse_minutes
from straits.plan import make_plan
from straits.rules import RuleSet

ROOT = Path(__file__).resolve().parents[1]
CI_SCENARIO = ROOT / "tests" / "data" / "slurm-ci.yaml"


@pytest.fixture(scope="module")
def inp(example_path: Path, rules: RuleSet) -> ExportInput:
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, time_limit=5).to_json()
    return export_input(sc, plan, rules, plan_id="test-plan", run="python train.py")


# --- grammar and arithmetic ---------------------------------------------------------------------
#: sbatch long options Straits writes, with the grammar of their values (sbatch(1))
SBATCH = {
    "job-name": r"[A-Za-z0-9._-]+",
    "partition": r"[A-Za-z0-9._,-]+",
    "account": r"\S+",
    "nodes": r"[1-9][0-9]*",
    "ntasks-per-node": r"[1-9][0-9]*",
    "gpus-per-node": r"([A-Za-z0-9_]+:)?[1-9][0-9]*",
    "gres": r"[A-Za-z0-9_]+:[1-9][0-9]*",
    "time": r"[0-9]+-[0-9]{2}:[0-9]{2}:[0-9]{2}",
    "output": r"\S+",
    "signal": r"B:USR1@[1-9][0-9]*",
    "kill-on-invalid-dep": r"yes",
    "open-mode": r"append|truncate",
}


def _sbatch_options(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#SBATCH"):
            if line == "#SBATCH --exclusive":
                out["exclusive"] = ""
                continue
            m = re.fullmatch(r"#SBATCH --([a-z-]+)=(\S+)", line)
            assert m, line
            key, value = m.groups()
            assert key in SBATCH and re.fullmatch(SBATCH[key], value), line
            out[key] = value
    return out


def test_scripts_parse_and_fit_the_partitions_max_time(inp: ExportInput, tmp_path: Path) -> None:
    res = exporter("slurm").render(inp)
    write_bundle(tmp_path, res.files, executable=(".sh", ".sbatch"))
    for path in res.files:
        subprocess.run(["bash", "-n", str(tmp_path / path)], check=True)
    for job in inp.jobs:
        assert job.planned.site.targets is not None
        s = job.planned.site.targets.slurm
        assert s is not None
        path = next(p for p in res.files if p.endswith(f"/{job.name}.sbatch"))
        opts = _sbatch_options(res.files[path])
        assert int(opts["nodes"]) * s.gpus_per_node >= job.chips
        limit = parse_minutes(opts["time"])
        assert limit <= s.max_minutes  # the 126-day --time is gone
        parts = int(re.search(r"STRAITS_SEGMENTS:-(\d+)", res.files[path]).group(1))  # type: ignore[union-attr]
        assert parts * limit >= job.hours * 60  # the chain covers the planned time
        gres = job.planned.pool.targets.slurm_gres if job.planned.pool.targets else "gpu"
        assert ("gres" in opts) == (gres != "gpu")


def test_a_stage_longer_than_max_time_is_chained(inp: ExportInput) -> None:
    res = exporter("slurm").render(inp)
    long = max(inp.jobs, key=lambda j: j.hours)
    assert long.planned.site.targets is not None
    s = long.planned.site.targets.slurm
    assert s is not None
    assert long.hours * 60 > s.max_minutes  # the shipped pretrain runs for months
    assert any(f"{long.workload}/{long.stage}" in n and "chained" in n for n in res.notes)


@given(
    st.floats(min_value=0.0, max_value=1e5, allow_nan=False),
    st.integers(min_value=1, max_value=100_000),
)
def test_chain_covers_the_time_within_max_time(hours: float, max_minutes: int) -> None:
    """The command's minutes (each job's limit less the warning after them) cover the stage."""
    parts, work, lead = split(hours, max_minutes)
    assert chain(hours, max_minutes) == (parts, work + lead)
    assert 1 <= work + lead <= max_minutes
    assert parts * work >= needed_minutes(hours) >= hours * 60
    assert (parts - 1) * work < needed_minutes(hours)  # no job more than needed
    if max_minutes >= 2:
        assert MIN_LEAD_S <= lead * 60 <= MAX_LEAD_S
        assert lead * 10 >= work or lead * 60 == MAX_LEAD_S  # a tenth of the time, or 15 min
    else:  # a MaxTime of one minute leaves no room for a warning
        assert (work, lead) == (1, 0)


@given(st.integers(min_value=1, max_value=10**7))
def test_slurm_times_round_trip(minutes: int) -> None:
    assert parse_minutes(format_minutes(minutes)) == minutes


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("90", 90),
        ("1:30", 2),
        ("0:30", 1),
        ("2:00:00", 120),
        ("1-0", 1440),
        ("1-02:30", 1590),
        ("2-00:00:00", 2880),
        ("UNLIMITED", UNLIMITED),
        ("infinite", UNLIMITED),
    ],
)
def test_slurm_time_forms(text: str, minutes: int) -> None:
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("text", ["", "0", "0:00", "1-2-3", "2 days", "-5", "1:2:3:4", "9" * 40])
def test_bad_max_times_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_minutes(text)


FAKE_SBATCH = """#!/bin/bash
# hands out ids from 101 and records the arguments
n=$(( $(wc -l < "$SBATCH_LOG" 2>/dev/null || echo 0) + 101 ))
echo "$n $*" >> "$SBATCH_LOG"
echo "$n"
"""


#: scontrol and scancel stand-ins: each records its arguments in its own log
FAKE_CONTROL = '#!/bin/bash\necho "$*" >> "$FAKE_LOGS/$(basename "$0").log"\n'

#: squeue stand-in for ``squeue -h -o '%i %k'``: an empty queue, or with SQUEUE_FROM_LOG=1 every
#: job sbatch.log holds with its comment; SQUEUE_FAIL=1 fails as a controller that is down
FAKE_SQUEUE = """#!/bin/bash
[ -z "${SQUEUE_FAIL:-}" ] || { echo "squeue: error: Unable to contact controller" >&2; exit 1; }
[ -n "${SQUEUE_FROM_LOG:-}" ] && [ -f "$SBATCH_LOG" ] || exit 0
sed -E 's/^([0-9]+) .*--comment=([^ ]*).*$/\\1 \\2/' "$SBATCH_LOG"
"""


def fake_slurm(tmp_path: Path) -> dict[str, str]:
    """An environment whose sbatch, scontrol, scancel and squeue are stand-ins logging to
    tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, text in (
        ("sbatch", FAKE_SBATCH),
        ("scontrol", FAKE_CONTROL),
        ("scancel", FAKE_CONTROL),
        ("squeue", FAKE_SQUEUE),
    ):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SBATCH_LOG": str(tmp_path / "sbatch.log"),
        "FAKE_LOGS": str(tmp_path),
    }


def _submit_offline(files: dict[str, str], tmp_path: Path) -> list[list[str]]:
    write_bundle(tmp_path, files, executable=(".sh", ".sbatch"))
    env = fake_slurm(tmp_path)
    for submit in sorted(tmp_path.glob("slurm/*/submit.sh")):
        subprocess.run(["bash", str(submit)], check=True, env=env, capture_output=True)
    return [shlex.split(line) for line in (tmp_path / "sbatch.log").read_text().splitlines()]


def test_submit_chains_parts_and_stages_with_afterok(inp: ExportInput, tmp_path: Path) -> None:
    res = exporter("slurm").render(inp)
    calls = _submit_offline(res.files, tmp_path)
    parts: dict[str, list[tuple[str, list[str]]]] = {}
    for jid, *args in calls:
        parts.setdefault(args[-1].removesuffix(".sbatch"), []).append((jid, args))
    releases = (tmp_path / "scontrol.log").read_text().splitlines()
    assert all(r.startswith("release ") for r in releases)
    released = {i for r in releases for i in r.split()[1].split(",")}
    assert set(parts) == {j.name for j in inp.jobs}
    cluster = {j.name: j.planned.site.targets.slurm.cluster for j in inp.jobs}  # type: ignore[union-attr]
    for job in inp.jobs:
        mine = parts[job.name]
        for i, (_jid, args) in enumerate(mine):  # part i+1 waits for part i
            assert f"--export=ALL,STRAITS_SEGMENT={i + 1},STRAITS_SEGMENTS={len(mine)}" in args
            deps = [a for a in args if a.startswith("--dependency=")]
            if i > 0:
                assert deps == [f"--dependency=afterok:{mine[i - 1][0]}"]
        first = mine[0][1]
        deps = [a for a in first if a.startswith("--dependency=")]
        local = [a for a in job.after if cluster[f"{job.workload}-{a}"] == cluster[job.name]]
        if local:
            want = ":".join(parts[f"{job.workload}-{a}"][-1][0] for a in local)
            assert deps == [f"--dependency=afterok:{want}"]
        else:
            assert deps == []
        # a predecessor on another cluster cannot be waited for: the stage is held; so is,
        # until every job is in, a stage that waits for nothing on its cluster
        assert ("--hold" in first) == (len(local) < len(job.after) or not local)
        # ... and released at the end: the first job of a stage with no predecessor at all
        assert (mine[0][0] in released) == (not job.after)


def test_scripts_run_offline_and_honour_the_done_marker(inp: ExportInput, tmp_path: Path) -> None:
    """With stand-ins for scontrol and srun: a stage that exits 0 is marked complete, and a
    later job of its chain then does nothing; a failing command fails the job."""
    res = exporter("slurm").render(inp)
    write_bundle(tmp_path, res.files, executable=(".sh", ".sbatch"))
    job = next(j for j in inp.jobs if not j.serving)
    script = next(tmp_path / p for p in res.files if p.endswith(f"/{job.name}.sbatch"))
    out = tmp_path / "out.txt"
    srun = "#!/bin/bash\n" + RUN_STEP + 'echo "ran $MASTER_ADDR $NNODES" >> "$OUT"\n'
    srun += 'STRAITS_COMMAND="exit ${SRUN_RC:-0}" step "$@"\n'
    env = offline_job(tmp_path, srun, out, nodes=("node-a", "node-b"))
    failed = subprocess.run(
        ["bash", str(script)], env={**env, "SRUN_RC": "3"}, capture_output=True, text=True
    )
    assert failed.returncode == 3
    ok = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and "complete" in ok.stdout
    again = subprocess.run(
        ["bash", str(script)], env={**env, "STRAITS_SEGMENT": "2"}, capture_output=True, text=True
    )
    assert again.returncode == 0 and "already complete" in again.stdout
    assert out.read_text().splitlines() == ["ran node-a 2", "ran node-a 2"]


def test_a_hostile_plan_id_is_refused(inp: ExportInput) -> None:
    from straits.errors import InputError

    for bad in ('x"$(touch /tmp/pwned)"', "a\nrm -rf /", "", "x" * 200, "../up"):
        with pytest.raises(InputError):
            export_input(inp.scenario, inp.plan, _rules(), plan_id=bad)


def _rules() -> RuleSet:
    from straits.rules import ruleset

    return ruleset()


# --- against a real Slurm -----------------------------------------------------------------------
def _slurm_env() -> dict[str, str]:
    conf = os.environ.get("SLURM_CONF")
    ok = (
        bool(conf)
        and shutil.which("sbatch") is not None
        and subprocess.run(["scontrol", "ping"], capture_output=True, text=True).returncode == 0
    )
    if not ok:
        if os.environ.get("STRAITS_REQUIRE_SLURM") == "1":
            pytest.fail(
                "STRAITS_REQUIRE_SLURM=1 but no Slurm answers (SLURM_CONF="
                f"{conf!r}); start one with .ci/slurm.sh start DIR"
            )
        pytest.skip("no Slurm: run .ci/slurm.sh start DIR and set SLURM_CONF")
    return dict(os.environ)


def _export_ci(
    tmp_path: Path, rules: RuleSet, runs: list[str], *, change: Any = None
) -> tuple[Path, ExportInput]:
    doc = yaml.safe_load(CI_SCENARIO.read_text())
    if change is not None:
        change(doc)
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, time_limit=5).to_json()
    assert not plan["unplaced"]
    inp = export_input(sc, plan, rules, plan_id=f"ci-{tmp_path.name}", commands=parse_run(runs, sc))
    out = tmp_path / "out"
    write_bundle(out, exporter("slurm").render(inp).files, executable=(".sh", ".sbatch"))
    return out, inp


def _tokens_for_minutes(doc: dict[str, Any], minutes: float) -> float:
    """Pre-training tokens of the CI workload that need ``minutes`` with the exporter's margin
    on the fixture's 4 H100s (hours are proportional to tokens): the test states a duration,
    so it holds whatever the estimator's calibration."""
    from straits.catalog import get_chip
    from straits.estimate import estimate_training
    from straits.export.slurm import TIME_MARGIN
    from straits.model.scenario import ModelSpec

    w = doc["workloads"][0]
    hours = estimate_training(
        ModelSpec(**w["model"]), 1e8, get_chip("H100-SXM"), w["stages"][0]["chips"]
    ).hours
    return 1e8 * minutes / (60.0 * TIME_MARGIN * hours)


def _submit_rc(out: Path, env: dict[str, str]) -> tuple[int, list[str], str]:
    """Run the CI bundle's submit.sh: its exit status, the job ids it printed, its stderr."""
    p = subprocess.run(
        ["bash", str(out / "slurm" / "straits-ci" / "submit.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return p.returncode, re.findall(r": job (\d+) \(part", p.stdout), p.stdout + p.stderr


def _submit(out: Path, env: dict[str, str]) -> list[str]:
    rc, jobs, said = _submit_rc(out, env)
    assert rc == 0, said
    return jobs


def _wait(ids: list[str], env: dict[str, str], timeout: float) -> dict[str, str]:
    """Each job's final state (scontrol keeps finished jobs for MinJobAge)."""
    deadline = time.monotonic() + timeout
    while True:
        states = {}
        for jid in ids:
            p = subprocess.run(
                ["scontrol", "show", "job", "-o", jid], env=env, capture_output=True, text=True
            )
            m = re.search(r"JobState=(\S+)", p.stdout)
            states[jid] = m.group(1) if m else "UNKNOWN"
        if all(
            s not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "UNKNOWN")
            for s in states.values()
        ):
            return states
        if time.monotonic() > deadline:
            subprocess.run(["scancel", *ids], env=env)
            pytest.fail(f"jobs did not finish in {timeout:.0f} s: {states}")
        time.sleep(1)


def _log(stage: str, path: Path) -> str:
    return (
        f'{stage}=echo "{stage} $STRAITS_SEGMENT $NODE_RANK $NNODES $NPROC_PER_NODE '
        f'$MASTER_ADDR $(date +%s.%N)" >> {path}'
    )


@pytest.mark.slow
def test_sbatch_test_only_accepts_every_script(
    inp: ExportInput, rules: RuleSet, tmp_path: Path
) -> None:
    env = _slurm_env()
    ci, _ = _export_ci(tmp_path / "ci", rules, ["true"])
    demo = tmp_path / "demo"
    write_bundle(demo, exporter("slurm").render(inp).files, executable=(".sh", ".sbatch"))
    scripts = sorted([*ci.rglob("*.sbatch"), *demo.rglob("*.sbatch")])
    assert len(scripts) == 2 * len(inp.jobs)
    for script in scripts:
        p = subprocess.run(
            ["sbatch", "--test-only", script.name],
            cwd=script.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0 and "to start at" in p.stderr, (script, p.stderr)
    # and the same check refuses what the cluster cannot give
    bad = scripts[0].read_text().replace("#SBATCH --time=", "#SBATCH --time=30-00:00:00\n# ")
    (tmp_path / "bad.sbatch").write_text(bad)
    p = subprocess.run(
        ["sbatch", "--test-only", "bad.sbatch"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode != 0 and "time limit" in p.stderr.lower(), p.stderr


@pytest.mark.slow
def test_a_scaled_down_plan_runs_its_stages_in_order(rules: RuleSet, tmp_path: Path) -> None:
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(tmp_path / "ckpt")}
    log = tmp_path / "stages.log"
    out, inp = _export_ci(tmp_path, rules, [_log(s, log) for s in ("pretrain", "sft", "serve")])
    ids = _submit(out, env)
    assert len(ids) == len(inp.jobs)
    states = _wait(ids, env, timeout=180)
    assert set(states.values()) == {"COMPLETED"}, states
    rows = [line.split() for line in log.read_text().splitlines()]
    assert [r[0] for r in rows] == ["pretrain", "sft", "serve"]
    times = [float(r[-1]) for r in rows]
    assert times == sorted(times)
    nodes = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N"], env=env, capture_output=True, text=True
    ).stdout.split()
    for _stage, segment, rank, nnodes, per_node, master, _t in rows:
        assert (segment, rank, nnodes, per_node) == ("1", "0", "1", "4")
        assert master in nodes


@pytest.mark.slow
def test_a_failed_stage_cancels_the_stages_after_it(rules: RuleSet, tmp_path: Path) -> None:
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(tmp_path / "ckpt")}
    log = tmp_path / "stages.log"
    out, _ = _export_ci(tmp_path, rules, ["pretrain=exit 3", _log("sft", log), _log("serve", log)])
    ids = _submit(out, env)
    states = _wait(ids, env, timeout=120)
    assert [states[i] for i in ids] == ["FAILED", "CANCELLED", "CANCELLED"], states
    assert not log.exists()


CHECKPOINTING = (
    'pretrain=L={log}; C="$STRAITS_CHECKPOINT_DIR/step"; '
    'if [ -e "$C" ]; then echo "resumed $STRAITS_SEGMENT $(cat "$C")" >> $L; exit 0; fi; '
    'trap \'echo 1000 > "$C"; echo "saved $STRAITS_SEGMENT" >> $L; exit 0\' USR1; '
    'echo "started $STRAITS_SEGMENT" >> $L; while :; do sleep 1; done'
)
# srun signals every process of the step: `sleep 600 & wait` raced (a sleep killed by SIGUSR1
# could end the wait and the shell before its own trap ran: the first job ended unsaved), and
# a sleep that ignored it outlived the shell and kept the job to its limit (TIMEOUT)


@pytest.mark.slow
def test_a_stage_longer_than_max_time_resumes_from_its_checkpoint(
    rules: RuleSet, tmp_path: Path
) -> None:
    """MaxTime 2 minutes and a pretrain that needs 3 with its margin: three chained jobs of a
    minute of command and a minute of warning. Slurm signals the first before its limit, the
    command saves a checkpoint and exits 0, the second resumes from it and completes the stage
    (the third has nothing to do), and only then do the later stages run."""
    env = {**_slurm_env(), "STRAITS_CI_CHECKPOINTS": str(tmp_path / "ckpt")}
    log = tmp_path / "stages.log"

    def longer(doc: dict[str, Any]) -> None:
        doc["sites"][0]["targets"]["slurm"]["max_time"] = "2"
        doc["datasets"][0]["tokens"] = _tokens_for_minutes(doc, 3.0)

    out, inp = _export_ci(
        tmp_path,
        rules,
        [CHECKPOINTING.format(log=log), _log("sft", log), _log("serve", log)],
        change=longer,
    )
    pretrain = next(j for j in inp.jobs if j.stage == "pretrain")
    assert chain(pretrain.hours, 2) == (3, 2)
    ids = _submit(out, env)
    assert len(ids) == sum(chain(j.hours, 2, j.serving)[0] for j in inp.jobs) == 6  # serve: 2
    states = _wait(ids, env, timeout=420)
    assert set(states.values()) == {"COMPLETED"}, states
    words = [line.split()[:2] for line in log.read_text().splitlines()]
    assert words == [
        ["started", "1"],
        ["saved", "1"],
        ["resumed", "2"],
        ["sft", "1"],
        ["serve", "1"],
    ], words
    done = list((tmp_path / "ckpt").rglob(".straits-stage-complete"))
    assert len(done) == 3
