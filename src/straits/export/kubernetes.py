"""Kubernetes: per stage a JobSet (training) or a Deployment / LeaderWorkerSet with a Service
(serving), queued through Kueue and pinned to the site; ``apply.sh`` applies them in order.

Every object carries the ``kueue.x-k8s.io/queue-name`` label (and the priority class the site
names), so Kueue admits a stage as one gang when the queue's quota allows; JobSets start
suspended for it. Pods require the site's and the GPU type's node labels (a TPU stage: GKE's
TPU resource, node selector and a pod per TPU VM host, :mod:`straits.export.k8s_tpu`); a pool
that declares a Kueue topology gets the podset topology annotation on every pod template
(training and serving). The objects are in :mod:`straits.export.k8s_objects`.

Order. Kubernetes has no dependencies between objects, and a JobSet's ``dependsOn`` works only
inside one JobSet, in one cluster. ``apply.sh`` applies a stage once each predecessor has
completed (a JobSet's ``status.terminalState``; a serving stage counts when it is Available),
polling with ``kubectl``, each branch of a workload (a chain of stages, each after the one
before) in its own background job, so a stage never waits behind another branch's stages (the
branches tell each other through marker files what they applied); a failed predecessor stops
the stages after it and the script exits non-zero. Nor is a stage applied before its planned
start (computed here, in seconds since 1970 UTC): the script waits for it as Slurm's
``--begin`` does, so a stage the plan holds for bought chips, a capacity window or a rule's date
does not start when its predecessors end; ``STRAITS_START_NOW`` lets the operator start one (or
every one) without waiting. Ctrl-C stops the waiting workloads too.
"""

from __future__ import annotations

import shlex
from typing import Any

from straits.errors import InputError
from straits.export.base import (
    COMPLETED_HELPERS,
    START_HELPERS,
    Choice,
    ExportInput,
    ExportResult,
    StageJob,
    dump_yaml,
    gate,
    start_args,
)
from straits.export.k8s_objects import (
    k8s_site,
    local_queue,
    node_labels,
    object_name,
    resource_name,
    stage_labels,
    stage_objects,
)
from straits.export.k8s_tpu import pod_layout, tpu_left_out, tpu_selector
from straits.export.script_jobs import JOIN, fork, stop_helpers
from straits.model.targets import KubernetesSite
from straits.plan.options import NODE

# names kept importable for callers of the old module
__all__ = ["KarmadaExporter", "KubernetesExporter", "k8s_site", "stage_objects"]


def _dump(docs: list[dict[str, Any]]) -> str:
    return dump_yaml(*docs)


def _kind(job: StageJob) -> str:
    if not job.serving:
        return "jobset"
    return "deployment" if pod_layout(job)[0] == 1 else "leaderworkerset"


class KubernetesExporter:
    name = "kubernetes"
    description = (
        "JobSet per training stage, Deployment or LeaderWorkerSet + Service per "
        "serving stage, Kueue labels, and apply.sh applying them in order"
    )

    def render(self, inp: ExportInput) -> ExportResult:
        res = ExportResult(self.name)
        chains: list[list[str]] = []
        queues: dict[str, str] = {}
        #: a stage applied: its object, its index (apply.sh's marker) and its chain's index
        placed: dict[tuple[str, str], tuple[str, str, str, str, int, int]] = {}
        tails: dict[tuple[str, str], int] = {}  # a stage that ends its chain: the chain
        owners: dict[str, tuple[str, str | None]] = {}
        for job in inp.jobs:
            k = k8s_site(job.planned)
            if k is None:
                res.notes.append(
                    f"{job.workload}/{job.stage}: site {job.planned.site.id} has no "
                    "sites[].targets.kubernetes mapping; nothing written"
                )
                continue
            if (note := tpu_left_out(job)) is not None:
                res.notes.append(note)
                continue
            path = f"{k.cluster}/{job.name}.yaml"
            res.files[f"kubernetes/{path}"] = _dump(stage_objects(inp, job, k))
            if (note := job.count_note(NODE)) is not None:
                # pods of whole nodes: more chips than the plan placed; whole replicas: fewer
                res.notes.append(note)
            ctx = k.context or k.cluster
            lq = local_queue(k)
            if lq is not None:
                # dots: no stage file (its name has none) and no other (namespace, queue) shares it
                qpath = f"{k.cluster}/kueue.{k.namespace}.{k.queue}.yaml"
                _one_local_queue(inp, qpath, job, k, owners)
                res.files[f"kubernetes/{qpath}"] = _dump([lq])
                queues[qpath] = ctx
            # a branch of the plan's DAG: the chain of the first predecessor that ends one
            # (a stage after it waits for it anyway), else a chain of its own
            cont = next(
                (tails.pop(key) for a in job.after if (key := (job.workload, a)) in tails), None
            )
            chain = len(chains) if cont is None else cont
            if cont is None:
                chains.append([])
            lines = chains[chain]
            for a in job.after:
                if (job.workload, a) in placed:
                    pctx, pns, pkind, pname, pindex, pchain = placed[(job.workload, a)]
                    lines.append(
                        f"wait_done {shlex.quote(pctx)} {pns} {pkind} {pname} "
                        f"{shlex.quote(job.workload + '/' + a)} {pindex} {pchain}"
                    )
                else:  # it runs elsewhere: the operator says when it has completed
                    lines.append(gate(job, a))
                    res.notes.append(
                        f"{job.workload}/{job.stage}: predecessor {a} is not exported to "
                        "Kubernetes; apply.sh applies it once STRAITS_COMPLETED lists "
                        f"{job.workload}/{a}"
                    )
            index = len(placed)
            lines.append(f"apply_stage {shlex.quote(ctx)} {path} {start_args(job)} {index}")
            placed[(job.workload, job.stage)] = (
                ctx,
                k.namespace,
                _kind(job),
                object_name(job),
                index,
                chain,
            )
            tails[(job.workload, job.stage)] = chain
            if job.command_source == "none":
                res.notes.append(
                    f"{job.workload}/{job.stage}: no command given; its pods fail saying so (--run)"
                )
            res.jobs += 1
        if chains:
            res.files["kubernetes/apply.sh"] = _apply_script(inp.plan_id, queues, chains)
        return res


def _one_local_queue(
    inp: ExportInput,
    qpath: str,
    job: StageJob,
    k: KubernetesSite,
    owners: dict[str, tuple[str, str | None]],
) -> None:
    """Refuse two sites that name one LocalQueue (cluster, namespace, queue) with different
    ClusterQueues: the queue is one object, and the site exported last silently decided where
    the other's stages were queued."""
    site = job.planned.site.id
    first = owners.setdefault(qpath, (site, k.cluster_queue))
    if first[1] == k.cluster_queue:
        return
    index = next(i for i, s in enumerate(inp.scenario.sites) if s.id == site)
    raise InputError(
        f"sites {first[0]} and {site} both name the LocalQueue {k.namespace}/{k.queue} of "
        f"Kubernetes cluster {k.cluster}, with ClusterQueues {first[1]} and {k.cluster_queue}",
        path=f"sites[{index}].targets.kubernetes.cluster_queue",
        expected="one ClusterQueue per LocalQueue: the same cluster_queue, or another "
        "queue or namespace for one of the sites",
    )


def _apply_script(plan_id: str, queues: dict[str, str], chains: list[list[str]]) -> str:
    out = [
        "#!/usr/bin/env bash",
        f"# Apply the stages of Straits plan {plan_id} in order: a stage is applied once each",
        "# of its predecessors has completed (a JobSet's terminalState), or, for a serving",
        "# stage, is Available. Each branch of a workload (a chain of stages, each after the one",
        "# before) runs in its own background job, so a branch never waits for another's",
        "# stages; a failed predecessor stops the stages after it and the script exits non-zero,",
        "# as does a stage whose predecessor runs elsewhere until STRAITS_COMPLETED lists it",
        "# (below). Nor is a stage applied before its planned start: the script waits for it",
        "# (STRAITS_START_NOW, below).",
        "# KUBECTL overrides the kubectl binary; STRAITS_POLL_SECONDS the polling interval.",
        "set -uo pipefail",
        'cd "$(dirname "$0")"',
        "KUBECTL=${KUBECTL:-kubectl}",
        "POLL=${STRAITS_POLL_SECONDS:-30}",
        "# what the branches tell each other: s<INDEX> once stage INDEX is applied (or listed",
        "# completed), c<CHAIN> once branch CHAIN stopped (its stages not applied never will be)",
        'STATE=$(mktemp -d "${TMPDIR:-/tmp}/straits-apply.XXXXXX") || exit 1',
        "trap 'rm -rf \"$STATE\"' EXIT",
        *COMPLETED_HELPERS,
        *START_HELPERS,
        "apply_stage() {  # CONTEXT FILE STAGE BEGIN WHEN INDEX: once BEGIN (wait_start) has come",
        '  if listed "$3"; then echo "skip $3: completed (STRAITS_COMPLETED)"; : > "$STATE/s$6";'
        " return 0; fi",
        '  wait_start "$3" "$4" "$5" || return 1',
        '  echo "apply $3 ($2, context $1)"',
        '  "$KUBECTL" --context "$1" apply -f "$2" || { echo "apply of $3 failed" >&2; return 1; }',
        '  : > "$STATE/s$6"',
        "}",
        "stopped_jobset() {  # CONTEXT NAMESPACE NAME: Gone or Deactivated where it will never end",
        "  local uid out",
        '  uid=$("$KUBECTL" --context "$1" -n "$2" get jobset "$3" --ignore-not-found '
        "-o 'jsonpath={.metadata.uid}') || return 0",
        '  [ -n "$uid" ] || { echo Gone; return 0; }',
        "  # Kueue deactivates the Workload of a JobSet past its max-exec-time-seconds (or its",
        "  # requeue limit) and suspends the JobSet, which then never ends; a Workload stopped",
        "  # by hand (kueuectl stop) may be resumed: waited for. Matched by the JobSet's uid",
        '  out=$("$KUBECTL" --context "$1" -n "$2" get workloads.kueue.x-k8s.io -o '
        '"jsonpath={range .items[?(@.metadata.ownerReferences[0].uid==\\"$uid\\")]}'
        "{.spec.active} {.status.conditions[*].reason} {.status.conditions[*].message}"
        '{\\"\\n\\"}{end}" 2>/dev/null) || return 0',
        '  case "$out" in',
        "    false*MaximumExecutionTime*|false*'maximum execution time'*|false*RequeuingLimit*|"
        "false*'requeuing limit'*) echo Deactivated ;;",
        "  esac",
        "}",
        "wait_done() {  # CONTEXT NAMESPACE KIND NAME STAGE INDEX CHAIN: 0 once done, 1 if failed",
        "  local state",
        '  if listed "$5"; then echo "$5: completed (STRAITS_COMPLETED)"; return 0; fi',
        '  echo "wait for $5 ($3/$4, context $1)"',
        '  while [ ! -e "$STATE/s$6" ]; do  # its branch has yet to apply it',
        '    if [ -e "$STATE/c$7" ]; then',
        '      echo "$5 was not applied: the stages after it are not applied" >&2; return 1',
        "    fi",
        '    sleep "$POLL"',
        "  done",
        "  while :; do",
        '    case "$3" in',
        '      jobset) state=$("$KUBECTL" --context "$1" -n "$2" get jobset "$4" '
        "-o 'jsonpath={.status.terminalState}') || state=\"\"",
        '         [ -n "$state" ] || state=$(stopped_jobset "$1" "$2" "$4") ;;',
        '      *) state=$("$KUBECTL" --context "$1" -n "$2" get "$3" "$4" '
        '-o \'jsonpath={.status.conditions[?(@.type=="Available")].status}\') || state=""',
        '         [ "$state" = True ] && state=Completed ;;',
        "    esac",
        '    case "$state" in',
        "      Completed|Complete) return 0 ;;",
        '      Failed) echo "$5 failed: the stages after it are not applied" >&2; return 1 ;;',
        '      Gone) echo "$5 is gone (its JobSet was deleted): the stages after it are not '
        'applied" >&2; return 1 ;;',
        '      Deactivated) echo "$5 was stopped by Kueue (its Workload deactivated: past its '
        'max-exec-time-seconds, or its requeue limit): the stages after it are not applied" >&2;'
        " return 1 ;;",
        "    esac",
        '    sleep "$POLL"',
        "  done",
        "}",
        'stopped() { : > "$STATE/c$1"; exit 1; }  # CHAIN: the branch stops here',
    ]
    out += stop_helpers("apply.sh", "applied")
    if queues:  # before every stage, in a job too: stop() stops a kubectl apply of them
        applies = [
            f'"$KUBECTL" --context {shlex.quote(ctx)} apply -f {path} || exit 1'
            for path, ctx in sorted(queues.items())
        ]
        out += [*fork([("the Kueue LocalQueues", applies)]), 'wait "$!" || exit 1', "pids=()"]
    branches = [
        (f"branch {chain}", [f"{line} || stopped {chain}" for line in lines])
        for chain, lines in enumerate(chains)
    ]
    out += [*fork(branches), *JOIN]
    return "\n".join(out)


class KarmadaExporter:
    """Karmada: the stage's objects as resource templates plus a PropagationPolicy whose
    cluster affinities list the planned cluster first and then the clusters of the lawful
    alternatives with the same chip (Karmada tries the groups in order and fails over between
    them); one cluster at a time."""

    name = "karmada"
    description = "Karmada PropagationPolicy per stage (cluster affinity = lawful clusters)"

    def policy(
        self,
        inp: ExportInput,
        job: StageJob,
        objects: list[dict[str, Any]],
        notes: list[str] | None = None,
    ) -> dict[str, Any]:
        k = k8s_site(job.planned)
        assert k is not None
        same_chip = [
            c
            for c in job.alternatives
            if c.pool.chip == job.planned.pool.chip and k8s_site(c) is not None
        ]
        # the templates are the planned site's: a cluster that names its namespace, queue,
        # GPU labels... otherwise would take the stage and never run it (no such LocalQueue,
        # no node with those labels), so Karmada would fail over into it for nothing
        runs = [c for c in same_chip if _template(job, c) == _template(job, job.planned)]
        fallback = sorted({k8s_site(c).cluster for c in runs} - {k.cluster})  # type: ignore[union-attr]
        others = sorted({k8s_site(c).cluster for c in same_chip} - set(fallback) - {k.cluster})  # type: ignore[union-attr]
        if others and notes is not None:
            notes.append(
                f"{job.workload}/{job.stage}: lawful cluster(s) {', '.join(others)} left out "
                "of the policy: their namespace, queue, priority class, checkpoint claim, GPU "
                "resource, labels or topology differ from the planned site's, which the "
                "templates carry"
            )
        affinities: list[dict[str, Any]] = [
            {"affinityName": "planned", "clusterNames": [k.cluster]}
        ]
        if fallback:
            affinities.append({"affinityName": "lawful-alternatives", "clusterNames": fallback})
        return {
            "apiVersion": "policy.karmada.io/v1alpha1",
            "kind": "PropagationPolicy",
            "metadata": {
                "name": object_name(job),
                "namespace": k.namespace,
                "labels": stage_labels(inp, job),
            },
            "spec": {
                "resourceSelectors": [
                    {
                        "apiVersion": o["apiVersion"],
                        "kind": o["kind"],
                        "name": o["metadata"]["name"],
                    }
                    for o in objects
                ],
                "placement": {
                    "clusterAffinities": affinities,
                    "spreadConstraints": [
                        {"spreadByField": "cluster", "maxGroups": 1, "minGroups": 1}
                    ],
                },
            },
        }

    def render(self, inp: ExportInput) -> ExportResult:
        res = ExportResult(self.name)
        for job in inp.jobs:
            k = k8s_site(job.planned)
            if k is None:
                res.notes.append(
                    f"{job.workload}/{job.stage}: site {job.planned.site.id} has no "
                    "sites[].targets.kubernetes mapping; no policy written"
                )
                continue
            if (note := tpu_left_out(job)) is not None:
                res.notes.append(note)
                continue
            # the templates carry only the GPU type's labels: any lawful cluster can run them
            objects = stage_objects(inp, job, k, site_labels=False)
            if (note := job.count_note(NODE)) is not None:
                res.notes.append(note)
            res.files[f"karmada/{job.name}.yaml"] = _dump(
                [*objects, self.policy(inp, job, objects, res.notes)]
            )
            if job.after:  # Karmada starts it as the policy is applied: say when to apply it
                res.notes.append(
                    f"{job.workload}/{job.stage}: after {', '.join(job.after)}; Karmada orders "
                    f"nothing: apply karmada/{job.name}.yaml once that has completed and not "
                    f"before its planned start, {job.begin_utc} (kubernetes/apply.sh does both)"
                )
            res.jobs += 1
        return res


def _template(job: StageJob, c: Choice) -> tuple[object, ...]:
    """What of a cluster's mapping the stage's Karmada templates carry (the planned one's)."""
    k = k8s_site(c)
    assert k is not None
    t = c.pool.targets
    priority = (k.serve_priority_class or k.priority_class) if job.serving else k.priority_class
    return (
        k.namespace,
        k.queue,
        priority,
        None if job.serving else k.checkpoint_claim,
        resource_name(c),
        tuple(sorted(node_labels(c, site_labels=False).items())),
        tuple(sorted(tpu_selector(job, c).items())),
        t.kubernetes_topology if t is not None else None,
    )
