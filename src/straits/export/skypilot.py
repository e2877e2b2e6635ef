"""SkyPilot: one task YAML per stage whose resources list only the options the rules allow.

The planned (cloud, region, accelerator) comes first and the lawful alternatives at the same
node count follow, so SkyPilot's own failover (a preempted or full region, a recovery relaunch of
a managed job) never leaves the lawful set. ``any_of`` (the default, as SkyPilot documents it:
the optimizer picks among the candidates) or ``ordered`` (tried in this order, so the planned
option wins while it has capacity). Datasets with a ``uri`` are mounted read-only at
``/data/<dataset>``; the Straits plan and stage travel in ``envs``, which the admission hook
(``POST /v1/skypilot/policy``) reads to re-check every launch.
"""

from __future__ import annotations

from typing import Any

from straits.export.base import Choice, ExportInput, ExportResult, StageJob, dump_yaml
from straits.plan.options import NODE

#: catalog chip id -> the accelerator name SkyPilot's catalogs use
ACCELERATORS = {
    "A100-SXM-80GB": "A100-80GB", "A100-SXM-40GB": "A100", "A800-SXM": "A800",
    "H100-SXM": "H100", "H800-SXM": "H800", "H200-SXM": "H200", "H20": "H20", "B200": "B200",
    "MI300X": "MI300X", "Ascend-910B": "Ascend910B", "Ascend-910C": "Ascend910C",
    "TPU-v4": "tpu-v4-8",
}
#: URI schemes SkyPilot mounts from object storage
MOUNTABLE = ("s3://", "gs://", "r2://", "cos://", "oci://", "https://")
ENV_PLAN, ENV_WORKLOAD, ENV_STAGE = "STRAITS_PLAN_ID", "STRAITS_WORKLOAD", "STRAITS_STAGE"


def accelerator(choice: Choice) -> str:
    t = choice.pool.targets
    if t is not None and t.skypilot_accelerator:
        return t.skypilot_accelerator
    return ACCELERATORS.get(choice.pool.chip, choice.pool.chip)


class SkyPilotExporter:
    name = "skypilot"
    description = "SkyPilot task YAML per stage (resources limited to lawful options)"

    def __init__(self, ordered: bool = False) -> None:
        self.ordered = ordered

    def resources(self, job: StageJob, per_node: int, notes: list[str]) -> list[dict[str, Any]]:
        out = []
        for c in job.choices:
            sky = c.site.targets.skypilot if c.site.targets else None
            if sky is None:
                notes.append(f"{job.workload}/{job.stage}: {c.label} has no "
                             "sites[].targets.skypilot mapping; left out of its resources")
                continue
            out.append({"infra": sky.infra, "accelerators": f"{accelerator(c)}:{per_node}"})
        return out

    def task(self, inp: ExportInput, job: StageJob, notes: list[str]) -> dict[str, Any] | None:
        per_node = NODE
        nodes = max(1, -(-job.chips // per_node))
        if nodes * per_node != job.chips:
            notes.append(f"{job.workload}/{job.stage}: {job.chips} chips rounded up to "
                         f"{nodes} nodes of {per_node}")
        options = self.resources(job, min(per_node, job.chips), notes)
        if not options or options[0]["infra"] != _infra(job.planned):
            notes.append(f"{job.workload}/{job.stage}: the planned site {job.planned.site.id} "
                         "has no SkyPilot mapping; no task written")
            return None
        mounts = {f"/data/{d.id}": d.uri for d in job.datasets
                  if d.uri is not None and d.uri.startswith(MOUNTABLE)}
        for d in job.datasets:
            if f"/data/{d.id}" not in mounts:
                notes.append(f"{job.workload}/{job.stage}: dataset {d.id} stays at "
                             f"{d.located_at} (no object-storage uri); mount it on the cluster")
        task: dict[str, Any] = {
            "name": job.name,
            "num_nodes": nodes,
            "resources": {"ordered" if self.ordered else "any_of": options},
            "envs": {ENV_PLAN: inp.plan_id, ENV_WORKLOAD: job.workload, ENV_STAGE: job.stage,
                     "STRAITS_SITE": job.planned.site.id,
                     "STRAITS_START": job.placement.raw["start"],
                     "STRAITS_END": job.placement.raw["end"]},
            "run": inp.run,
        }
        if mounts:
            task["file_mounts"] = mounts
        return task

    def render(self, inp: ExportInput) -> ExportResult:
        res = ExportResult(self.name)
        for job in inp.jobs:
            task = self.task(inp, job, res.notes)
            if task is None:
                continue
            head = (f"# Straits plan {inp.plan_id}: {job.workload}/{job.stage} on "
                    f"{job.planned.label} ({job.chips} chips, {job.hours:.1f} h)\n"
                    f"# resources: the planned option, then {len(job.alternatives)} lawful "
                    "alternative(s) at the same node count\n")
            if job.after:
                head += f"# start after: {', '.join(job.after)}\n"
            res.files[f"skypilot/{job.name}.yaml"] = head + dump_yaml(task)
            res.jobs += 1
        return res


def _infra(choice: Choice) -> str | None:
    sky = choice.site.targets.skypilot if choice.site.targets else None
    return sky.infra if sky else None
