"""The Kubernetes objects of one stage: a JobSet for training, a Deployment (replicas that fit
a node) or a LeaderWorkerSet (replicas that span nodes) behind a Service for serving.

Why JobSet. It is the smallest API that runs a torchrun gang: one controller (which Kueue
admits natively), a headless Service it creates itself so every pod has a stable hostname
(``<jobset>-node-0-<index>.<jobset>``, the first one is ``MASTER_ADDR``), a failure policy that
restarts the whole gang from its checkpoint. Kubeflow's TrainJob builds on JobSet but also
needs the Trainer controller and a ClusterTrainingRuntime installed; PyTorchJob (Training
Operator v1) is being retired in its favour.

Failure policy. A pod that fails fails its Job (``backoffLimit: 0``: a gang cannot go on with a
rank missing) and JobSet recreates every Job, up to 3 times. A pod disrupted by preemption,
eviction or node maintenance (``DisruptionTarget``) fails its Job through the pod failure
policy instead, and that restart does not count (``RestartJobSetAndIgnoreMaxRestarts``).
"""

from __future__ import annotations

import math
import re
from typing import Any

from straits.errors import InputError
from straits.export.base import (
    MASTER_PORT,
    READINESS_PATH,
    SERVE_PORT,
    Choice,
    ExportInput,
    StageJob,
)
from straits.export.k8s_tpu import TPU_RESOURCE, on_gke, pod_layout, tpu_selector
from straits.export.names import fit_name, label_value
from straits.model.targets import KubernetesSite
from straits.plan.options import NODE

LABEL = "straits.dev"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
MAX_EXEC_LABEL = "kueue.x-k8s.io/max-exec-time-seconds"
INT32_MAX = 2**31 - 1
TOPOLOGY_ANNOTATION = {
    "required": "kueue.x-k8s.io/podset-required-topology",
    "preferred": "kueue.x-k8s.io/podset-preferred-topology",
}
REPLICATED_JOB = "node"
MAX_RESTARTS = 3
#: how much longer than planned a training stage may hold its quota (all restarts together)
TIME_MARGIN = 1.25
#: serving: model loading may take this long before the readiness probe counts
STARTUP_SECONDS = 1800
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"
LWS_INDEX_LABEL = "leaderworkerset.sigs.k8s.io/worker-index"


def k8s_site(choice: Choice) -> KubernetesSite | None:
    return choice.site.targets.kubernetes if choice.site.targets else None


def resource_name(choice: Choice) -> str:
    """The pool's ``kubernetes_resource``; for a TPU pool that sets none, GKE's
    ``google.com/tpu`` (:mod:`straits.export.k8s_tpu`)."""
    if on_gke(choice):
        return TPU_RESOURCE
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


def object_name(job: StageJob) -> str:
    """The stage's object name (its name, within what the controllers derive from it; see
    :mod:`straits.export.names`): a JobSet's longest pod name
    ``<name>-node-0-<last index>-abcde`` and a LeaderWorkerSet group's StatefulSet
    ``<name>-<last group>`` (whose pods' ``controller-revision-hash`` label adds 11 characters)
    stay within 63."""
    nodes, _ = pod_layout(job)
    if not job.serving:
        return fit_name(job.name, len(f"-{REPLICATED_JOB}-0-{nodes - 1}-abcde"))
    if nodes > 1:
        return fit_name(job.name, len(f"-{job.replicas() - 1}") + 11)
    return fit_name(job.name, 0)


def stage_labels(inp: ExportInput, job: StageJob) -> dict[str, str]:
    return {
        f"{LABEL}/plan": label_value(inp.plan_id),
        f"{LABEL}/workload": label_value(job.workload),
        f"{LABEL}/stage": label_value(job.stage),
        f"{LABEL}/site": label_value(job.planned.site.id),
    }


def kueue_labels(job: StageJob, k: KubernetesSite) -> dict[str, str]:
    out = {QUEUE_LABEL: k.queue}
    priority = (k.serve_priority_class or k.priority_class) if job.serving else k.priority_class
    if priority:
        out[PRIORITY_LABEL] = priority
    if not job.serving:
        # Kueue reads the label with strconv.ParseInt(v, 10, 32) and drops a value out of
        # int32 range silently (jobframework MaximumExecutionTimeSecondsForObject): a stage
        # planned for 55 years or more is capped at the largest it reads, not uncapped
        seconds = math.ceil(job.hours * 3600 * TIME_MARGIN)
        out[MAX_EXEC_LABEL] = str(min(INT32_MAX, max(60, seconds)))
    return out


#: the most of an object's annotations ``straits.dev/after`` may take: the API server refuses
#: an object whose annotations (keys and values) exceed 256 KiB in all
#: (apimachinery ValidateAnnotationsSize, TotalAnnotationSizeLimitB), and 2,000 predecessors
#: of 128-character ids would
MAX_AFTER = 32 * 1024


def after_annotation(after: tuple[str, ...]) -> str:
    """The predecessors, comma-separated; past :data:`MAX_AFTER` characters the ones that fit
    and ``...(+N more)``."""
    text = ",".join(after)
    if len(text) <= MAX_AFTER:
        return text
    kept: list[str] = []
    size = 0
    for a in after:
        if size + len(a) + 1 > MAX_AFTER - 32:
            break
        kept.append(a)
        size += len(a) + 1
    return ",".join([*kept, f"...(+{len(after) - len(kept)} more)"])


def stage_annotations(inp: ExportInput, job: StageJob) -> dict[str, str]:
    return {
        f"{LABEL}/plan-id": inp.plan_id,
        f"{LABEL}/after": after_annotation(job.after),
        f"{LABEL}/planned-start": job.placement.raw["start"],
        f"{LABEL}/planned-end": job.placement.raw["end"],
        f"{LABEL}/option": job.planned.label,
        f"{LABEL}/command-source": job.command_source,
        f"{LABEL}/risk": inp.scenario.risk,  # p90: planned times at the estimate's high end
    }


def k8s_literal(text: str) -> str:
    """``text`` as an env value the kubelet passes on as written: it expands ``$(VAR)`` of the
    variables defined before it and reduces ``$$`` to ``$`` (EnvVar.value in the core/v1 API),
    so ``echo $$`` ran as ``echo $``. A ``$`` before ``$`` or ``(`` is doubled; the kubelet
    makes each ``$$`` one ``$`` again and leaves every other ``$`` alone."""
    return re.sub(r"\$(?=[$(])", "$$", text)


def _env(pairs: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": k8s_literal(v)} for k, v in pairs.items()]


def pod_spec(
    inp: ExportInput,
    job: StageJob,
    *,
    chips: int,
    env: list[dict[str, Any]],
    preamble: str,
    site_labels: bool,
    serve: bool = False,
    checkpoint_claim: str | None = None,
) -> dict[str, Any]:
    """One container running the stage's command (from STRAITS_COMMAND, after ``preamble``),
    the chips it needs, /dev/shm in memory (NCCL and data loaders need more than the 64 MiB
    default), and required node affinity to the planned site and GPU type; a GKE TPU slice's
    accelerator and topology as the node selector (where the labels name neither)."""
    res = resource_name(job.planned)
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    if checkpoint_claim:
        mounts.append({"name": "checkpoints", "mountPath": "/checkpoints"})
        volumes.append(
            {"name": "checkpoints", "persistentVolumeClaim": {"claimName": checkpoint_claim}}
        )
    container: dict[str, Any] = {
        "name": "stage",
        "image": inp.image,
        "command": ["/bin/bash", "-c", preamble + 'exec bash -c "$STRAITS_COMMAND"'],
        "env": [
            *_env(job.env(inp.plan_id)),
            *env,
        ],
        "resources": {"requests": {res: str(chips)}, "limits": {res: str(chips)}},
        "volumeMounts": mounts,
    }
    if serve:
        container["ports"] = [{"name": "http", "containerPort": SERVE_PORT}]
        probe = {"httpGet": {"path": READINESS_PATH, "port": "http"}, "periodSeconds": 10}
        container["startupProbe"] = {**probe, "failureThreshold": STARTUP_SECONDS // 10}
        container["readinessProbe"] = {**probe, "failureThreshold": 3}
    else:
        container["ports"] = [{"name": "rendezvous", "containerPort": MASTER_PORT}]
    spec: dict[str, Any] = {"containers": [container], "volumes": volumes}
    labels = node_labels(job.planned, site_labels=site_labels)
    selector = {k: v for k, v in tpu_selector(job).items() if k not in labels}
    if selector:
        spec["nodeSelector"] = selector
    match = [
        {"key": key, "operator": "In", "values": [value]} for key, value in sorted(labels.items())
    ]
    if match:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": match}]
                }
            }
        }
    return spec


def _topology(job: StageJob) -> dict[str, str]:
    t = job.planned.pool.targets
    topo = t.kubernetes_topology if t is not None else None
    return {TOPOLOGY_ANNOTATION[topo.mode]: topo.level} if topo is not None else {}


def jobset(
    inp: ExportInput, job: StageJob, k: KubernetesSite, *, site_labels: bool = True
) -> dict[str, Any]:
    """The JobSet of a training stage: one Indexed Job of ``nodes`` pods, one per node (per
    TPU VM host of a GKE TPU slice)."""
    nodes, per_node = pod_layout(job)
    _refuse_too_many_nodes(inp, job, nodes)
    name = object_name(job)
    labels = stage_labels(inp, job)
    env = _env(
        {
            "MASTER_ADDR": f"{name}-{REPLICATED_JOB}-0-0.{name}",
            "MASTER_PORT": str(MASTER_PORT),
            "NNODES": str(nodes),
            "NPROC_PER_NODE": str(per_node),
        }
    )
    env.append(
        {
            "name": "NODE_RANK",
            "valueFrom": {
                "fieldRef": {
                    "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                }
            },
        }
    )
    claim = k.checkpoint_claim
    if claim:
        where = f"/checkpoints/{label_value(inp.plan_id)}/{job.workload}/{job.stage}"
        env += _env({"STRAITS_CHECKPOINT_DIR": where})
    pod = pod_spec(
        inp,
        job,
        chips=per_node,
        env=env,
        preamble="",
        site_labels=site_labels,
        checkpoint_claim=claim,
    )
    pod["restartPolicy"] = "Never"
    pod_meta: dict[str, Any] = {"labels": labels}
    if _topology(job):
        pod_meta["annotations"] = _topology(job)
    return {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {
            "name": name,
            "namespace": k.namespace,
            "labels": {**labels, **kueue_labels(job, k)},
            "annotations": stage_annotations(inp, job),
        },
        "spec": {
            "suspend": True,
            "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
            "successPolicy": {"operator": "All"},
            "failurePolicy": {
                "maxRestarts": MAX_RESTARTS,
                "restartStrategy": "Recreate",
                "rules": [
                    {
                        "name": "DisruptionDoesNotCount",
                        "action": "RestartJobSetAndIgnoreMaxRestarts",
                        "onJobFailureReasons": ["PodFailurePolicy"],
                    }
                ],
            },
            "replicatedJobs": [
                {
                    "name": REPLICATED_JOB,
                    "replicas": 1,
                    "template": {
                        "spec": {
                            "completionMode": "Indexed",
                            "completions": nodes,
                            "parallelism": nodes,
                            "backoffLimit": 0,
                            "podFailurePolicy": {
                                "rules": [
                                    {
                                        "action": "FailJob",
                                        "onPodConditions": [
                                            {"type": "DisruptionTarget", "status": "True"}
                                        ],
                                    }
                                ]
                            },
                            "template": {"metadata": pod_meta, "spec": pod},
                        }
                    },
                }
            ],
        },
    }


#: the API server refuses an Indexed Job of more parallelism (batch validation,
#: maxParallelismForIndexedJob): the JobSet is taken, the Job it makes never is
MAX_INDEXED_PODS = 100_000


def _refuse_too_many_nodes(inp: ExportInput, job: StageJob, nodes: int) -> None:
    """Refuse a training stage of more nodes than one Indexed Job may have pods: the JobSet
    was written and taken by the API server, but the Job its controller makes is refused, and
    the stage never starts."""
    if nodes <= MAX_INDEXED_PODS:
        return
    index = next(
        i
        for i, a in enumerate(inp.plan.get("assignments", ()))
        if (a["workload"], a["stage"]) == (job.workload, job.stage)
    )
    raise InputError(
        f"{job.workload}/{job.stage}: {job.chips:,} chips are {nodes:,} nodes of {NODE}, one "
        f"pod each, and Kubernetes refuses an Indexed Job of more than {MAX_INDEXED_PODS:,} "
        "pods; nothing was written",
        path=f"assignments[{index}].chips",
        expected=f"at most {MAX_INDEXED_PODS * NODE:,} chips for a training stage exported to "
        "Kubernetes or Karmada (export it to another target)",
    )


def serving(
    inp: ExportInput, job: StageJob, k: KubernetesSite, *, site_labels: bool = True
) -> list[dict[str, Any]]:
    """A serving stage: Deployment + Service when a replica fits a node, LeaderWorkerSet +
    Service (leaders only) when it spans nodes."""
    name = object_name(job)
    labels = stage_labels(inp, job)
    replicas = job.replicas()
    meta = {
        "name": name,
        "namespace": k.namespace,
        "labels": {**labels, **kueue_labels(job, k)},
        "annotations": stage_annotations(inp, job),
    }
    common = _env(
        {"STRAITS_REPLICA_CHIPS": str(job.replica_chips), "STRAITS_SERVE_PORT": str(SERVE_PORT)}
    )
    # Kueue topology-aware scheduling reads the annotation from each pod set's template (a
    # LeaderWorkerSet group's leader and workers: the group packed into one domain)
    pod_meta: dict[str, Any] = {"labels": labels}
    if _topology(job):
        pod_meta["annotations"] = _topology(job)
    pods, per_pod = pod_layout(job)
    if pods == 1:
        env = [
            *common,
            *_env(
                {
                    "MASTER_ADDR": "localhost",
                    "MASTER_PORT": str(MASTER_PORT),
                    "NNODES": "1",
                    "NODE_RANK": "0",
                    "NPROC_PER_NODE": str(per_pod),
                }
            ),
        ]
        pod = pod_spec(
            inp,
            job,
            chips=per_pod,
            env=env,
            preamble="",
            site_labels=site_labels,
            serve=True,
        )
        workload: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {"metadata": pod_meta, "spec": pod},
            },
        }
        selector = labels
    else:
        env = [*common, *_env({"MASTER_PORT": str(MASTER_PORT), "NPROC_PER_NODE": str(per_pod)})]
        # LWS sets LWS_LEADER_ADDRESS, LWS_GROUP_SIZE and LWS_WORKER_INDEX in every pod
        preamble = (
            'export MASTER_ADDR="$LWS_LEADER_ADDRESS" NNODES="$LWS_GROUP_SIZE" '
            'NODE_RANK="$LWS_WORKER_INDEX"; '
        )
        leader = pod_spec(
            inp, job, chips=per_pod, env=env, preamble=preamble, site_labels=site_labels, serve=True
        )
        worker = pod_spec(
            inp, job, chips=per_pod, env=env, preamble=preamble, site_labels=site_labels
        )
        workload = {
            "apiVersion": "leaderworkerset.x-k8s.io/v1",
            "kind": "LeaderWorkerSet",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                "startupPolicy": "LeaderCreated",
                "leaderWorkerTemplate": {
                    "size": pods,
                    "restartPolicy": "RecreateGroupOnPodRestart",
                    "leaderTemplate": {"metadata": pod_meta, "spec": leader},
                    "workerTemplate": {"metadata": pod_meta, "spec": worker},
                },
            },
        }
        selector = {LWS_NAME_LABEL: name, LWS_INDEX_LABEL: "0"}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service_name(name, pods), "namespace": k.namespace, "labels": labels},
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": SERVE_PORT, "targetPort": "http"}],
        },
    }
    return [workload, service]


def service_name(name: str, pods: int) -> str:
    """The serving Service's name: the Deployment's own; a LeaderWorkerSet's ``<name>--leaders``.
    The LeaderWorkerSet controller makes a headless Service named as the set, the subdomain of
    its pods' hostnames (``LWS_LEADER_ADDRESS``), only where no Service of that name exists: a
    Service of ours named so left the workers no route to their leader. Stage names never hold
    ``--`` (:func:`~straits.export.names.dns_name`), so no stage's object can take this one."""
    return name if pods == 1 else f"{name}--leaders"


def stage_objects(
    inp: ExportInput, job: StageJob, k: KubernetesSite, *, site_labels: bool = True
) -> list[dict[str, Any]]:
    if job.serving:
        return serving(inp, job, k, site_labels=site_labels)
    return [jobset(inp, job, k, site_labels=site_labels)]


def local_queue(k: KubernetesSite) -> dict[str, Any] | None:
    if k.cluster_queue is None:
        return None
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "LocalQueue",
        "metadata": {"name": k.queue, "namespace": k.namespace},
        "spec": {"clusterQueue": k.cluster_queue},
    }
