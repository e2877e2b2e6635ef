"""Slurm's ``status.sh``: where each planned stage of a cluster's bundle stands, after
``submit.sh``.

``submit.sh`` records what it did in ``.straits-submitted`` beside it (:data:`RECORD`): a
``run`` line when it starts submitting, ``job NAME PART PARTS ID`` for each job, then ``done``,
or ``stopped EXIT`` when it stopped and cancelled what it had submitted (a ``kill -9`` leaves
neither). ``status.sh`` reads the latest run and asks Slurm about its jobs: ``squeue -t all``
for the jobs carrying the plan's comment (``--comment=straits:PLAN/CLUSTER``; the controller
keeps ended jobs for ``MinJobAge``), then ``sacct`` for those it no longer holds, where
accounting is configured (when it is not, the state is ``unknown`` and it says so). A requeued job
(preempted, a node failed) is said to be one. Without a
record (a bundle submitted by hand, or the file removed) it takes the jobs with the plan's
comment and the stage's job name, the newest as the stage's chain.

One row per planned stage, in the plan's order: ``completed``, ``running``, ``pending``,
``failed``, ``cancelled``, ``preempted`` (ended by a preemption in ``PreemptMode=CANCEL``; one
requeued is ``pending``, one suspended ``running``), ``not-submitted`` or ``unknown``, the part
of its chain that decides it, its job ids, Slurm's state and reason for that job, and why in
words (a stage cancelled before it started because a stage before it failed, was cancelled or
preempted, the first of them named: Slurm's ``DependencyNeverSatisfied``; one cancelled by a
``submit.sh`` that stopped; one never submitted because ``submit.sh`` stopped or was killed
before it). ``--tsv`` writes the same as tab-separated values with a header line. Exit
status: 0 every stage completed; 1 a stage failed, was cancelled or preempted or was never
submitted; 4 Slurm cannot say (``squeue`` failed, or a job is in neither ``squeue`` nor
``sacct``) and none failed; 3 the rest are still pending or running; 2 a bad argument.
"""

from __future__ import annotations

import shlex

from straits.export.slurm_submit import RECORD, mark

_BODY = r"""usage() {
  echo "usage: status.sh [--tsv]   (exit 0 all completed, 1 some failed, cancelled, preempted"
  echo "or never submitted, 3 some still pending or running, 4 Slurm cannot say, 2 a bad argument)"
}
tsv=0
case "$#:${1:-}" in
  0:) ;;
  1:--tsv) tsv=1 ;;
  1:-h|1:--help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac
# the latest run of submit.sh: its jobs (NAME PART -> id) and how it ended
declare -A JOB=() SEEN=()
ended=none
if [ -f "$RECORD" ]; then
  # CR too: a record with CRLF line ends (brk32); a job line without its id is skipped
  while IFS=$' \t\r' read -r kind a b _ d; do
    case "$kind" in
      run) JOB=(); ended=killed ;;
      job) [ -z "$d" ] || JOB["$a $b"]=$d ;;
      done) ended=done ;;
      stopped) ended="stopped $a" ;;
    esac
  done < "$RECORD"
fi
# every job of this plan on this cluster the controller still holds (MinJobAge)
declare -A STATE=() REASON=() HOST=() BYNAME=() RESTARTS=() PREEMPTED=()
# the columns that hold no '|' first, the free text after: the plan's comment (matched whole),
# the job's name (a stage's: no '|') and Slurm's reason last, to the end of the row, so a '|'
# in a reason, or another job's comment, shifts no column (slurm33)
fields='JobID:|,State:|,BatchHost:|,RestartCnt:|,StartTime:|,PreemptTime:|,Comment:|,Name:|'
fields+=',Reason:|'
queue=$(squeue -h -t all -O "$fields") || {
  echo "status.sh: squeue failed: Slurm cannot say where the stages stand" >&2
  exit 4
}
while IFS= read -r line; do
  IFS='|' read -r id state host restarts start preempt _ <<< "$line"
  rest=${line#"$id|$state|$host|$restarts|$start|$preempt|"}
  [ "$rest" != "$line" ] && [ "${rest#"$MARK|"}" != "$rest" ] || continue
  rest=${rest#"$MARK|"} name=${rest%%|*}
  [ "$name" != "$rest" ] || continue
  reason=${rest#*|} reason=${reason%|}
  case "$restarts" in ''|*[!0-9]*) restarts=0 ;; esac
  STATE[$id]=$state REASON[$id]=$reason HOST[$id]=$host RESTARTS[$id]=$restarts
  # a preemption during its last run (ISO times compare as text): with a GraceTime the job
  # is signalled and may end itself, FAILED or CANCELLED, before Slurm says PREEMPTED
  case "$preempt" in [0-9]*) [[ "$preempt" < "$start" ]] || PREEMPTED[$id]=$preempt ;; esac
  BYNAME[$name]="${BYNAME[$name]:-} $id"
done <<< "$queue"
if [ "$ended" = none ]; then  # no record: the newest jobs of each stage's name, in order
  for entry in "${STAGES[@]}"; do
    name=${entry%:*} parts=${entry##*:}
    read -r -a ids <<< "$(tr ' ' '\n' <<< "${BYNAME[$name]:-}" | sed '/^$/d' | sort -n \
      | tail -n "$parts" | tr '\n' ' ')"
    if [ "${#ids[@]}" -eq "$parts" ]; then
      for i in "${!ids[@]}"; do JOB["$name $(( i + 1 ))"]=${ids[$i]}; done
    fi
  done
fi
# the jobs the controller has forgotten: sacct, where accounting is configured
missing=()
for key in "${!JOB[@]}"; do [ -n "${STATE[${JOB[$key]}]:-}" ] || missing+=("${JOB[$key]}"); done
acct=""
if [ "${#missing[@]}" -gt 0 ]; then
  if acct=$(sacct -n -P -X -j "$(IFS=,; echo "${missing[*]}")" -o JobID,State,Reason 2>&1); then
    while IFS='|' read -r id state reason; do
      [ -n "$id" ] || continue
      STATE[$id]=${state%% *} REASON[$id]=$reason HOST[$id]=acct
    done <<< "$acct"
    acct=""
  else
    acct="not in squeue (ended over MinJobAge ago) and sacct cannot say: ${acct//$'\n'/ }"
  fi
fi
row() {  # stage state part jobs slurm why
  set -- "${@//$'\t'/ }"  # a tab in Slurm's text (a reason) is no column of --tsv
  if [ "$tsv" -eq 1 ]; then printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@"
  else printf '%-28s %-13s %-5s %-16s %-34s %s\n' "$@"; fi
}
row stage state part jobs slurm why
failed=0 unknown=0 going=0 first=""  # first: the first stage that ended without success
for entry in "${STAGES[@]}"; do
  name=${entry%:*} parts=${entry##*:}
  if [ -z "${JOB["$name 1"]:-}" ]; then
    case "$ended" in
      stopped*) why="submit.sh stopped (exit ${ended#stopped }) before submitting it" ;;
      killed) why="submit.sh did not finish (killed?) before submitting it" ;;
      done) why="not in submit.sh's record of its last run" ;;
      *) why="no job of this plan with its name in squeue (never submitted, or ended over"
         why+=" MinJobAge ago)" ;;
    esac
    row "$name" not-submitted "-" "-" "-" "$why"; failed=1; continue
  fi
  ids=() state=completed part=$parts slurm=COMPLETED why="ran to its end"
  for seg in $(seq 1 "$parts"); do
    id=${JOB["$name $seg"]:-}
    [ -n "$id" ] && ids+=("$id")
    [ "$state" = completed ] || continue
    if [ -n "$id" ]; then s=${STATE[$id]:-UNKNOWN} r=${REASON[$id]:-None} h=${HOST[$id]:-}
    else s=UNKNOWN r="part $seg not in submit.sh's record" h=""; fi
    [ "$s" = COMPLETED ] && continue
    part=$seg slurm="$s/$r" n=0
    [ -z "$id" ] || n=${RESTARTS[$id]:-0}
    # requeued (preempted, its node failed, scontrol requeue): Slurm holds it a while before
    # it may start again (BeginTime), which is not the plan's start
    [ "$n" = 0 ] || slurm+=" (requeued $n)"
    case "$s" in
      PENDING|REQUEUED|REQUEUE_HOLD|REQUEUE_FED|RESV_DEL_HOLD)
        state=pending
        case "$r" in
          Dependency) why="waits for the stages before it (afterok)" ;;
          BeginTime) if [ "$n" = 0 ]; then why="waits for its planned start (--begin)"
            else why="requeued $n time(s) (preempted, a node failed or scontrol requeue):"
              why+=" Slurm lets it start again after a delay"; fi ;;
          JobHeldUser|JobHeldAdmin) why="held: scontrol release $id starts it" ;;
          None|Priority|Resources) why="waits to be scheduled ($r)" ;;
          *) why="waits: $r" ;;
        esac ;;
      SUSPENDED)  # preempted in SUSPEND mode, or scontrol suspend: stopped where it was
        state=running why="part $seg of $parts is suspended (preempted, or scontrol suspend):"
        why+=" its processes stopped, holding the node; it goes on where it stopped" ;;
      RUNNING|COMPLETING|CONFIGURING|RESIZING|SIGNALING|STAGE_OUT)
        state=running why="part $seg of $parts is $s"
        [ "$n" = 0 ] || why+=", again after a requeue (the command runs again)" ;;
      PREEMPTED)  # PreemptMode=CANCEL: ended for a job of a higher priority, not requeued
        state=preempted first=${first:-"$name, preempted"}
        why="preempted: Slurm ended it for a job of a higher priority and will not run it"
        why+=" again (PreemptMode=CANCEL); submit.sh again to resume" ;;
      CANCELLED)
        state=cancelled
        if [ "$h" != n/a ] && [ "$h" != acct ]; then
          why="cancelled while it ran" first=${first:-"$name, cancelled"}
        elif [ "$r" = DependencyNeverSatisfied ]; then
          why="never started: a stage before it failed, was cancelled or preempted"
          [ -z "$first" ] || why+=" (the first: $first)"
        elif [ "${ended%% *}" = stopped ]; then
          why="never started: cancelled by submit.sh, which stopped (exit ${ended#stopped })"
        else why="never started: cancelled ($r)"; fi ;;
      UNKNOWN) state=unknown why=${acct:-"Slurm does not know job $id"} ;;
      *) state=failed why="ended $s ($r)" first=${first:-"$name, ended $s"} ;;
    esac
    p=${PREEMPTED[${id:-x}]:-}
    if [ -n "$p" ] && { [ "$state" = failed ] || [ "$why" = "cancelled while it ran" ]; }; then
      state=preempted
      case "$first" in ""|"$name, "*) first="$name, preempted" ;; esac  # unless one before
      why="preempted at $p, signalled (GraceTime), then ended $s ($r); Slurm will not run it"
      why+=" again (PreemptMode=CANCEL); submit.sh again to resume"
    fi
  done
  case "$state" in
    failed|cancelled|preempted) failed=1 ;;
    unknown) unknown=1 ;;
    pending|running) going=1 ;;
  esac
  jobs=$(IFS=,; echo "${ids[*]}")
  row "$name" "$state" "$part/$parts" "$jobs" "$slurm" "$why"
done
[ "$failed" -eq 0 ] || exit 1
[ "$unknown" -eq 0 ] || exit 4
[ "$going" -eq 0 ] || exit 3
exit 0
"""


def status_script(plan_id: str, folder: str, stages: list[tuple[str, int]]) -> str:
    """``status.sh`` for ``folder`` (``slurm/CLUSTER``): ``stages`` are the planned stages'
    job names and chain lengths, in the order ``submit.sh`` submits them."""
    head = [
        "#!/bin/bash",
        f"# Where each stage of Straits plan {plan_id} on this cluster ({folder}) stands, after",
        "# submit.sh: one row per planned stage (--tsv: tab-separated, with a header).",
        "# Exit 0 all completed, 1 some failed, cancelled, preempted or never submitted, 3 some",
        "# still pending or running, 4 Slurm cannot say, 2 a bad argument.",
        "set -uo pipefail",
        "# the folder of the script itself, not of a link to it (brk32)",
        'cd "$(dirname "$(readlink -f "$0")")" || exit 4',
        f"MARK={shlex.quote(mark(plan_id, folder))}",
        f"RECORD={RECORD}",
        "# NAME:PARTS, in the order submit.sh submits them",
        "STAGES=(" + " ".join(shlex.quote(f"{n}:{p}") for n, p in stages) + ")",
    ]
    return "\n".join(head) + "\n" + _BODY
