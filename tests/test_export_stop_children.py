"""``apply.sh`` and ``launch.sh`` stopped (SIGINT, SIGTERM) leave no ``kubectl`` or ``sky``
running.

``stop()`` killed the scripts' background jobs, the ``( ... ) &`` shells, alone: a ``kubectl
apply``, a ``kubectl get`` in a command substitution or a ``sky jobs launch`` the job had
started ran on, orphaned, after the script had said it stopped, and so did the ``kubectl
apply`` of the Kueue queues in the foreground (the trap waits for a foreground command). Each
job is a process group of its own now, signalled whole, and the script exits once it is gone.

The scripts run against the stand-ins of tests/test_export_start_wait.py, with one more
before them on PATH: a ``kubectl`` or ``sky`` call whose arguments hold one of ``$HANG``
records its pid and sleeps (a command that takes its time); the script is signalled (its pid
alone, as ``kill`` does) once they all run. Nothing of the script may be left then: no process
of its session, no call recorded after it exited."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from straits.export import export_input, exporter, write_bundle
from straits.export.base import ExportInput
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from test_export_k8s_branches import W, _fan, branches
from test_export_start_wait import H20, _kill_session, _plan, _session, _stand_ins, _started

__all__ = ["branches"]  # fixtures

#: how many times each case runs: a race shows in some runs only
RUNS = 10 if os.environ.get("STRAITS_SLOW") == "1" else 3

#: before the harness's stand-in: a call whose arguments hold one of $HANG (|-separated)
#: records its pid in $PIDS and sleeps (exec: the pid is the sleep's); any other goes on to the
#: harness's
HANGING = """#!/bin/bash
args="$*" IFS='|'
for w in $HANG; do case "$args" in *"$w"*)
  echo "hang $args" >> "$LOG"; echo $$ >> "$PIDS"; exec {sleep} 300 ;;
esac; done
PATH=${PATH#*:} exec {name} "$@"
"""


def _stage_env(tmp_path: Path, hang: str) -> dict[str, str]:
    # the real clock, and real sleeps (the harness's moves its clock under a lock, which a
    # sleep stopped then would leave held)
    env = _stand_ins(tmp_path, None, REAL_SLEEP="0.02")
    pre = tmp_path / "pre"
    pre.mkdir(exist_ok=True)
    for name in ("kubectl", "sky"):
        text = HANGING.replace("{sleep}", shutil.which("sleep") or "/bin/sleep")
        (pre / name).write_text(text.replace("{name}", name))
        (pre / name).chmod(0o755)
    return {
        **env,
        "PATH": f"{pre}:{env['PATH']}",
        "HANG": hang,
        "PIDS": str(tmp_path / "pids"),
    }


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie no one has reaped yet is gone too
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) == "Z"
    except OSError:
        return True


def _stop_mid_run(
    files: dict[str, str], tmp_path: Path, script: str, hang: str, hangs: int, sig: int
) -> list[str]:
    """Run ``script`` until ``hangs`` calls hang (``hangs`` 0: until the first), signal it
    (after up to 20 ms), and check that it exits 128 + ``sig`` leaving nothing behind; what it
    had started."""
    write_bundle(tmp_path, files, executable=(".sh",))
    env = _stage_env(tmp_path, hang)
    pids_file, log, err = tmp_path / "pids", tmp_path / "calls.log", tmp_path / "stderr"
    pids_file.unlink(missing_ok=True)
    with err.open("w") as to_err:  # a file: a process left behind holds no pipe open
        p = subprocess.Popen(
            ["bash", str(tmp_path / script)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=to_err,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while len(_lines(pids_file)) < max(hangs, 1):
            assert p.poll() is None, err.read_text()
            assert time.monotonic() < deadline, _lines(log)
            time.sleep(0.005)
        if hangs:
            time.sleep(random.uniform(0, 0.02))
        p.send_signal(sig)
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{script} did not exit on signal {sig}")
        calls = _lines(log)
        assert rc == 128 + sig, err.read_text()
        assert "stopped: the stages not" in err.read_text()
        hung = [int(x) for x in _lines(pids_file)]
        assert hung and all(_gone(x) for x in hung), hung
        assert _session(p.pid) == []
        time.sleep(0.2)  # nothing of it runs on: no call after it exited
        assert _lines(log) == calls
        return _started(calls)
    finally:  # whatever a failed run left behind
        _kill_session(p.pid)
        p.wait()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


SIGNALS = [signal.SIGINT, signal.SIGTERM]


@pytest.mark.parametrize("sig", SIGNALS)
def test_apply_sh_stops_the_kubectl_apply_of_each_branch(
    branches: ExportInput, tmp_path: Path, sig: int
) -> None:
    """The pre-train applied, both branches after it apply their first stage when stopped:
    neither apply runs on, nor is a stage after them applied."""
    files = exporter("kubernetes").render(branches).files
    ev, sft = branches.job(W, "eval"), branches.job(W, "sft")
    for i in range(RUNS):
        started = _stop_mid_run(
            files, tmp_path / str(i), "kubernetes/apply.sh", f"{ev.name}.|{sft.name}.", 2, sig
        )
        assert started == [branches.job(W, "pretrain").name]


@pytest.mark.parametrize("sig", SIGNALS)
def test_apply_sh_stops_a_kubectl_get_in_a_command_substitution(
    branches: ExportInput, tmp_path: Path, sig: int
) -> None:
    """Both branches wait for the pre-train, asking kubectl in ``$(...)`` where it stands."""
    files = exporter("kubernetes").render(branches).files
    pre = branches.job(W, "pretrain")
    for i in range(RUNS):
        started = _stop_mid_run(
            files, tmp_path / str(i), "kubernetes/apply.sh", f"jobset {pre.name} -o", 2, sig
        )
        assert started == [pre.name]


@pytest.mark.parametrize("sig", SIGNALS)
def test_apply_sh_stops_the_kubectl_apply_of_the_queues(
    rules: RuleSet, tmp_path: Path, sig: int
) -> None:
    """The Kueue LocalQueues are applied before any stage: stopped then, no stage is."""
    sc, plan = _plan(H20, rules)
    doc: dict[str, Any] = sc.model_dump(mode="json")
    for s in doc["sites"]:
        if "kubernetes" in s.get("targets", {}):
            s["targets"]["kubernetes"]["cluster_queue"] = "gpu-cq"
    inp = export_input(Scenario.model_validate(doc), plan, rules, plan_id="q", run="true")
    files = exporter("kubernetes").render(inp).files
    assert any("/kueue." in f for f in files)
    for i in range(RUNS):
        started = _stop_mid_run(files, tmp_path / str(i), "kubernetes/apply.sh", "kueue.", 1, sig)
        assert started == []


@pytest.mark.parametrize("sig", SIGNALS)
def test_launch_sh_stops_sky_jobs_launch(rules: RuleSet, tmp_path: Path, sig: int) -> None:
    """The H20 workload's fine-tune is being launched: the service after it is not."""
    sc, plan = _plan(H20, rules)
    inp = export_input(sc, plan, rules, plan_id="s", run="true")
    files = exporter("skypilot").render(inp).files
    for i in range(RUNS):
        started = _stop_mid_run(
            files, tmp_path / str(i), "skypilot/launch.sh", "jobs launch", 1, sig
        )
        assert started == []


def test_a_signal_while_the_branches_are_forked_stops_them_all(
    rules: RuleSet, tmp_path: Path
) -> None:
    """Twelve branches, stopped as soon as the first calls kubectl (the pre-train's apply),
    while the script may still fork the others: every branch is stopped all the same."""
    sc = _fan(11)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="fan", run="true")
    files = exporter("kubernetes").render(inp).files
    for i in range(RUNS):
        started = _stop_mid_run(
            files, tmp_path / str(i), "kubernetes/apply.sh", " apply ", 0, signal.SIGTERM
        )
        assert started == []
