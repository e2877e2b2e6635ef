"""The background jobs of ``apply.sh`` (Kubernetes) and ``launch.sh`` (SkyPilot), and how
Ctrl-C, ``kill`` or a lost terminal stops them with all they run.

Each branch of such a script (a chain of stages, a workload's launches) runs as a
``( ... ) &`` job. The shell that forks them holds the traps; the jobs hold none (bash resets
the signals it caught in a subshell), so a signal never cuts a job short while it parses a
trap's text (trap53, tests/test_export_branch_traps.py). The jobs are forked with job control
on (``set -m``), which makes each one a process group of its own: ``stop()`` signals the whole
group (the job's shell and the ``kubectl``, ``sky``, ``sleep`` or command substitution it
runs) and waits until no process of it is left. It signalled the jobs' shells alone before,
and a ``kubectl apply`` or ``sky jobs launch`` they had started ran on, orphaned, after the
script said it had stopped. Job control is on only while the jobs are forked, so nothing runs
in the foreground with it, and a job reads /dev/null, as bash gives a background job without
job control (with it, a job that read the terminal would stop there, SIGTTIN).
"""

from __future__ import annotations

from collections.abc import Iterable

#: how long ``stop()`` waits for the processes of the jobs it signalled (SIGTERM) before it
#: kills what is left of them (SIGKILL)
STOP_GRACE_S = 10

#: every process group the script forked: the jobs in ``pids`` and the last one forked (a
#: signal may come between a fork and its ``pids+=``); an empty array is safe under set -u
_GROUPS = '${pids[@]+"${pids[@]}"} ${!:-}'


def stop_helpers(script: str, what: str) -> tuple[str, ...]:
    """The lines that make Ctrl-C, ``kill`` or a lost terminal stop ``script``'s background
    jobs too (a non-interactive shell's background jobs ignore Ctrl-C), with the commands they
    run: a stage still waiting, for its predecessors or its planned start, is then not
    ``what`` (applied, launched), and no ``kubectl`` or ``sky`` runs on after the script."""
    return (
        "# Ctrl-C, kill or a lost terminal stop every background job too (a background job",
        f"# ignores Ctrl-C): what was {what} stays, a stage still waiting is not {what}. Each",
        "# job is a process group of its own (forked under set -m): stop() signals the group,",
        "# the kubectl or sky the job runs with it, and waits until it is gone (SIGKILL after",
        f"# {STOP_GRACE_S} s)",
        "pids=()",
        "stop() {  # STATUS",
        "  trap - INT TERM HUP",
        "  set +m",
        f"  local p left end=$((SECONDS + {STOP_GRACE_S}))",
        f"  for p in {_GROUPS}; do",
        '    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null',
        "  done",
        "  wait",
        "  while :; do",
        '    left=""',
        f'    for p in {_GROUPS}; do kill -0 -- "-$p" 2>/dev/null && left=1; done',
        '    [ -n "$left" ] || break',
        '    if [ "$SECONDS" -ge "$end" ]; then',
        f'      for p in {_GROUPS}; do kill -KILL -- "-$p" 2>/dev/null; done',
        "      break",
        "    fi",
        "    sleep 0.1 2>/dev/null || sleep 1",
        "  done",
        f'  echo "{script} stopped: the stages not {what} yet are not {what}" >&2',
        '  exit "$1"',
        "}",
        "trap 'stop 130' INT",
        "trap 'stop 143' TERM HUP",
    )


def fork(jobs: Iterable[tuple[str, Iterable[str]]]) -> list[str]:
    """Each of ``jobs`` (a title, its lines) as a background job in a process group of its
    own, its pid in ``pids`` (job control on while they are forked, and only then)."""
    out = ["set -m"]
    for title, lines in jobs:
        out.append(f"(  # {title}")
        out += [f"  {line}" for line in lines]
        out += [") < /dev/null &", "pids+=($!)"]
    out.append("set +m")
    return out


#: the end of the scripts: wait for every job, exit non-zero if any failed
JOIN = ("rc=0", 'for p in "${pids[@]}"; do wait "$p" || rc=1; done', 'exit "$rc"', "")
