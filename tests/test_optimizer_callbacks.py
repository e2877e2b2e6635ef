"""CP-SAT's callbacks run inside the C++ solver: an exception raised there used to abort the
whole process (SIGABRT, exit 134). Each case runs in a subprocess, so an abort fails the test
instead of killing the test run. The time limit is 10 s, not 3: the limit bounds the whole
command (issue 18), and on a machine loaded past two runnable processes a core, 3 s left the
greedy plan short of a stage (status infeasible: seen once in a suite run beside four other
jobs)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
from straits.loading import load_scenario
from straits.plan import make_plan
k, mode = int(sys.argv[1]), sys.argv[2]
calls = [0]
def on_progress(state):
    calls[0] += 1
    if calls[0] >= k:
        if mode == "raise":
            raise ZeroDivisionError("from the callback")
        return True
sc = load_scenario(sys.argv[3])
try:
    plan = make_plan(sc, on_progress=on_progress, time_limit=10)
except ZeroDivisionError:
    print("raised", calls[0])
else:
    print("plan", plan.status, calls[0])
"""


@pytest.mark.parametrize(
    ("k", "mode", "expected"),
    [
        (1, "raise", "raised"),
        (2, "raise", "raised"),
        (4, "raise", "raised"),
        (1, "stop", "plan"),
        (3, "stop", "plan"),
    ],
)
def test_callback_errors_and_stops_never_abort_the_solver(
    example_path: object, k: int, mode: str, expected: str
) -> None:
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(k), mode, str(example_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    words = p.stdout.split()
    calls = int(words[-1])
    if calls < k:  # the search reported fewer solutions than the case waits for
        expected = "plan"
    assert words[0] == expected, p.stdout
    if expected == "plan":
        assert words[1] in ("optimal", "feasible")


def test_the_issue_reproduction_exits_cleanly(example_path: object) -> None:
    """The issue's reproduction, with a time limit that leaves the search time to report: the
    callback's ZeroDivisionError comes out of make_plan after Solve (exit 1), never a SIGABRT
    from OR-Tools (exit 134)."""
    code = (
        "from straits.loading import load_scenario\nfrom straits.plan import make_plan\n"
        f"make_plan(load_scenario({str(example_path)!r}), on_progress=lambda s: 1/0, "
        "time_limit=15, solver='cpsat')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "Check failed" not in p.stderr and p.returncode in (0, 1), p.stderr[-2000:]
    if p.returncode == 1:  # the search reported progress: the callback's error, raised after
        assert "ZeroDivisionError" in p.stderr
