"""``apply.sh`` (Kubernetes) and ``launch.sh`` (SkyPilot) under Ctrl-C and kill (trap53).

bash 5.2, given a signal while it expands a command substitution, may fail to parse the
signal's trap and go on as if no signal had come (docs/robustness.md, "trap53"): the Slurm
batch shell and ``submit.sh`` therefore expand none once their traps are set. These two scripts
do expand ``$(...)`` (kubectl's answers, the clock), but only in their branches: each branch is
a ``( ... ) < /dev/null &`` subshell, where bash resets the traps it caught to their defaults,
so a signal there kills the branch outright and no trap text is parsed. The shell that holds the
traps runs nothing after them but the branches' forks (between ``set -m`` and ``set +m``: each
branch a process group of its own, that ``stop()`` signals whole; straits.export.script_jobs),
``apply.sh``'s wait for the job that applies the Kueue queues, and ``wait``. These tests hold
both halves: the scripts' shape, and the bash behaviour it relies on.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from export_support import demo, inp
from straits.export import export_input, exporter
from straits.export.base import ExportInput
from straits.export.script_jobs import fork, stop_helpers
from straits.model.scenario import Scenario
from straits.rules import RuleSet

__all__ = ["demo", "inp"]  # fixtures

#: ``$(`` not followed by ``(``: a command substitution, not an arithmetic expansion
COMSUB = re.compile(r"\$\((?!\()")
#: every line the trapping shell may run once its traps are set
TRAPPING_SHELL = {
    "trap 'stop 130' INT",
    "trap 'stop 143' TERM HUP",
    "set -m",
    "pids+=($!)",
    "set +m",
    'wait "$!" || exit 1',
    "pids=()",
    "rc=0",
    'for p in "${pids[@]}"; do wait "$p" || rc=1; done',
    'exit "$rc"',
    "",
}
SCRIPTS = [("kubernetes", "kubernetes/apply.sh"), ("skypilot", "skypilot/launch.sh")]


def _outside_branches(script: str) -> list[str]:
    """The lines the trapping shell itself runs once its Ctrl-C trap is set: everything after
    it but the bodies of the ``( ... ) &`` branches (and comments). ``apply.sh``'s EXIT trap,
    set earlier, runs only as the shell exits: no signal interrupts an expansion to run it."""
    lines = script.splitlines()
    first = lines.index("trap 'stop 130' INT")
    out, depth = [], 0
    for line in lines[first:]:
        if line.startswith("(") and not line.startswith("(("):
            depth += 1
        elif depth and line == ") < /dev/null &":
            depth -= 1
        elif depth == 0 and not line.lstrip().startswith("#"):
            out.append(line)
    assert depth == 0, "a branch is left open"
    return out


@pytest.mark.parametrize(("target", "path"), SCRIPTS)
def test_the_trapping_shell_expands_no_command_substitution(
    inp: ExportInput, target: str, path: str
) -> None:
    script = exporter(target).render(inp).files[path]
    assert isinstance(script, str)
    assert "(  # " in script, "the plan has no branch: the test would hold vacuously"
    # nothing but the traps, the forks and the wait: no command substitution, nor a call of
    # a function that expands one (wait_start reads the clock with one)
    assert set(_outside_branches(script)) <= TRAPPING_SHELL, path
    assert COMSUB.search(script), "the branches' functions expand none: nothing to guard"


def test_the_queues_are_applied_in_a_job_too(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """``apply.sh`` applies the Kueue LocalQueues before any stage, in a job of its own that
    it waits for (a kubectl in the foreground would hold the traps back until it ended)."""
    sc, plan = demo
    doc = sc.model_dump(mode="json")
    for s in doc["sites"]:
        if "kubernetes" in s["targets"]:
            s["targets"]["kubernetes"]["cluster_queue"] = "gpu-cq"
    inp = export_input(Scenario.model_validate(doc), plan, rules, plan_id="q", run="x")
    script = exporter("kubernetes").render(inp).files["kubernetes/apply.sh"]
    assert set(_outside_branches(script)) <= TRAPPING_SHELL
    top = script[script.index("trap 'stop 130' INT") :]
    assert top.index("(  # the Kueue LocalQueues") < top.index('wait "$!" || exit 1')
    assert top.index('wait "$!" || exit 1') < top.index("(  # branch 0")
    assert "/kueue." not in script[: script.index("trap 'stop 130' INT")]


def test_the_test_sees_a_substitution_outside_a_branch() -> None:
    """The shape check fails on a script whose trapping shell expands one."""
    script = "\n".join([*stop_helpers("x.sh", "run"), *fork([("b", ["y=$(date)"])]), "now=$(date)"])
    top = _outside_branches(script)
    assert top[-1] == "now=$(date)" and not set(top) <= TRAPPING_SHELL


BRANCH = """\
set -uo pipefail
{helpers}
(  # a branch that expands command substitutions without end
  while :; do x=$(:); done
) &
pids+=($!)
echo ready
wait "${{pids[0]}}"
echo "branch exit $?"
"""


def test_a_signalled_branch_dies_without_running_the_trap(tmp_path: Path) -> None:
    """A branch SIGTERMed while it expands ``$(:)`` over and over ends with 143 and no trap
    output (it holds none of its parent's traps), and the parent carries on past ``wait``:
    neither can be left running a trap it failed to parse."""
    script = tmp_path / "branch.sh"
    script.write_text(BRANCH.format(helpers="\n".join(stop_helpers("x.sh", "run"))))
    for _ in range(20):
        p = subprocess.Popen(
            ["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert p.stdout is not None
        assert p.stdout.readline() == "ready\n"
        kids = subprocess.run(
            ["pgrep", "-P", str(p.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(kids) == 1, kids
        time.sleep(0.01)
        subprocess.run(["kill", f"-{signal.SIGTERM.value}", kids[0]], check=True)
        out, err = p.communicate(timeout=20)
        assert (p.returncode, out, err) == (0, "branch exit 143\n", "")
