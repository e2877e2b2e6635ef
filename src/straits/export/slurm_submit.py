"""Slurm's ``submit.sh``: every stage's sbatch script submitted in order, all or nothing.

A stage is submitted as a chain of jobs within the partition's MaxTime, each ``afterok`` on the
one before; the first waits for the stage's predecessors on the cluster (held when one runs on
another cluster) and, when the plan starts it later than now, for its planned start
(``--begin=now+SECONDS``: a stage the plan holds for chips still to arrive, a capacity window or
a rule's date does not start when its predecessor ends). Counting seconds from now leaves the
cluster's time zone out of it.

Run twice (an operator retrying after a lost login) it would queue every stage a second time:
each job carries the plan and cluster in its comment (``--comment=straits:PLAN/CLUSTER``), and
``submit.sh`` submits nothing while ``squeue`` lists a job with that comment, naming them
(``STRAITS_SUBMIT_AGAIN=1`` queues a second copy anyway).
"""

from __future__ import annotations

import shlex

#: the file ``submit.sh`` records its runs in, in its own folder (``status.sh`` reads it)
RECORD = ".straits-submitted"


def submit_script(plan_id: str, folder: str, body: list[str]) -> str:
    """``submit.sh``: the ``chain`` function and the lines ``body`` that call it, one stage
    after another (:class:`~straits.export.slurm.SlurmExporter`)."""
    head = [
        "#!/bin/bash",
        f"# Submit the stages of Straits plan {plan_id} on this cluster ({folder}), in order.",
        "# Run it on the cluster's login node, from any directory.",
        "# All or nothing: the first job of every stage that waits for no other is submitted",
        "# held and released only once every job is in, so a run that stops half way (an",
        "# sbatch refusal, Ctrl-C, a lost login) starts nothing; one that fails cancels what",
        "# it submitted, and one killed outright leaves them held (it prints their ids).",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        "# no command substitution once the traps are set: bash 5.2, given Ctrl-C or SIGTERM",
        "# while it expands one, may fail to parse the trap and go on submitting; a pipe into",
        "# read (lastpipe: read in this shell) and printf's %(%s)T do not parse. lastpipe holds",
        "# only with job control off (an exported SHELLOPTS or bash -i may turn it on)",
        "set +m",
        "shopt -s lastpipe",
        "SUBMITTED=() RELEASE=() RUN=''",
        f"RECORD={RECORD}",
        "# what this run did, for status.sh: best effort, it never stops the submission",
        'rec() { printf \'%s\\n\' "$*" >> "$RECORD" 2>/dev/null || true; }',
        f"MARK={shlex.quote(mark(plan_id, folder))}",
        "cleanup() {",
        "  local rc=$?",
        '  [ "$rc" -eq 0 ] && return 0',
        '  [ -z "$RUN" ] || rec "stopped $rc"',
        '  if [ "${#SUBMITTED[@]}" -gt 0 ]; then',
        '    echo "submit.sh stopped (exit $rc): cancelling the ${#SUBMITTED[@]} job(s) it'
        ' submitted: ${SUBMITTED[*]}" >&2',
        '    scancel "${SUBMITTED[@]}" || echo "scancel failed: cancel them yourself:'
        ' scancel ${SUBMITTED[*]}" >&2',
        "  fi",
        '  exit "$rc"',
        "}",
        "trap cleanup EXIT",
        "trap 'exit 130' INT",
        "trap 'exit 143' TERM HUP",
        "# what it prints is best effort: a reader that stops early (submit.sh | head) must not",
        "# stop the submission half way, so SIGPIPE is ignored and a failed write is not an error",
        "trap '' PIPE",
        "say() { printf '%s\\n' \"$*\" 2>/dev/null || true; }",
        "# chain SCRIPT PARTS DEPS HOLD BEGIN: submit SCRIPT as PARTS jobs, each afterok on the",
        "# one before, the first afterok on DEPS (job ids a:b, or -), held when HOLD is 'hold',",
        "# and not started before BEGIN (the planned start, seconds since 1970 UTC) when that is",
        "# still to come; sets FIRST and LAST to the first and last job ids",
        "chain() {",
        "  local script=$1 parts=$2 deps=$3 hold=$4 begin=${5:-0} seg id prev wait_s now",
        "  local line ids said",
        "  printf -v now '%(%s)T' -1",
        "  wait_s=$(( begin - now ))",
        '  [ "$deps" = - ] && deps=""',
        '  prev=$deps FIRST=""',
        "  for ((seg = 1; seg <= parts; seg++)); do",
        "    args=(--parsable --export=ALL,STRAITS_SEGMENT=$seg,STRAITS_SEGMENTS=$parts",
        '      "--comment=$MARK")',
        '    [ -n "$prev" ] && args+=(--dependency=afterok:$prev)',
        '    [ "$seg" -eq 1 ] && { [ "$hold" = hold ] || [ -z "$prev" ]; } && args+=(--hold)',
        '    [ "$seg" -eq 1 ] && [ "$wait_s" -gt 0 ] && args+=(--begin=now+$wait_s)',
        "    # the job id is the one line of digits (;CLUSTER after it on a multi-cluster",
        "    # setup); a wrapper's notice or a blank line beside it is passed on to stderr",
        "    id='' ids=0 said=''",
        '    sbatch "${args[@]}" "$script" | while IFS= read -r line || [ -n "$line" ]; do',
        "      if [[ $line =~ ^[[:space:]]*([0-9]+)(;[^[:space:]]*)?[[:space:]]*$ ]]; then",
        '        id=${BASH_REMATCH[1]} ids=$((ids + 1)) said+=" $id"',
        '      elif [ -n "${line//[[:space:]]/}" ]; then',
        '        printf \'sbatch (%s): %s\\n\' "$script" "$line" >&2',
        "      fi",
        "    done",
        '    [ "$ids" -ne 0 ] || { echo "sbatch gave no job id for $script" >&2; exit 1; }',
        '    [ "$ids" -eq 1 ] || { echo "sbatch gave $ids job ids for $script (${said# }), not'
        ' one: cancel those it submitted yourself" >&2; exit 1; }',
        '    SUBMITTED+=("$id")',
        '    rec "job ${script%.sbatch} $seg $parts $id"',
        '    [ "$seg" -eq 1 ] && [ "$hold" != hold ] && [ -z "$prev" ] && RELEASE+=("$id")',
        '    [ -n "$FIRST" ] || FIRST=$id',
        '    say "$script: job $id (part $seg of $parts)"',
        "    prev=$id",
        "  done",
        "  LAST=$id",
        "}",
    ]
    again = [
        "# the jobs write their output here (%x-%j.out): where they cannot, each fails to",
        "# launch (JobLaunchFailure, the reason only in slurmd's log on its node), the rest",
        "# cancelled",
        "probe=''",
        "mktemp -p . .straits-write-probe.XXXXXX 2>/dev/null | { read -r probe || true; } || {",
        "  who=''; id -un | { read -r who || true; }",
        '  echo "submit.sh: $who cannot write in $PWD, where the jobs write their output;'
        ' nothing submitted" >&2',
        "  exit 1",
        "}",
        'rm -f "$probe"',
        "# run twice (a retry after a lost login), every stage would be queued twice: nothing is",
        "# submitted while jobs of this plan on this cluster are queued (their comment)",
        'if [ "${STRAITS_SUBMIT_AGAIN:-0}" != 1 ]; then',
        "  queued=''",
        "  squeue -h -o '%i %k' | awk -v m=\"$MARK\" "
        '\'$2 == m { printf "%s%s", s, $1; s = " " }\' | { read -r queued || true; } || {',
        '    echo "submit.sh: squeue failed: cannot tell whether this plan is already queued;'
        ' nothing submitted" >&2',
        "    exit 1",
        "  }",
        '  if [ -n "$queued" ]; then',
        '    echo "submit.sh: jobs of this plan are already queued on this cluster ($MARK):'
        " $queued; nothing submitted (scancel them first, or set STRAITS_SUBMIT_AGAIN=1 to"
        ' queue a second copy)" >&2',
        "    exit 1",
        "  fi",
        "fi",
        "printf -v RUN '%(%s)T' -1; rec \"run $RUN\"",
    ]
    tail = [
        "# every job is in: start the stages that wait for nothing",
        'if [ "${#RELEASE[@]}" -gt 0 ]; then',
        "  printf -v ids '%s,' \"${RELEASE[@]}\"",
        '  scontrol release "${ids%,}"',
        "fi",
        'rec "done"',
        "trap - EXIT",
    ]
    return "\n".join(head + again + body + tail) + "\n"


def mark(plan_id: str, folder: str) -> str:
    """The comment every job of ``folder`` (``slurm/CLUSTER``) of the plan carries."""
    return f"straits:{plan_id}/{folder.removeprefix('slurm/')}"
