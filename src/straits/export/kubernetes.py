"""Kubernetes: one Indexed batch/v1 Job per stage, queued through Kueue and pinned to the site.

Each Job starts suspended with the ``kueue.x-k8s.io/queue-name`` label, so Kueue admits it
when the LocalQueue's quota allows; its pods require the site's and the GPU type's node labels
(``requiredDuringSchedulingIgnoredDuringExecution``) and request the pool's accelerator
resource per node. Kubernetes has no dependencies between Jobs: the order is in the
``straits.dev/after`` annotation and in ``apply-order.txt``; a stage is applied once its
predecessors have completed.
"""

from __future__ import annotations

import math
from typing import Any

from straits.export.base import Choice, ExportInput, ExportResult, StageJob, dump_yaml, label_value
from straits.model.targets import KubernetesSite
from straits.plan.options import NODE

LABEL = "straits.dev"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: how much longer than planned a Job may run before Kubernetes stops it
DEADLINE_MARGIN = 1.25


def k8s_site(choice: Choice) -> KubernetesSite | None:
    return choice.site.targets.kubernetes if choice.site.targets else None


def resource_name(choice: Choice) -> str:
    t = choice.pool.targets
    return t.kubernetes_resource if t is not None else "nvidia.com/gpu"


def node_labels(choice: Choice, *, site_labels: bool = True) -> dict[str, str]:
    out: dict[str, str] = {}
    k = k8s_site(choice)
    if site_labels and k is not None:
        out.update(k.node_labels)
    if choice.pool.targets is not None:
        out.update(choice.pool.targets.kubernetes_node_labels)
    return out


def job_labels(inp: ExportInput, job: StageJob) -> dict[str, str]:
    return {f"{LABEL}/plan": label_value(inp.plan_id),
            f"{LABEL}/workload": label_value(job.workload),
            f"{LABEL}/stage": label_value(job.stage),
            f"{LABEL}/site": label_value(job.planned.site.id)}


def job_manifest(inp: ExportInput, job: StageJob, *, site_labels: bool = True
                 ) -> dict[str, Any]:
    """The batch/v1 Job of ``job`` at its planned site."""
    k = k8s_site(job.planned)
    assert k is not None
    per_node = min(NODE, job.chips)
    nodes = max(1, math.ceil(job.chips / per_node))
    labels = job_labels(inp, job)
    match = [{"key": key, "operator": "In", "values": [value]}
             for key, value in sorted(node_labels(job.planned, site_labels=site_labels).items())]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [{
            "name": "stage",
            "image": inp.image,
            "command": ["/bin/sh", "-c", inp.run],
            "env": [{"name": "STRAITS_PLAN_ID", "value": inp.plan_id},
                    {"name": "STRAITS_WORKLOAD", "value": job.workload},
                    {"name": "STRAITS_STAGE", "value": job.stage},
                    {"name": "STRAITS_NODES", "value": str(nodes)}],
            "resources": {"requests": {resource_name(job.planned): str(per_node)},
                          "limits": {resource_name(job.planned): str(per_node)}},
        }],
    }
    if match:
        pod["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": match}]}}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job.name, "namespace": k.namespace,
            "labels": {**labels, QUEUE_LABEL: k.queue},
            "annotations": {f"{LABEL}/plan-id": inp.plan_id,
                            f"{LABEL}/after": ",".join(job.after),
                            f"{LABEL}/planned-start": job.placement.raw["start"],
                            f"{LABEL}/planned-end": job.placement.raw["end"],
                            f"{LABEL}/option": job.planned.label},
        },
        "spec": {
            "suspend": True,
            "completionMode": "Indexed",
            "completions": nodes,
            "parallelism": nodes,
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(60, math.ceil(job.hours * 3600 * DEADLINE_MARGIN)),
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def _dump(docs: list[dict[str, Any]]) -> str:
    return dump_yaml(*docs)


class KubernetesExporter:
    name = "kubernetes"
    description = "Kubernetes Jobs per stage with Kueue queue labels and node affinity"

    def render(self, inp: ExportInput) -> ExportResult:
        res = ExportResult(self.name)
        order = []
        for job in inp.jobs:
            k = k8s_site(job.planned)
            if k is None:
                res.notes.append(f"{job.workload}/{job.stage}: site {job.planned.site.id} has no "
                                 "sites[].targets.kubernetes mapping; no Job written")
                continue
            path = f"kubernetes/{k.cluster}/{job.name}.yaml"
            res.files[path] = _dump([job_manifest(inp, job)])
            order.append(f"{path}  # context {k.context or k.cluster}"
                         + (f", after {', '.join(job.after)}" if job.after else ""))
            res.jobs += 1
        if order:
            res.files["kubernetes/apply-order.txt"] = "\n".join(order) + "\n"
        return res


class KarmadaExporter:
    """Karmada: the Job as a resource template plus a PropagationPolicy whose cluster
    affinities list the planned cluster first and then the clusters of the lawful alternatives
    with the same chip (Karmada tries the groups in order and fails over between them)."""

    name = "karmada"
    description = "Karmada PropagationPolicy per stage (cluster affinity = lawful clusters)"

    def policy(self, inp: ExportInput, job: StageJob) -> dict[str, Any]:
        k = k8s_site(job.planned)
        assert k is not None
        same_chip = [c for c in job.alternatives
                     if c.pool.chip == job.planned.pool.chip and k8s_site(c) is not None]
        fallback = sorted({k8s_site(c).cluster for c in same_chip} - {k.cluster})  # type: ignore[union-attr]
        affinities: list[dict[str, Any]] = [{"affinityName": "planned",
                                             "clusterNames": [k.cluster]}]
        if fallback:
            affinities.append({"affinityName": "lawful-alternatives", "clusterNames": fallback})
        return {
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "PropagationPolicy",
            "metadata": {"name": job.name, "namespace": k.namespace,
                         "labels": job_labels(inp, job)},
            "spec": {
                "resourceSelectors": [{"apiVersion": "batch/v1", "kind": "Job",
                                       "name": job.name}],
                "placement": {
                    "clusterAffinities": affinities,
                    "spreadConstraints": [{"spreadByField": "cluster", "maxGroups": 1,
                                           "minGroups": 1}],
                },
            },
        }

    def render(self, inp: ExportInput) -> ExportResult:
        res = ExportResult(self.name)
        for job in inp.jobs:
            if k8s_site(job.planned) is None:
                res.notes.append(f"{job.workload}/{job.stage}: site {job.planned.site.id} has no "
                                 "sites[].targets.kubernetes mapping; no policy written")
                continue
            # the template carries only the GPU type's labels: any lawful cluster can run it
            docs = [job_manifest(inp, job, site_labels=False), self.policy(inp, job)]
            res.files[f"karmada/{job.name}.yaml"] = _dump(docs)
            res.jobs += 1
        return res
