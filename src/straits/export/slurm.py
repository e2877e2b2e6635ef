"""Slurm: one sbatch script per stage, and ``submit.sh`` that submits them in dependency order.

Each script asks for the planned cluster (``--clusters``), partition, nodes and GPUs per node
and a time limit of the planned hours plus a margin. Job ids exist only once submitted, so the
dependencies between stages (``--dependency=afterok:<id>[:<id>...]``) are passed by
``submit.sh``, which captures each id with ``sbatch --parsable``. Dependencies between
clusters need a Slurm federation; the script says where a stage depends on another cluster.
"""

from __future__ import annotations

import math
import shlex

from straits.export.base import ExportInput, ExportResult, StageJob
from straits.model.targets import SlurmSite

#: how much longer than planned a job may run before Slurm stops it
TIME_MARGIN = 1.25


def slurm_site(job: StageJob) -> SlurmSite | None:
    t = job.planned.site.targets
    return t.slurm if t is not None else None


def time_limit(hours: float) -> str:
    """Slurm's ``days-hours:minutes:seconds`` for ``hours`` plus the margin (whole minutes)."""
    minutes = max(1, math.ceil(hours * 60 * TIME_MARGIN))
    d, rest = divmod(minutes, 24 * 60)
    h, m = divmod(rest, 60)
    return f"{d}-{h:02d}:{m:02d}:00"


def _var(job: StageJob) -> str:
    return "JOB_" + "".join(ch if ch.isalnum() else "_" for ch in job.name).upper()


class SlurmExporter:
    name = "slurm"
    description = "sbatch script per stage and submit.sh chaining them with --dependency=afterok"

    def script(self, inp: ExportInput, job: StageJob, s: SlurmSite) -> str:
        per_node = min(s.gpus_per_node, job.chips)
        nodes = max(1, math.ceil(job.chips / per_node))
        pool_t = job.planned.pool.targets
        partition = (pool_t.slurm_partition if pool_t and pool_t.slurm_partition
                     else s.partition)
        gres = pool_t.slurm_gres if pool_t else "gpu"
        gpus = f"{per_node}" if gres == "gpu" else f"{gres}:{per_node}"
        opts = [f"--job-name={job.name}", f"--clusters={s.cluster}"]
        if partition:
            opts.append(f"--partition={partition}")
        if s.account:
            opts.append(f"--account={s.account}")
        opts += [f"--nodes={nodes}", "--ntasks-per-node=1", f"--gpus-per-node={gpus}",
                 f"--time={time_limit(job.hours)}", "--output=%x-%j.out"]
        lines = ["#!/bin/bash",
                 *(f"#SBATCH {o}" for o in opts),
                 f"# Straits plan {inp.plan_id}: {job.workload}/{job.stage} on "
                 f"{job.planned.label}, {job.chips} chips, planned "
                 f"{job.placement.raw['start']} to {job.placement.raw['end']}",
                 ]
        if job.after:
            lines.append(f"# submit.sh starts it after: {', '.join(job.after)} (afterok)")
        lines += ["set -euo pipefail",
                  f"export STRAITS_PLAN_ID={shlex.quote(inp.plan_id)}",
                  f"export STRAITS_WORKLOAD={shlex.quote(job.workload)}",
                  f"export STRAITS_STAGE={shlex.quote(job.stage)}",
                  f"srun /bin/sh -c {shlex.quote(inp.run)}", ""]
        return "\n".join(lines)

    def render(self, inp: ExportInput) -> ExportResult:
        res = ExportResult(self.name)
        submit = ["#!/bin/bash",
                  f"# Submit the stages of Straits plan {inp.plan_id} in dependency order.",
                  "set -euo pipefail", 'cd "$(dirname "$0")"']
        written: dict[tuple[str, str], StageJob] = {}
        for job in inp.jobs:
            s = slurm_site(job)
            if s is None:
                res.notes.append(f"{job.workload}/{job.stage}: site {job.planned.site.id} has no "
                                 "sites[].targets.slurm mapping; no script written")
                continue
            res.files[f"slurm/{job.name}.sbatch"] = self.script(inp, job, s)
            deps = [written[(job.workload, a)] for a in job.after
                    if (job.workload, a) in written]
            missing = [a for a in job.after if (job.workload, a) not in written]
            if missing:
                res.notes.append(f"{job.workload}/{job.stage}: predecessor(s) "
                                 f"{', '.join(missing)} not exported to Slurm; start it after "
                                 "they finish")
            flag = ""
            if deps:
                ids = ":".join(f"${{{_var(d)}}}" for d in deps)
                flag = f"--dependency=afterok:{ids} "
                other = sorted({slurm_site(d).cluster for d in deps} - {s.cluster})  # type: ignore[union-attr]
                if other:
                    submit.append(f"# {job.name} depends on jobs on {', '.join(other)}: "
                                  "needs a Slurm federation")
            submit.append(f"{_var(job)}=$(sbatch --parsable {flag}{job.name}.sbatch "
                          "| cut -d';' -f1)")
            submit.append(f'echo "{job.workload}/{job.stage}: job ${{{_var(job)}}}"')
            written[(job.workload, job.stage)] = job
            res.jobs += 1
        if written:
            res.files["slurm/submit.sh"] = "\n".join(submit) + "\n"
        return res
