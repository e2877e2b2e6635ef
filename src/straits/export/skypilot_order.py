"""When SkyPilot's stages start: ``launch.sh`` (each workload's pipelines and services in order,
each no earlier than its first stage's planned start) and the wait that a task of a pipeline
after the first does itself.

A pipeline's tasks run one after another, each as the one before succeeds, with no start time
of their own: a task whose planned start is later than the end of the one before it (beyond
moving its data and :data:`HOLD_SLACK`) starts a pipeline of its own (:func:`held`), launched by
``launch.sh`` at that start. A task that stays would still start early by as much as the one
before it ran short of its planned duration, so its ``run`` first waits for its planned start
(:func:`follower_wait`), as Slurm's ``--begin`` and ``apply.sh`` do: the same ``wait_start``
as ``launch.sh``'s, with ``STRAITS_START_NOW`` handed to the task by ``launch.sh``
(``sky jobs launch --env``).
"""

from __future__ import annotations

import datetime as dt
import shlex

from straits.export.base import (
    COMPLETED_HELPERS,
    START_HELPERS,
    START_NOW_VAR,
    StageJob,
    epoch,
    start_args,
)
from straits.export.script_jobs import JOIN, fork, stop_helpers

#: how much later than the end of the task before it in a pipeline a task's planned start may
#: be, beyond moving its data, and still follow that task as it succeeds: the planner rounds
#: durations and transfers up to the minute (straits.plan.ticks), a few minutes over a chain
HOLD_SLACK = dt.timedelta(minutes=5)

#: what ``sky jobs launch`` is given in ``launch.sh``: the operator's STRAITS_START_NOW reaches
#: the tasks that wait for their own planned start (:func:`follower_wait`)
START_NOW_ENV = f'--env {START_NOW_VAR}="${{{START_NOW_VAR}:-}}"'


def follower_wait(job: StageJob) -> str:
    """The lines a pipeline's task after the first runs before its command: it returns once
    ``job``'s planned start has come (at once when it has passed or STRAITS_START_NOW names the
    stage) and fails the task, starting nothing, when the clock cannot be read. Without it the
    task started as the one before succeeded, however much earlier than planned that was."""
    return "\n".join(
        (
            "# Straits: not before this stage's planned start (the task before it may end early)",
            *START_HELPERS[3:],
            f"wait_start {start_args(job)} || exit 1",
            "unset -f wait_start",
            "",
        )
    )


def held(job: StageJob, prev: StageJob) -> str | None:
    """Why ``job`` does not follow ``prev`` in a pipeline, or None: the plan starts it later
    than ``prev`` ends, beyond moving its data (the assignment's ``transfer_hours``) and
    :data:`HOLD_SLACK`, so it waits for something (bought chips, a capacity window, a rule's
    date) and would start early, as ``prev`` succeeds."""
    try:
        transfer = max(0.0, float(job.placement.raw.get("transfer_hours") or 0.0))
    except (TypeError, ValueError):
        transfer = 0.0
    gap = job.begin - epoch(prev.placement.end)
    if gap <= transfer * 3600 + HOLD_SLACK.total_seconds():
        return None
    return (
        f"{job.workload}/{job.stage}: planned to start {job.begin_utc}, {gap / 3600:,.1f} h after "
        f"{prev.stage} ends; a pipeline of its own, which launch.sh launches then (in "
        f"{prev.stage}'s pipeline it would start as {prev.stage} succeeds)"
    )


def serialized(job: StageJob, prev: StageJob, how: str = "in one pipeline it starts") -> str | None:
    """What a note says when ``job`` starts only once ``prev`` has succeeded though the plan
    starts it while ``prev`` still runs (a parallel branch: a pipeline runs one task at a time,
    and ``launch.sh`` launches or brings up an item once the pipeline before it has ended), or
    None."""
    end = epoch(prev.placement.end)
    if job.begin >= end:
        return None
    until = dt.datetime.fromtimestamp(end, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{job.workload}/{job.stage}: planned to start {job.begin_utc}, while {prev.stage} runs "
        f"(until {until}); {how} once {prev.stage} has succeeded, "
        f"{(end - job.begin) / 3600:,.1f} h late when {prev.stage} runs as planned"
    )


def unless_done(jobs: list[StageJob], gates: list[str], command: str, start: str) -> list[str]:
    """``command`` after ``gates`` and ``start`` (the wait for the first stage's planned
    start), skipped when every stage of ``jobs`` is listed as completed (a rerun of launch.sh
    does not launch them twice)."""
    done = " && ".join(f"listed {shlex.quote(j.workload + '/' + j.stage)}" for j in jobs)
    names = ", ".join(j.stage for j in jobs)
    return [
        f"if {done}; then",
        f"  echo {shlex.quote(f'skip {names}: completed (STRAITS_COMPLETED)')}",
        "else",
        *(f"  {g} || exit 1" for g in gates),
        f"  {start} || exit 1",
        f"  {command} || exit 1",
        "fi",
    ]


def launch_script(plan_id: str, launch: dict[str, list[str]]) -> str:
    """``launch.sh``: each workload's lines (:func:`unless_done`) as a background job."""
    out = [
        "#!/usr/bin/env bash",
        f"# Launch Straits plan {plan_id} on SkyPilot: per workload, its training pipelines",
        "# (sky jobs launch waits for one and fails when a task fails) and its services, each",
        "# after what its stages run after, and no earlier than its (first) stage's planned",
        "# start: the script waits for it (STRAITS_START_NOW, below).",
        "# Workloads run in parallel; the script exits non-zero if any fails.",
        "set -uo pipefail",
        'cd "$(dirname "$0")"',
        *COMPLETED_HELPERS,
        *START_HELPERS,
        *stop_helpers("launch.sh", "launched"),
    ]
    out += [*fork(launch.items()), *JOIN]
    return "\n".join(out)
