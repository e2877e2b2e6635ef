"""Kubernetes' ``apply.sh`` and SkyPilot's ``launch.sh`` start no stage before its planned start
(as Slurm's ``--begin``: tests/test_export_slurm_begin.py). They applied or launched a stage as
soon as its predecessors were done, the planned start only an annotation or an env var: the H20
example's serving stage, held for bought chips arriving on 2025-05-08, would have started when
its fine-tune ended on 2025-04-16.

The scripts run against stand-ins for ``kubectl`` and ``sky`` and for ``date`` and ``sleep`` on
PATH: the clock is a file, each ``sleep`` records itself and moves the clock on by what it
slept, and an apply or launch may move it on too (the stage ran), so a wait of weeks takes a
few calls."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from export_support import _pipelines
from straits.export import export_input, exporter, write_bundle
from straits.export.base import WAIT_CHUNK_S, ExportInput
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.rules import RuleSet

ROOT = Path(__file__).resolve().parents[1]
H20 = ROOT / "examples" / "h20-2025.yaml"
OFFSHORE = ROOT / "examples" / "offshore-2025.yaml"

#: the clock: seconds since 1970 in $CLOCK; anything but +%s goes to the real date
FAKE_DATE = """#!/bin/bash
[ "$1" = +%s ] && exec cat "$CLOCK"
exec {date} "$@"
"""
#: records itself and moves the clock on by what it slept (REAL_SLEEP: sleeps that long for
#: real instead, the clock left where it is); the clock is moved under a lock and replaced
#: whole, as apply.sh's branches sleep at the same time
FAKE_SLEEP = """#!/bin/bash
echo "sleep $1" >> "$LOG"
if [ -n "${REAL_SLEEP:-}" ]; then exec {sleep} "$REAL_SLEEP"; fi
until mkdir "$CLOCK.lock" 2>/dev/null; do :; done
echo $(( $(cat "$CLOCK") + $1 )) > "$CLOCK.$$" && mv "$CLOCK.$$" "$CLOCK"
rmdir "$CLOCK.lock"
"""
#: what a stage named in $JUMPS (NAME SECONDS lines) leaves the clock at once it is applied or
#: launched: it ran (until then)
JUMP = """
while read -r n v; do if [ "$n" = "$5" ]; then
  until mkdir "$CLOCK.lock" 2>/dev/null; do :; done
  echo "$v" > "$CLOCK.$$" && mv "$CLOCK.$$" "$CLOCK"; rmdir "$CLOCK.lock"
fi; done < "$JUMPS"
"""
#: kubectl --context C apply -f FILE / --context C -n NS get KIND NAME -o ...: a JobSet is
#: Completed, a Deployment or LeaderWorkerSet Available, once applied
FAKE_KUBECTL = (
    """#!/bin/bash
if [ "$3" = apply ]; then
  echo "apply $5" >> "$LOG"
"""
    + JUMP
    + """  exit 0
fi
echo "get $7" >> "$LOG"
grep -q "^apply .*/$7.yaml" "$LOG" || { echo ""; exit 0; }
if [ "$6" = jobset ]; then echo Completed; else echo True; fi
"""
)
#: sky jobs launch --yes --name NAME FILE / sky serve up --yes --service-name NAME FILE
FAKE_SKY = (
    """#!/bin/bash
echo "$1 $2 $5" >> "$LOG"
"""
    + JUMP
)


def _plan(path: Path, rules: RuleSet) -> tuple[Scenario, dict[str, Any]]:
    sc = load_scenario(path)
    return sc, make_plan(sc, rules=rules, solver="greedy").to_json()


@pytest.fixture(scope="module")
def h20(rules_before_h20: RuleSet) -> ExportInput:
    """The H20 example planned before the letter: serve-cn on bought chips, 22 days after sft."""
    sc, plan = _plan(H20, rules_before_h20)
    inp = export_input(sc, plan, rules_before_h20, plan_id="start", run="true")
    sft, serve = inp.job("assistant-72b", "sft"), inp.job("assistant-72b", "serve-cn")
    assert serve.placement.bought and serve.begin_utc == "2025-05-08T00:00:00Z"
    assert serve.begin - int(sft.placement.end.timestamp()) > 20 * 86400
    return inp


def _stand_ins(
    tmp_path: Path, clock: int | str | None, jumps: dict[str, int] | None = None, **env: str
) -> dict[str, str]:
    """Write the stand-ins under ``tmp_path`` and return the environment that runs them;
    ``clock`` None: the real clock."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    fakes = {
        "kubectl": FAKE_KUBECTL,
        "sky": FAKE_SKY,
        "sleep": FAKE_SLEEP.replace("{sleep}", shutil.which("sleep") or "/bin/sleep"),
    }
    if clock is not None:
        fakes["date"] = FAKE_DATE.replace("{date}", shutil.which("date") or "/bin/date")
        (tmp_path / "clock").write_text(f"{clock}\n")
    for name, text in fakes.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "jumps").write_text("".join(f"{k} {v}\n" for k, v in (jumps or {}).items()))
    log = tmp_path / "calls.log"
    log.unlink(missing_ok=True)
    full = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "LOG": str(log),
        "CLOCK": str(tmp_path / "clock"),
        "JUMPS": str(tmp_path / "jumps"),
        "STRAITS_POLL_SECONDS": "0",
        **env,
    }
    for var in ("STRAITS_COMPLETED", "STRAITS_START_NOW", "KUBECTL"):
        if var not in env:
            full.pop(var, None)
    return full


def _run(
    files: dict[str, str],
    tmp_path: Path,
    script: str,
    clock: int | str | None,
    jumps: dict[str, int] | None = None,
    **env: str,
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``script`` of the bundle with the stand-ins; what it printed and what it called."""
    write_bundle(tmp_path, files, executable=(".sh",))
    full = _stand_ins(tmp_path, clock, jumps, **env)
    with _bash(tmp_path / script, full) as proc:
        out, err = proc.communicate(timeout=60)
    p = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    log = tmp_path / "calls.log"
    return p, log.read_text().splitlines() if log.exists() else []


def _session(sid: int) -> list[int]:
    """The live (not zombie) processes of session ``sid``."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        state, _ppid, _pgrp, session = stat.rsplit(")", 1)[1].split()[:4]
        if int(session) == sid and state != "Z":
            out.append(int(d.name))
    return out


@contextlib.contextmanager
def _bash(script: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """``bash script`` in a session of its own, whose every process (a workload's background
    job left waiting by a failed test, in a process group of its own) is killed on the way
    out."""
    proc = subprocess.Popen(
        ["bash", str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        _kill_session(proc.pid)
        proc.communicate()


def _kill_session(sid: int) -> None:
    """SIGKILL every process of session ``sid``, again while one forked meanwhile is left."""
    for _ in range(10):
        left = _session(sid)
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _waits(log: list[str]) -> list[int]:
    return [int(ln.split()[1]) for ln in log if ln.startswith("sleep ")]


def _started(log: list[str]) -> list[str]:
    """What was applied (its file's name) or launched (its name), in order."""
    return [
        ln.split()[1].rsplit("/", 1)[1].removesuffix(".yaml")
        if ln.startswith("apply")
        else ln.split()[2]
        for ln in log
        if ln.startswith(("apply ", "jobs ", "serve "))
    ]


def _between(log: list[str], before: str | None, after: str) -> list[int]:
    """The sleeps after ``before`` starts (or from the first call) until ``after`` starts."""
    names = [_started([ln])[0] if _started([ln]) else None for ln in log]
    lo = names.index(before) + 1 if before else 0
    return _waits(log[lo : names.index(after)])


def _sane(text: str) -> None:
    subprocess.run(["bash", "-n", "-c", text], check=True)


# --- Kubernetes -----------------------------------------------------------------------------------
def test_apply_sh_waits_for_a_stage_held_for_bought_chips(h20: ExportInput, tmp_path: Path) -> None:
    files = exporter("kubernetes").render(h20).files
    _sane(files["kubernetes/apply.sh"])
    sft, serve = h20.job("assistant-72b", "sft"), h20.job("assistant-72b", "serve-cn")
    # 30 s before the fine-tune's start; it "runs" until 90 s before the service's
    p, log = _run(
        files,
        tmp_path,
        "kubernetes/apply.sh",
        clock=sft.begin - 30,
        jumps={f"cn-guiyang/{sft.name}.yaml": serve.begin - 90},
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert _started(log) == [sft.name, serve.name]
    assert _between(log, None, sft.name) == [30]
    assert _between(log, sft.name, serve.name) == [WAIT_CHUNK_S, 90 - WAIT_CHUNK_S]
    assert log.index(f"get {sft.name}") < log.index("sleep 60")  # after its predecessor is done
    assert (
        "assistant-72b/serve-cn waits until its planned start, 2025-05-08T00:00:00Z (in 90 s;"
        in p.stdout
    )


@pytest.mark.parametrize("start_now", ["1", "assistant-72b/serve-cn", "x/y,assistant-72b/serve-cn"])
def test_apply_sh_starts_at_once_what_the_operator_names(
    h20: ExportInput, tmp_path: Path, start_now: str
) -> None:
    files = exporter("kubernetes").render(h20).files
    serve = h20.job("assistant-72b", "serve-cn")
    p, log = _run(
        files,
        tmp_path,
        "kubernetes/apply.sh",
        clock=serve.begin - 86400,
        STRAITS_START_NOW=start_now,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert _waits(log) == []
    assert _started(log) == [h20.job("assistant-72b", "sft").name, serve.name]
    assert (
        "assistant-72b/serve-cn: planned to start 2025-05-08T00:00:00Z, started now "
        "(STRAITS_START_NOW)" in p.stdout
    )


def test_apply_sh_waits_for_a_stage_the_operator_does_not_name(
    h20: ExportInput, tmp_path: Path
) -> None:
    files = exporter("kubernetes").render(h20).files
    serve = h20.job("assistant-72b", "serve-cn")
    p, log = _run(
        files,
        tmp_path,
        "kubernetes/apply.sh",
        clock=serve.begin - 5,
        STRAITS_START_NOW="assistant-72b/sft,assistant-72b/serve",
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert _between(log, h20.job("assistant-72b", "sft").name, serve.name) == [5]


def test_a_planned_start_that_has_passed_is_not_waited_for(
    h20: ExportInput, tmp_path: Path
) -> None:
    files = exporter("kubernetes").render(h20).files
    serve = h20.job("assistant-72b", "serve-cn")
    for clock in (serve.begin, serve.begin + 1, None):  # None: today, the real clock
        p, log = _run(files, tmp_path / str(clock), "kubernetes/apply.sh", clock=clock)
        assert p.returncode == 0, p.stdout + p.stderr
        assert _waits(log) == [] and len(_started(log)) == 2
        assert "waits until" not in p.stdout


def test_a_stage_listed_completed_is_not_waited_for(h20: ExportInput, tmp_path: Path) -> None:
    files = exporter("kubernetes").render(h20).files
    sft, serve = h20.job("assistant-72b", "sft"), h20.job("assistant-72b", "serve-cn")
    p, log = _run(
        files,
        tmp_path,
        "kubernetes/apply.sh",
        clock=sft.begin - 86400,
        STRAITS_COMPLETED="assistant-72b/sft",
        STRAITS_START_NOW="assistant-72b/serve-cn",
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert _waits(log) == [] and _started(log) == [serve.name]


def test_a_clock_that_cannot_be_read_starts_nothing(h20: ExportInput, tmp_path: Path) -> None:
    files = exporter("kubernetes").render(h20).files
    p, log = _run(files, tmp_path, "kubernetes/apply.sh", clock="soon")
    assert p.returncode != 0
    assert "assistant-72b/sft: cannot read the clock (date +%s): not started" in p.stderr
    assert _started(log) == []


def _stop_while_waiting(files: dict[str, str], tmp_path: Path, script: str, sig: int) -> None:
    """Start ``script`` on a plan 80 years ahead with the real clock, stop it with ``sig``
    while a stage waits: it exits at once and applies or launches nothing, then or later."""
    write_bundle(tmp_path, files, executable=(".sh",))
    env = _stand_ins(tmp_path, None, REAL_SLEEP="0.05")
    log = tmp_path / "calls.log"
    with _bash(tmp_path / script, env) as p:
        deadline = time.monotonic() + 30
        while not (log.exists() and "sleep" in log.read_text()):
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        p.send_signal(sig)
        out, err = p.communicate(timeout=10)
        assert p.returncode == 128 + sig, out + err
        assert "stopped: the stages not" in err
        assert "waits until its planned start" in out
        calls = log.read_text().splitlines()
        time.sleep(0.5)  # the workload's job was stopped too: it sleeps no more, starts nothing
        assert log.read_text().splitlines() == calls
        assert _started(calls) == []


def _later(inp: ExportInput, rules: RuleSet, years: int = 80) -> ExportInput:
    plan = copy.deepcopy(dict(inp.plan))
    for a in plan["assignments"]:
        for k in ("start", "end"):
            t = dt.datetime.fromisoformat(a[k].replace("Z", "+00:00"))
            a[k] = (t + dt.timedelta(days=365 * years)).isoformat()
    return export_input(inp.scenario, plan, rules, plan_id="later", run="true")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_script_stopped_while_a_stage_waits_starts_nothing(
    offshore: ExportInput, rules: RuleSet, tmp_path: Path, sig: int
) -> None:
    later = _later(offshore, rules)
    for target, script in (
        ("kubernetes", "kubernetes/apply.sh"),
        ("skypilot", "skypilot/launch.sh"),
    ):
        files = exporter(target).render(later).files
        _stop_while_waiting(files, tmp_path / target, script, sig)


# --- SkyPilot -------------------------------------------------------------------------------------
def test_launch_sh_waits_for_a_service_held_for_bought_chips(
    h20: ExportInput, tmp_path: Path
) -> None:
    files = exporter("skypilot").render(h20).files
    _sane(files["skypilot/launch.sh"])
    sft, serve = h20.job("assistant-72b", "sft"), h20.job("assistant-72b", "serve-cn")
    p, log = _run(
        files,
        tmp_path,
        "skypilot/launch.sh",
        clock=sft.begin - 61,
        jumps={"assistant-72b": serve.begin - 7},
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert _started(log) == ["assistant-72b", serve.name]
    assert _between(log, None, "assistant-72b") == [60, 1]
    assert _between(log, "assistant-72b", serve.name) == [7]
    assert "assistant-72b/serve-cn waits until its planned start, 2025-05-08T00:00:00Z" in p.stdout

    p, log = _run(
        files, tmp_path, "skypilot/launch.sh", clock=sft.begin - 61, STRAITS_START_NOW="1"
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert _waits(log) == [] and _started(log) == ["assistant-72b", serve.name]


@pytest.fixture(scope="module")
def offshore(rules: RuleSet) -> ExportInput:
    sc, plan = _plan(OFFSHORE, rules)
    return export_input(sc, plan, rules, plan_id="start", run="true")


def test_a_stage_that_follows_its_predecessor_stays_in_its_pipeline(
    offshore: ExportInput, rules: RuleSet
) -> None:
    """The fine-tune starts as the pre-train ends, but for moving the checkpoint (and the
    planner's rounding): one pipeline, as before."""
    res = exporter("skypilot").render(offshore)
    assert _pipelines(res.files) == {"chat-72b": ["pretrain", "sft"]}
    sc = offshore.scenario
    plan = make_plan(sc, rules=rules, time_limit=5).to_json()  # CP-SAT's minutes
    inp = export_input(sc, plan, rules, plan_id="start", run="true")
    assert _pipelines(exporter("skypilot").render(inp).files) == {"chat-72b": ["pretrain", "sft"]}


def _held(offshore: ExportInput, rules: RuleSet, days: float) -> ExportInput:
    """The offshore plan with the fine-tune (and the service after it) ``days`` later."""
    plan = copy.deepcopy(dict(offshore.plan))
    for a in plan["assignments"]:
        if a["stage"] != "pretrain":
            for k in ("start", "end"):
                t = dt.datetime.fromisoformat(a[k].replace("Z", "+00:00"))
                a[k] = (t + dt.timedelta(days=days)).isoformat()
    return export_input(offshore.scenario, plan, rules, plan_id="held", run="true")


def test_a_training_stage_the_plan_holds_gets_its_own_pipeline(
    offshore: ExportInput, rules: RuleSet, tmp_path: Path
) -> None:
    """In one pipeline the fine-tune held ten days (for chips, a window, a rule's date) would
    start as the pre-train succeeds: it is a pipeline of its own, launched at its start."""
    inp = _held(offshore, rules, 10)
    res = exporter("skypilot").render(inp)
    assert _pipelines(res.files) == {"chat-72b": ["pretrain"], "chat-72b-2": ["sft"]}
    assert any(
        n.startswith("chat-72b/sft: planned to start ") and "240.0 h after pretrain ends" in n
        for n in res.notes
    ), res.notes
    _sane(res.files["skypilot/launch.sh"])
    pre, sft, serve = (inp.job("chat-72b", s) for s in ("pretrain", "sft", "serve-intl"))
    p, log = _run(
        res.files,
        tmp_path,
        "skypilot/launch.sh",
        clock=pre.begin - 3,
        jumps={"chat-72b": sft.begin - 100, "chat-72b-2": serve.begin - 2},
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert _started(log) == ["chat-72b", "chat-72b-2", serve.name]
    assert _between(log, None, "chat-72b") == [3]
    assert _between(log, "chat-72b", "chat-72b-2") == [60, 40]
    assert _between(log, "chat-72b-2", serve.name) == [2]
    # a few minutes later, as moving data and rounding make it, is no hold
    assert _pipelines(exporter("skypilot").render(_held(offshore, rules, 0.002)).files) == {
        "chat-72b": ["pretrain", "sft"]
    }
