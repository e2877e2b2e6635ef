"""Slurm: an sbatch script per stage and, per cluster, ``submit.sh`` that submits them in order.

Layout. One task per node (``srun --ntasks-per-node=1``) with the node's GPUs: the launcher
torchrun expects. Each task gets ``NODE_RANK`` (its node), and every task the rendezvous of the
allocation's first node: ``MASTER_ADDR`` (from ``scontrol show hostnames``), ``MASTER_PORT``,
``NNODES``, ``NPROC_PER_NODE``. Whole nodes are asked for ``--exclusive``.

Time. A training stage needs its planned hours plus 25%; a serving stage, which never ends by
itself, runs for its planned period, no more (its last job's shell stops the command at the
planned end: the chips were priced for that long, and ``afterok`` successors start then). A
partition caps a job at its MaxTime (the
site's ``max_time``), so a longer stage runs as a chain of jobs, each within it: ``submit.sh``
submits the same script once per part, each ``--dependency=afterok`` on the one before.
Each job's limit is its share of the stage's time plus a warning (a tenth of the share, at
least a minute, at most 15) after it: ``--signal=B:USR1@<warning>`` warns the batch shell, which
passes SIGUSR1 to the command once the command has had its share (Slurm may warn up to a minute
early; the shell waits); the command saves a checkpoint to ``STRAITS_CHECKPOINT_DIR`` and exits
0, and the next job resumes from it. A stage that ends by itself marks
``.straits-stage-complete`` there, so the jobs left in its chain end at once; a running job
holds ``.straits-stage-lock`` there (``flock``), so a second copy of the stage stops at once.
A training stage still running at the end of its last job fails (its planned time is spent:
the plan was wrong, or the job was), and so does a command that fails:
``--kill-on-invalid-dep=yes`` then cancels everything after it instead of leaving it pending.

Order. The first job of a stage waits (``afterok``) for the last job of each predecessor on the
same cluster. Job ids exist only once submitted, and a job on another cluster cannot be waited
for without a federation, so a stage whose predecessor runs elsewhere is submitted held
(``--hold``): ``submit.sh`` prints the ``scontrol release`` that starts it.
"""

from __future__ import annotations

import math
import re
import shlex
from collections import defaultdict

from straits.errors import InputError
from straits.export.base import (
    MASTER_PORT,
    SERVE_PORT,
    ExportInput,
    ExportResult,
    StageJob,
    unique_labels,
)
from straits.export.slurm_status import status_script
from straits.export.slurm_submit import submit_script
from straits.model.targets import SlurmSite, format_minutes

#: how much longer than planned a stage may run, in all its jobs together
TIME_MARGIN = 1.25
#: warn this long before a job's limit: a tenth of the command's time, at least a minute, at
#: most 15, added to the job (Slurm warns up to a minute early, so a job of a minute warned a
#: minute ahead was warned at its start)
MAX_LEAD_S, MIN_LEAD_S = 900, 60
DONE_MARKER = ".straits-stage-complete"
#: the lock a running job of a stage holds in its checkpoint folder (``flock``)
LOCK = ".straits-stage-lock"
#: the command's own record that it ran to its end (suffixed with the job id and restart)
RAN_MARKER = ".straits-step-ran"


def slurm_site(job: StageJob) -> SlurmSite | None:
    t = job.planned.site.targets
    return t.slurm if t is not None else None


def time_limit(hours: float, serving: bool = False) -> str:
    """Slurm's ``days-hours:minutes:seconds`` for ``hours`` plus the margin (whole minutes)."""
    return format_minutes(needed_minutes(hours, serving))


def needed_minutes(hours: float, serving: bool = False) -> int:
    """Minutes of command a stage of ``hours`` gets in all its jobs: plus the margin for
    training, the planned period (whole minutes) for serving."""
    return max(1, math.ceil(hours * 60 * (1.0 if serving else TIME_MARGIN)))


def chain(hours: float, max_minutes: int, serving: bool = False) -> tuple[int, int]:
    """(jobs, minutes each) covering ``hours`` (plus the margin for training), each within
    ``max_minutes``: each job's limit is its share of the time plus the warning after it
    (:func:`split`)."""
    parts, work, lead = split(hours, max_minutes, serving)
    return parts, work + lead


def last_seconds(hours: float, parts: int, work: int, serving: bool = False) -> int:
    """Seconds of command in the last job of a chain of ``parts`` jobs of ``work`` minutes: all
    of them for training; for serving what is left of the planned period, so the chain's
    command time is the period (to the second), not ``parts * work`` minutes."""
    if not serving:
        return work * 60
    left = round(hours * 3600 - (parts - 1) * work * 60, 3)  # 0.0175 h is 63.00000000000001 s
    return max(1, min(work * 60, math.ceil(left)))


def split(hours: float, max_minutes: int, serving: bool = False) -> tuple[int, int, int]:
    """(jobs, minutes of command in each, minutes of warning after them): the jobs' command
    minutes cover ``hours`` (plus the margin for training) and each job, both together, fits
    ``max_minutes``. A MaxTime of one minute leaves no room for a warning (0)."""
    total = needed_minutes(hours, serving)
    if max_minutes < 2:
        return max(1, total), 1, 0
    most = max_minutes - 1
    while most + lead_minutes(most) > max_minutes:
        most -= 1  # at most 14 times: the warning is at most 15 minutes
    parts = max(1, math.ceil(total / most))
    work = math.ceil(total / parts)
    return parts, work, lead_minutes(work)


def lead_minutes(work: int) -> int:
    """Minutes of warning after ``work`` minutes of command."""
    return min(MAX_LEAD_S // 60, max(MIN_LEAD_S // 60, math.ceil(work / 10)))


def lead_seconds(minutes: int) -> int:
    """Seconds of warning after ``minutes`` of command."""
    return lead_minutes(minutes) * 60


def sh_quote(text: str) -> str:
    """``text`` as one shell word, on one line of the script when it holds a carriage return
    or another control character: sbatch refuses a script holding ``\\r\\n`` ("Batch script
    contains DOS line breaks"), so such a value is written ``$'...'`` with ``\\xHH`` escapes
    (bash reads it back byte for byte); any other value as :func:`shlex.quote` writes it."""
    if not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text):
        return shlex.quote(text)
    out = "".join(
        f"\\x{ord(ch):02x}"
        if ord(ch) < 0x20 or ord(ch) == 0x7F
        else "\\\\"
        if ch == "\\"
        else "\\'"
        if ch == "'"
        else ch
        for ch in text
    )
    return f"$'{out}'"


def _var(job: StageJob) -> str:
    return "JOB_" + "".join(ch if ch.isalnum() else "_" for ch in job.name).upper()


class SlurmExporter:
    name = "slurm"
    description = (
        "sbatch script per stage (rendezvous, checkpoint chain within MaxTime) and "
        "a submit.sh per cluster chaining them with --dependency=afterok"
    )

    def script(self, inp: ExportInput, job: StageJob, s: SlurmSite) -> str:
        nodes, per_node = job.layout(s.gpus_per_node)
        pool_t = job.planned.pool.targets
        partition = pool_t.slurm_partition if pool_t and pool_t.slurm_partition else s.partition
        gres = pool_t.slurm_gres if pool_t else "gpu"
        parts, work, lead_min = split(job.hours, s.max_minutes, job.serving)
        minutes, lead = work + lead_min, lead_min * 60
        last_s = last_seconds(job.hours, parts, work, job.serving)
        opts = [f"--job-name={job.name}"]
        if partition:
            opts.append(f"--partition={partition}")
        if s.account:
            opts.append(f"--account={s.account}")
        opts += [
            f"--nodes={nodes}",
            "--ntasks-per-node=1",
            f"--gpus-per-node={per_node}" if gres == "gpu" else f"--gres={gres}:{per_node}",
        ]
        if per_node == s.gpus_per_node:
            opts.append("--exclusive")
        opts += [
            f"--time={format_minutes(minutes)}",
            *([f"--signal=B:USR1@{lead}"] if lead else []),
            "--kill-on-invalid-dep=yes",
            "--output=%x-%j.out",
            # a requeued job (node failure, scontrol requeue, preemption) writes the same
            # file: appended to, the run before it keeps its record of why it stopped
            "--open-mode=append",
        ]
        # the root may hold $VARS for the shell (its pattern allows nothing else); the rest is
        # quoted whatever the plan id holds
        ckpt = f'"{s.checkpoint_root}"/' + shlex.quote(f"{inp.plan_id}/{job.workload}/{job.stage}")
        envs = {**job.env(inp.plan_id), "NPROC_PER_NODE": str(per_node)}
        if job.serving:
            envs["STRAITS_REPLICA_CHIPS"] = str(job.replica_chips)
            envs["STRAITS_SERVE_PORT"] = str(SERVE_PORT)
        margin = (
            f"{job.hours:.2f} h planned (serving: no margin, it ends at its planned end)"
            if job.serving
            else f"{job.hours:.2f} h planned{inp.at_risk} + {TIME_MARGIN - 1:.0%}"
        )
        last = f" (the last {last_s} s)" if last_s != work * 60 else ""
        lines = [
            "#!/bin/bash",
            *(f"#SBATCH {o}" for o in opts),
            f"# Straits plan {inp.plan_id}: {job.workload}/{job.stage} ({job.kind}) on "
            f"{job.planned.label}, {job.chips} chips planned, asked as {nodes} node(s) x "
            f"{per_node}, planned {job.placement.raw['start']} to {job.placement.raw['end']}",
            f"# time: {margin} = {needed_minutes(job.hours, job.serving)} min, as {parts} "
            f"job(s) of {work} min of command{last} and {lead_min} min of warning, "
            f"{format_minutes(minutes)} (partition MaxTime {s.max_time}); submit.sh chains them",
            f"# command ({job.command_source}): runs once per node; on SIGUSR1 (after {work} "
            f"min, {lead} s before a job's limit) it saves a checkpoint to "
            "$STRAITS_CHECKPOINT_DIR and exits 0",
        ]
        if job.after:
            lines.append(f"# submit.sh starts it after: {', '.join(job.after)} (afterok)")
        lines += [
            "# not errexit, which a SHELLOPTS exported into the job may turn on (submit.sh's own,",
            "# under --export=ALL): the wait Slurm's warning interrupts would end this shell",
            "set +e -uo pipefail",
            "# no command substitution in this shell: bash 5.2, given a signal while it expands",
            "# one, may fail to parse the signal's trap and go on as if none had come; a pipe",
            "# into read (lastpipe: read in this shell) does not parse. lastpipe holds only with",
            "# job control off: a SHELLOPTS exported by the submitting shell may turn it on",
            "set +m",
            "shopt -s lastpipe",
            "# Slurm's warning (SIGUSR1) may come up to a minute early, here at the start: it",
            "# reaches the command only once the command has had its time in this job",
            f"stop=0 step='' later='' work_s={work * 60}",
            "warned() {",
            '  if [ "$SECONDS" -lt "$work_s" ]; then',
            "    # one timer at a time",
            '    [ -z "$later" ] || ! kill -0 "$later" 2>/dev/null || return',
            "    (trap 'kill \"$s\" 2>/dev/null; exit 0' TERM; "
            'sleep "$(( work_s - SECONDS ))" & s=$!; wait "$s" && kill -USR1 $$) 9>&- '
            ">/dev/null 2>&1 & later=$!",
            "    return",
            "  fi",
            '  [ "$stop" -eq 0 ] || return',
            '  stop=1; echo "straits: time limit near: asking the command to checkpoint '
            '(SIGUSR1)" >&2',
            '  [ -z "$step" ] || kill -USR1 "$step" 2>/dev/null',
            "}",
            "trap warned USR1",
            "# on the way out no warning starts another timer (one could come late, while the",
            "# shell exits); a timer holds no output open, so none keeps a caller waiting",
            'trap \'trap "" USR1; [ -z "$later" ] || kill "$later" 2>/dev/null\' EXIT',
            *(f"export {k}={sh_quote(v)}" for k, v in envs.items()),
            f"export STRAITS_SEGMENT=${{STRAITS_SEGMENT:-1}} "
            f"STRAITS_SEGMENTS=${{STRAITS_SEGMENTS:-{parts}}}",
            "# Slurm's SIGTERM (scancel, scontrol requeue, a preemption, the job's limit): the",
            "# stage is not complete, and the job's output says so",
            "trap 'echo \"straits: $STRAITS_WORKLOAD/$STRAITS_STAGE job $STRAITS_SEGMENT of "
            "$STRAITS_SEGMENTS stopped by Slurm (SIGTERM: cancelled, requeued, preempted or at "
            "its limit); not marked complete\" >&2; exit 143' TERM",
            *(
                [
                    "# serving ends at the end of its planned period: the last job's command",
                    "# gets what is left of it",
                    f'[ "$STRAITS_SEGMENT" -lt "$STRAITS_SEGMENTS" ] || work_s={last_s}',
                ]
                if job.serving and last_s != work * 60
                else []
            ),
            f"export STRAITS_CHECKPOINT_DIR={ckpt}",
            'mkdir -p "$STRAITS_CHECKPOINT_DIR" || exit 1',
            "# one job at a time per stage of this plan: a second copy (submit.sh run twice,",
            "# a script submitted by hand) would write the same checkpoints",
            f'exec 9>>"$STRAITS_CHECKPOINT_DIR/{LOCK}"',
            "flock -n -E 75 9; lock=$?",
            'if [ "$lock" -eq 75 ]; then',
            '  echo "straits: another job is running $STRAITS_WORKLOAD/$STRAITS_STAGE of plan '
            '$STRAITS_PLAN_ID (lock on $STRAITS_CHECKPOINT_DIR); this one stops" >&2',
            "  exit 1",
            "fi",
            '[ "$lock" -eq 0 ] || echo "straits: cannot lock $STRAITS_CHECKPOINT_DIR (no flock '
            'there?); not guarded against a second copy of this stage" >&2',
            f'done_marker="$STRAITS_CHECKPOINT_DIR/{DONE_MARKER}"',
            'if [ -e "$done_marker" ]; then',
            '  echo "straits: $STRAITS_WORKLOAD/$STRAITS_STAGE is already complete '
            '(job $STRAITS_SEGMENT of $STRAITS_SEGMENTS has nothing to do)"',
            "  exit 0",
            "fi",
            "# rendezvous: the first node of the allocation",
            "MASTER_ADDR=''; scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1 "
            "| read -r MASTER_ADDR",
            f"export MASTER_ADDR MASTER_PORT=$(( {MASTER_PORT} + SLURM_JOB_ID % 1000 ))",
            'export NNODES="$SLURM_JOB_NUM_NODES"',
            'echo "straits: $STRAITS_WORKLOAD/$STRAITS_STAGE job $STRAITS_SEGMENT of '
            '$STRAITS_SEGMENTS on $NNODES node(s), rendezvous $MASTER_ADDR:$MASTER_PORT"',
            "# srun exits 0 also when it loses the step with a node, the command still running:",
            "# the command's own record, written on the first node (this one) when it ends with",
            "# exit 0, is what says it ran to its end. The task shell outlives SIGUSR1 (srun",
            "# signals every process of the step, the command included) and passes on its status",
            f'ran="$STRAITS_CHECKPOINT_DIR/{RAN_MARKER}-$SLURM_JOB_ID-${{SLURM_RESTART_COUNT:-0}}"',
            'rm -f "$ran"; export STRAITS_RAN_MARKER="$ran"',
            *(
                [
                    "# a service does not wait for Slurm's warning: the shell's own timer asks",
                    "# it to stop (SIGUSR1) once its time in this job is over",
                    "warned",
                ]
                if job.serving
                else []
            ),
            "srun --kill-on-bad-exit=1 --ntasks-per-node=1 "
            "bash -c 'export NODE_RANK=$SLURM_NODEID; trap : USR1; "
            'bash -c "$STRAITS_COMMAND"; rc=$?; '
            '[ "$rc$NODE_RANK" != 00 ] || touch "$STRAITS_RAN_MARKER"; '
            'exit "$rc"\' 9>&- &',
            "step=$!",
            "# wait returns early when the trap runs: wait again until the step has ended",
            'while :; do wait "$step"; rc=$?; kill -0 "$step" 2>/dev/null || break; done',
            'ran_to_end=0; [ ! -e "$ran" ] || ran_to_end=1; rm -f "$ran"',
            'if [ "$rc" -eq 0 ] && [ "$ran_to_end" -eq 0 ]; then',
            '  echo "straits: the step ended (exit 0) but the command did not run to its end '
            "on the first node (the step was lost with a node, or cancelled); not marked "
            'complete" >&2',
            "  exit 1",
            "fi",
            "# srun exits 0 when its node fails (the step was lost, not done), and the job is",
            "# requeued: the stage is complete only if the job is still running",
            "state=''; scontrol show job \"$SLURM_JOB_ID\" -o 2>/dev/null "
            "| grep -o 'JobState=[A-Z_]*' | head -n 1 | read -r state",
            'if [ -n "$state" ] && [ "$state" != JobState=RUNNING ]; then',
            '  echo "straits: the step ended (exit $rc) but the job is ${state#JobState=} (a node '
            'failed, or it was cancelled or requeued); not marked complete" >&2',
            "  exit 1",
            "fi",
            'if [ "$stop" -eq 0 ]; then',
            '  if [ "$rc" -eq 0 ]; then touch "$done_marker"; '
            'echo "straits: $STRAITS_WORKLOAD/$STRAITS_STAGE complete"; fi',
            '  exit "$rc"',
            "fi",
            'if [ "$STRAITS_SEGMENT" -lt "$STRAITS_SEGMENTS" ]; then',
            '  echo "straits: stopped at the limit of job $STRAITS_SEGMENT of '
            '$STRAITS_SEGMENTS (exit $rc); the next resumes from $STRAITS_CHECKPOINT_DIR"',
            "  exit 0",
            "fi",
        ]
        if job.serving:
            lines += [
                'touch "$done_marker"',
                'echo "straits: the planned serving period of '
                '$STRAITS_WORKLOAD/$STRAITS_STAGE is over"',
                "exit 0",
                "",
            ]
        else:
            lines += [
                'echo "straits: $STRAITS_WORKLOAD/$STRAITS_STAGE did not finish within '
                "its planned time and margin ($STRAITS_SEGMENTS job(s)); not marked "
                'complete, later stages will not start" >&2',
                "exit 1",
                "",
            ]
        return "\n".join(lines)

    def render(self, inp: ExportInput) -> ExportResult:
        res = ExportResult(self.name)
        submits: dict[str, list[str]] = defaultdict(list)
        where: dict[tuple[str, str], SlurmSite] = {}
        submitted: dict[str, list[tuple[int, StageJob, SlurmSite]]] = defaultdict(list)
        stages: dict[str, list[tuple[str, int]]] = defaultdict(list)
        folders = unique_labels(
            sorted({s.cluster for j in inp.jobs if (s := slurm_site(j)) is not None})
        )
        for job in inp.jobs:
            s = slurm_site(job)
            if s is None:
                res.notes.append(
                    f"{job.workload}/{job.stage}: site {job.planned.site.id} has no "
                    "sites[].targets.slurm mapping; no script written"
                )
                continue
            folder = f"slurm/{folders[s.cluster]}"
            res.files[f"{folder}/{job.name}.sbatch"] = self.script(inp, job, s)
            # 9 chips on nodes of 8 take 2 whole nodes: said, as SkyPilot's export says it
            if (note := job.rounding_note(s.gpus_per_node)) is not None:
                res.notes.append(note)
            parts, minutes = chain(job.hours, s.max_minutes, job.serving)
            submitted[s.cluster].append((parts, job, s))
            stages[folder].append((job.name, parts))
            if parts > 1:
                res.notes.append(
                    f"{job.workload}/{job.stage}: needs "
                    f"{needed_minutes(job.hours, job.serving) / 60:,.1f} h "
                    f"({'planned; serving has no margin' if job.serving else 'planned + 25%'}): "
                    f"{parts} chained jobs of {format_minutes(minutes)} within "
                    f"MaxTime {s.max_time}"
                )
            if job.command_source == "none":
                res.notes.append(
                    f"{job.workload}/{job.stage}: no command given; the job fails saying so (--run)"
                )
            same = [
                a
                for a in job.after
                if (job.workload, a) in where and where[(job.workload, a)].cluster == s.cluster
            ]
            remote = [a for a in job.after if a not in same]
            deps = ":".join(f"${{{_var(inp.job(job.workload, a))}}}" for a in same)
            lines = submits[folder]
            lines.append(
                f"# {job.workload}/{job.stage}: {parts} job(s)"
                + (f", after {', '.join(job.after)}" if job.after else "")
            )
            hold = "hold" if remote else "-"  # and not before the planned start (job.begin)
            lines.append(f"chain {job.name}.sbatch {parts} {deps or '-'} {hold} {job.begin}")
            lines.append(f"{_var(job)}=$LAST")
            if remote:
                elsewhere = ", ".join(
                    f"{a} ({where[(job.workload, a)].cluster})"
                    if (job.workload, a) in where
                    else f"{a} (not exported to Slurm)"
                    for a in remote
                )
                # single-quoted: only $FIRST is the shell's to expand
                held = shlex.quote(
                    f"{job.workload}/{job.stage} is held until {elsewhere} "
                    "has completed; then run: scontrol release "
                )
                lines.append(f'say {held}"$FIRST"')
                res.notes.append(
                    f"{job.workload}/{job.stage}: after {elsewhere} on another "
                    "cluster; submitted held, release it when that completes"
                )
            where[(job.workload, job.stage)] = s
            res.jobs += 1
        for cluster, jobs in submitted.items():
            _warned_in_time(inp, jobs)
            _within_max_jobs(inp, cluster, jobs)
        for folder, lines in submits.items():
            res.files[f"{folder}/submit.sh"] = submit_script(inp.plan_id, folder, lines)
            res.files[f"{folder}/status.sh"] = status_script(inp.plan_id, folder, stages[folder])
        return res


def _warned_in_time(inp: ExportInput, jobs: list[tuple[int, StageJob, SlurmSite]]) -> None:
    """Refuse a chain of jobs under a MaxTime of one minute: no room for the warning
    (``--signal``) that has a job save its checkpoint and exit 0, so each is killed at its
    limit (TIMEOUT), ``afterok`` fails and the rest of the chain is cancelled: it could never
    finish. One job (a stage that fits the minute) needs no warning and is kept."""
    for parts, job, s in jobs:
        if parts > 1 and s.max_minutes < 2:
            index = next(i for i, x in enumerate(inp.scenario.sites) if x.id == job.planned.site.id)
            raise InputError(
                f"{job.workload}/{job.stage} would be a chain of {parts:,} jobs within MaxTime "
                f"{s.max_time}, which leaves no time for the warning a job saves its checkpoint "
                "on: each would be killed at its limit and the chain cancelled; nothing was "
                "written",
                path=f"sites[{index}].targets.slurm.max_time",
                expected="the partition's real MaxTime, of 2 minutes or more",
            )


def _within_max_jobs(
    inp: ExportInput, cluster: str, jobs: list[tuple[int, StageJob, SlurmSite]]
) -> None:
    """Refuse a cluster's chains that need more jobs than it holds at once (``max_jobs``):
    ``submit.sh`` submits them all up front, so sbatch would refuse one half way through, and
    the submission would be taken back (a stage of three years under a MaxTime of an hour is
    some 33,000 jobs). The site of the longest chain is named: a longer MaxTime shortens it."""
    total = sum(parts for parts, _, _ in jobs)
    limit = min(s.max_jobs for _, _, s in jobs)
    if total <= limit:
        return
    parts, job, s = max(jobs, key=lambda j: j[0])
    index = next(i for i, x in enumerate(inp.scenario.sites) if x.id == job.planned.site.id)
    raise InputError(
        f"Slurm cluster {cluster} would be sent {total:,} jobs, more than it holds at once "
        f"(max_jobs {limit:,}); {job.workload}/{job.stage} alone is a chain of {parts:,} jobs "
        f"within MaxTime {s.max_time}; nothing was written",
        path=f"sites[{index}].targets.slurm.max_time",
        expected="the partition's real MaxTime (a longer one makes fewer jobs), or the "
        "cluster's real MaxJobCount as max_jobs",
    )
