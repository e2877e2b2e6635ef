#!/usr/bin/env bash
# A one-machine Slurm cluster for the export tests: munged, slurmctld and one slurmd, all in DIR.
#   .ci/slurm.sh start DIR [SCENARIO.yaml ...]  -> prints the path of the generated slurm.conf
#   .ci/slurm.sh stop DIR
# slurm.conf comes from the scenarios' Slurm targets (.ci/slurm_conf.py; default: the test
# scenario tests/data/slurm-ci.yaml and the shipped example): a partition per target partition
# with its MaxTime, fake GPU GRES, the real node in every partition and CLOUD nodes that never
# start standing in for the rest. Installs Debian's slurm-wlm and munge when missing. Ports:
# STRAITS_SLURM_PORT (slurmctld, default 16817) and the next one (slurmd). STRAITS_SLURM_PREEMPT=1
# (opt-in) adds preemption by partition in requeue mode (with GANG, so a test can switch a
# partition to suspend) and a partition `urgent` above the others (.ci/slurm_conf.py); the
# default cluster has none.
set -euo pipefail
action=${1:?start|stop}
dir=${2:?state directory}
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}

stop_pid() {  # stop the daemon whose pid file is $1 (only that process)
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

case "$action" in
  start)
    shift 2
    scenarios=("$@")
    [ ${#scenarios[@]} -gt 0 ] || scenarios=(tests/data/slurm-ci.yaml examples/offshore-2025.yaml)
    if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
      echo "installing slurm-wlm and munge (Debian packages)..." >&2
      export DEBIAN_FRONTEND=noninteractive
      SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
      $SUDO apt-get update -qq >&2
      $SUDO apt-get install -y -qq slurm-wlm munge >&2
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    mkdir -p "$dir/state" "$dir/spool" "$dir/checkpoints"
    chmod 755 "$dir"
    "$python" .ci/slurm_conf.py "$dir" "${scenarios[@]}"
    # munge: its own key, socket and files, so a system munged (if any) is untouched
    if [ ! -f "$dir/munge.key" ]; then
      dd if=/dev/urandom of="$dir/munge.key" bs=1 count=1024 status=none
      chmod 400 "$dir/munge.key"
    fi
    munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
      --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munged.seed"
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -f "$SLURM_CONF" -i
    slurmd -f "$SLURM_CONF" -N straits-ci
    # ready when the controller answers and the real node is idle
    for _ in $(seq 120); do
      state=$(sinfo -h -n straits-ci -o %t 2>/dev/null | head -n1 || true)
      [ "$state" = "idle" ] && break
      sleep 0.5
    done
    if [ "${state:-}" != "idle" ]; then
      echo "slurm did not come up (node state: ${state:-none}); logs in $dir" >&2
      tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
      exit 1
    fi
    echo "$SLURM_CONF"
    ;;
  stop)
    [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/slurm.conf" ] && [ -f "$dir/slurmctld.pid" ]; then  # end jobs still running
      SLURM_CONF="$dir/slurm.conf" squeue -h -o %i 2>/dev/null \
        | xargs -r env SLURM_CONF="$dir/slurm.conf" scancel 2>/dev/null || true
      sleep 1
    fi
    stop_pid "$dir/slurmd.pid"
    stop_pid "$dir/slurmctld.pid"
    stop_pid "$dir/munged.pid"
    ;;
  *) echo "usage: $0 start|stop DIR [SCENARIO...]" >&2; exit 2 ;;
esac
