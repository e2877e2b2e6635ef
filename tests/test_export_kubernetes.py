"""Kubernetes and Karmada exports of the shipped plan: JobSet, LeaderWorkerSet and Kueue objects
against their CRDs' own OpenAPI schemas (tests/schemas/crds, each naming its source), core
objects against the Kubernetes OpenAPI schema in strict mode (kubernetes-validate), `apply.sh`
against a stand-in kubectl, Karmada policies against a structural model of its API."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from export_support import K8S_VERSION, _ctx, _docs, _lawful, _objects, demo, inp
from schemas import crds
from schemas.karmada import PropagationPolicy
from straits.export import export_input, exporter, write_bundle
from straits.export.base import ExportInput
from straits.export.k8s_objects import object_name, serving
from straits.export.names import fit_name
from straits.model.scenario import Scenario
from straits.rules import RuleSet

__all__ = ["demo", "inp"]  # fixtures


# --- Kubernetes and Karmada ---------------------------------------------------------------------
def test_kubernetes_objects_pass_their_schemas(inp: ExportInput) -> None:
    """CRD objects against their CRDs' own schemas, core ones against Kubernetes' (strict)."""
    kv = pytest.importorskip("kubernetes_validate")
    docs = _docs(exporter("kubernetes").render(inp).files)
    kinds = {d["kind"] for d in docs}
    assert {"JobSet", "Deployment", "Service"} <= kinds, kinds
    for doc in docs:
        if doc["kind"] in ("JobSet", "LeaderWorkerSet", "LocalQueue"):
            crds.validate(doc)
        else:
            kv.validate(doc, K8S_VERSION, strict=True)
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])


def test_a_training_jobset_can_rendezvous(inp: ExportInput) -> None:
    files = exporter("kubernetes").render(inp).files
    for doc in _objects(files, "JobSet"):
        job = inp.job(
            doc["metadata"]["labels"]["straits.dev/workload"],
            doc["metadata"]["labels"]["straits.dev/stage"],
        )
        name = doc["metadata"]["name"]
        spec = doc["spec"]
        assert spec["suspend"] is True and spec["network"]["enableDNSHostnames"] is True
        rj = spec["replicatedJobs"][0]
        jspec = rj["template"]["spec"]
        nodes = jspec["completions"]
        assert jspec["parallelism"] == nodes and jspec["completionMode"] == "Indexed"
        pod = jspec["template"]["spec"]
        c = pod["containers"][0]
        per_node = int(next(iter(c["resources"]["limits"].values())))
        assert per_node * nodes >= job.chips
        env = {e["name"]: e for e in c["env"]}
        # the first pod's stable hostname under the JobSet's headless Service
        first = f"{name}-{rj['name']}-0-0"
        assert env["MASTER_ADDR"]["value"] == f"{first}.{name}"
        assert len(f"{name}-{rj['name']}-0-{nodes - 1}") <= 63
        assert env["NNODES"]["value"] == str(nodes)
        assert env["NPROC_PER_NODE"]["value"] == str(per_node)
        assert "job-completion-index" in env["NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert env["STRAITS_COMMAND"]["value"] == job.command
        shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
        assert shm["emptyDir"]["medium"] == "Memory"
        assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
        # a crash counts against maxRestarts; a disruption (preemption, drain) does not
        assert jspec["backoffLimit"] == 0 and spec["failurePolicy"]["maxRestarts"] > 0
        rule = spec["failurePolicy"]["rules"][0]
        assert rule["action"] == "RestartJobSetAndIgnoreMaxRestarts"
        assert rule["onJobFailureReasons"] == ["PodFailurePolicy"]
        pfp = jspec["podFailurePolicy"]["rules"][0]
        assert pfp["action"] == "FailJob"
        assert pfp["onPodConditions"][0]["type"] == "DisruptionTarget"
        labels = doc["metadata"]["labels"]
        assert labels["kueue.x-k8s.io/queue-name"] == "training"
        assert int(labels["kueue.x-k8s.io/max-exec-time-seconds"]) >= job.hours * 3600
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        assert "nvidia.com/gpu.product" in {e["key"] for e in terms[0]["matchExpressions"]}


def test_serving_is_a_deployment_behind_a_service(inp: ExportInput) -> None:
    files = exporter("kubernetes").render(inp).files
    deployments = _objects(files, "Deployment")
    services = {d["metadata"]["name"]: d for d in _objects(files, "Service")}
    assert deployments and not _objects(files, "Job")
    for d in deployments:
        job = inp.job(
            d["metadata"]["labels"]["straits.dev/workload"],
            d["metadata"]["labels"]["straits.dev/stage"],
        )
        assert job.serving and d["spec"]["replicas"] == job.replicas()
        assert "activeDeadlineSeconds" not in json.dumps(d)
        pod = d["spec"]["template"]
        svc = services[d["metadata"]["name"]]
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        c = pod["spec"]["containers"][0]
        assert c["readinessProbe"]["httpGet"]["port"] == svc["spec"]["ports"][0]["targetPort"]
        assert int(next(iter(c["resources"]["limits"].values()))) == job.replica_chips


def test_a_replica_bigger_than_a_node_is_a_leaderworkerset(inp: ExportInput) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    job = next(j for j in inp.jobs if j.serving)
    big = dataclasses.replace(job, replica_chips=16)
    assert job.planned.site.targets is not None
    k = job.planned.site.targets.kubernetes
    assert k is not None
    lws, svc = serving(inp, big, k)
    crds.validate(lws)
    kv.validate(svc, K8S_VERSION, strict=True)
    tmpl = lws["spec"]["leaderWorkerTemplate"]
    assert tmpl["size"] == 2 and lws["spec"]["replicas"] == big.replicas()
    assert tmpl["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert "LWS_LEADER_ADDRESS" in tmpl["workerTemplate"]["spec"]["containers"][0]["command"][2]
    assert svc["spec"]["selector"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"
    # not the set's own name: the controller makes its headless Service (the pods' subdomain,
    # LWS_LEADER_ADDRESS) only where no Service of that name exists (atk: workers never met)
    assert svc["metadata"]["name"] != lws["metadata"]["name"]
    assert "--" not in lws["metadata"]["name"]
    assert len(svc["metadata"]["name"]) <= 63


def test_the_crd_schemas_can_fail(inp: ExportInput) -> None:
    """The validator rejects what the API server would: a wrong enum, an unknown field, an
    unknown field inside the embedded pod spec, a wrong apiVersion."""
    kv = pytest.importorskip("kubernetes_validate")
    good = _objects(exporter("kubernetes").render(inp).files, "JobSet")[0]
    crds.validate(good)
    breaks: list[Callable[[dict[str, Any]], object]] = [
        lambda d: d["spec"]["failurePolicy"].__setitem__("restartStrategy", "Sometimes"),
        lambda d: d["spec"].__setitem__("replicatedjobs", d["spec"].pop("replicatedJobs")),
        lambda d: d["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"][
            "containers"
        ][0].__setitem__("envv", []),
        lambda d: d.__setitem__("apiVersion", "jobset.x-k8s.io/v1"),
    ]
    for i, brk in enumerate(breaks):
        doc = copy.deepcopy(good)
        brk(doc)
        with pytest.raises((crds.SchemaError, kv.ValidationError)):
            crds.validate(doc)
            pytest.fail(f"break {i} passed")


def test_kueue_queue_priority_and_topology_where_declared(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    sc, plan = demo
    doc = sc.model_dump(mode="json")
    level = "cloud.provider.com/topology-block"
    for s in doc["sites"]:
        if s["id"] == "my-johor":
            s["targets"]["kubernetes"].update(
                cluster_queue="gpu-cq",
                priority_class="batch",
                serve_priority_class="online",
                checkpoint_claim="ckpt",
            )
            s["pools"][0]["targets"]["kubernetes_topology"] = {"level": level, "mode": "required"}
    inp = export_input(Scenario.model_validate(doc), plan, rules, plan_id="p", run="x")
    files = exporter("kubernetes").render(inp).files
    topo = {"kueue.x-k8s.io/podset-required-topology": level}
    queues = _objects(files, "LocalQueue")
    assert queues and queues[0]["spec"]["clusterQueue"] == "gpu-cq"
    for q in queues:
        crds.validate(q)
    apply = files["kubernetes/apply.sh"]
    assert apply.index("kueue.") < apply.index("apply_stage my-johor")
    for d in _docs(files):
        if (
            d["kind"] in ("JobSet", "Deployment")
            and d["metadata"]["labels"]["straits.dev/site"] == "my-johor"
        ):
            want = "online" if d["kind"] == "Deployment" else "batch"
            assert d["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == want
        if (
            d["kind"] == "Deployment" and d["metadata"]["labels"]["straits.dev/site"] == "my-johor"
        ):  # serving is packed too
            assert d["spec"]["template"]["metadata"]["annotations"] == topo
        if d.get("kind") == "JobSet" and d["metadata"]["labels"]["straits.dev/site"] == "my-johor":
            tmpl = d["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]
            assert tmpl["metadata"]["annotations"] == topo
            pod = tmpl["spec"]
            claim = next(v for v in pod["volumes"] if v["name"] == "checkpoints")
            assert claim["persistentVolumeClaim"] == {"claimName": "ckpt"}
            env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
            assert env["STRAITS_CHECKPOINT_DIR"].startswith("/checkpoints/")
            crds.validate(d)
    # a replica spanning nodes: each LeaderWorkerSet group (leader and workers) in one domain
    job = next(j for j in inp.jobs if j.serving and j.planned.site.id == "my-johor")
    k = job.planned.site.targets.kubernetes if job.planned.site.targets else None
    assert k is not None
    lws, _ = serving(inp, dataclasses.replace(job, replica_chips=16), k)
    crds.validate(lws)
    tmpl = lws["spec"]["leaderWorkerTemplate"]
    assert tmpl["leaderTemplate"]["metadata"]["annotations"] == topo
    assert tmpl["workerTemplate"]["metadata"]["annotations"] == topo


FAKE_KUBECTL = r"""#!/bin/bash
# records calls; a JobSet is Completed once applied (Failed when named in $FAIL); a
# Deployment or LeaderWorkerSet is Available once applied
ctx=$2; shift 2
if [ "$1" = apply ]; then echo "apply $ctx $3" >> "$KLOG"; exit 0; fi
ns=$2 verb=$3 kind=$4 name=$5
echo "get $ctx $kind $name" >> "$KLOG"
grep -q "apply .*/$name.yaml" "$KLOG" || { echo ""; exit 0; }
case " $FAIL " in *" $name "*) echo Failed; exit 0 ;; esac
[ "$kind" = jobset ] && echo Completed || echo True
"""


def _run_apply(
    files: dict[str, str], tmp_path: Path, fail: str = "", fake_text: str = "", **more: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """apply.sh of ``files`` against a stand-in kubectl (``FAKE_KUBECTL`` unless
    ``fake_text``), with ``more`` in its environment; its result and the calls it logged."""
    write_bundle(tmp_path, files, executable=(".sh",))
    fake = tmp_path / "kubectl"
    fake.write_text(fake_text or FAKE_KUBECTL)
    fake.chmod(0o755)
    log = tmp_path / "kubectl.log"
    env = {
        **os.environ,
        "KUBECTL": str(fake),
        "KLOG": str(log),
        "FAIL": fail,
        "STRAITS_POLL_SECONDS": "0",
        **more,
    }
    p = subprocess.run(
        ["bash", str(tmp_path / "kubernetes" / "apply.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return p, log.read_text().splitlines() if log.exists() else []


def test_apply_sh_applies_each_stage_after_its_predecessors(
    inp: ExportInput, tmp_path: Path
) -> None:
    files = exporter("kubernetes").render(inp).files
    p, log = _run_apply(files, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    applied = [ln.split()[2] for ln in log if ln.startswith("apply")]
    assert len(applied) == len(inp.jobs)
    for job in inp.jobs:
        mine = next(
            i
            for i, ln in enumerate(log)
            if ln.startswith("apply") and ln.endswith(f"/{job.name}.yaml")
        )
        assert log[mine].split()[1] == (job.planned.site.targets.kubernetes.context)  # type: ignore[union-attr]
        for a in job.after:
            pred = inp.job(job.workload, a)
            seen = [
                i
                for i, ln in enumerate(log)
                if ln.endswith(f" {object_name(pred)}") and ln.startswith("get")
            ]
            assert seen and seen[-1] < mine, (job.name, a, log)


def test_apply_sh_stops_a_workload_at_a_failed_stage(inp: ExportInput, tmp_path: Path) -> None:
    files = exporter("kubernetes").render(inp).files
    first = next(j for j in inp.jobs if not j.after)
    p, log = _run_apply(files, tmp_path, fail=object_name(first))
    assert p.returncode != 0
    applied = {ln.split()[2] for ln in log if ln.startswith("apply")}
    later = [j for j in inp.jobs if j.workload == first.workload and j.after]
    assert later and not any(f"{j.name}.yaml" in a for j in later for a in applied)
    assert "failed" in p.stderr


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=63),
    st.integers(min_value=5, max_value=20),
)
def test_fitted_names_leave_room_for_pod_suffixes(name: str, suffix: int) -> None:
    fitted = fit_name(name, suffix)
    assert len(fitted) + suffix <= 63
    if len(name) + suffix <= 63:
        assert fitted == name


def test_karmada_policies_restrict_clusters_to_lawful_ones(
    inp: ExportInput, demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    sc, _ = demo
    ctx = _ctx(demo, rules)
    cluster_site = {
        s.targets.kubernetes.cluster: s.id for s in sc.sites if s.targets and s.targets.kubernetes
    }
    for path, text in exporter("karmada").render(inp).files.items():
        *objects, policy_doc = yaml.safe_load_all(text)
        for o in objects:
            if o["kind"] in ("JobSet", "LeaderWorkerSet"):
                crds.validate(o)
            else:
                kv.validate(o, K8S_VERSION, strict=True)
        policy = PropagationPolicy.model_validate(policy_doc)
        job = inp.job(
            policy_doc["metadata"]["labels"]["straits.dev/workload"],
            policy_doc["metadata"]["labels"]["straits.dev/stage"],
        )
        selected = {(s.kind, s.name) for s in policy.spec.resourceSelectors}
        assert selected == {(o["kind"], o["metadata"]["name"]) for o in objects}
        terms = policy.spec.placement.clusterAffinities  # type: ignore[union-attr]
        assert terms and terms[0].clusterNames == [job.planned.site.targets.kubernetes.cluster]  # type: ignore[union-attr]
        for term in terms:
            for cluster in term.clusterNames or ():
                assert _lawful(
                    ctx, job.workload, job.stage, cluster_site[cluster], job.planned.pool.chip
                ), (path, cluster)


def test_karmada_model_rejects_what_karmada_would() -> None:
    bad = {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": "x"},
        "spec": {
            "resourceSelectors": [{"apiVersion": "batch/v1", "kind": "Job"}],
            "placement": {
                "clusterAffinity": {"clusterNames": ["a"]},
                "clusterAffinities": [{"affinityName": "p", "clusterNames": ["a"]}],
            },
        },
    }
    with pytest.raises(ValueError, match="mutually exclusive"):
        PropagationPolicy.model_validate(bad)


#: a JobSet that reaches no terminalState, in $STUCK: with $MODE gone it no longer exists;
#: deactivated: Kueue deactivated its Workload past its max-exec-time-seconds; paused: its
#: Workload was stopped by hand, and the JobSet completes after 5 polls. Others complete.
STUCK_KUBECTL = r"""#!/bin/bash
ctx=$2; shift 2
if [ "$1" = apply ]; then echo "apply $ctx $3" >> "$KLOG"; exit 0; fi
ns=$2 verb=$3 kind=$4 name=$5
echo "get $ctx $kind $name ${6:-}" >> "$KLOG"
if [ "$kind" = workloads.kueue.x-k8s.io ]; then
  case "$*" in *"uid==\"u-$STUCK\""*) ;; *) exit 0 ;; esac
  case "$MODE" in
    deactivated) echo "false DeactivationTarget Evicted MaximumExecutionTimeExceeded" ;;
    paused) echo "false Evicted InactiveWorkload The workload is deactivated" ;;
  esac
  exit 0
fi
if [ "$name" = "$STUCK" ]; then
  if [ "${6:-}" = --ignore-not-found ]; then [ "$MODE" = gone ] || echo "u-$name"; exit 0; fi
  if [ "$MODE" = paused ] && [ "$(grep -c "get $ctx jobset $name -o" "$KLOG")" -gt 5 ]; then
    echo Completed; exit 0
  fi
  echo ""; exit 0
fi
[ "$kind" = jobset ] && echo Completed || echo True
"""


@pytest.mark.parametrize("mode", ["gone", "deactivated", "paused"])
def test_apply_sh_stops_at_a_jobset_that_can_never_end(
    inp: ExportInput, tmp_path: Path, mode: str
) -> None:
    """A JobSet Kueue deactivated (past its max-exec-time-seconds: suspended, no terminalState)
    or one deleted held apply.sh polling for ever (a fresh-eye attack): the stages after it
    are not applied, and the script ends non-zero saying why. A Workload stopped by hand may
    be resumed: waited for (a review)."""
    first = next(j for j in inp.jobs if not j.after and not j.serving)
    p, log = _run_apply(
        exporter("kubernetes").render(inp).files,
        tmp_path,
        fake_text=STUCK_KUBECTL,
        STUCK=object_name(first),
        MODE=mode,
        STRAITS_START_NOW="1",
    )
    applied = {ln.split()[2] for ln in log if ln.startswith("apply")}
    later = [j for j in inp.jobs if j.workload == first.workload and j.after]
    assert later
    if mode == "paused":
        assert p.returncode == 0, p.stdout + p.stderr
        assert all(any(f"{j.name}.yaml" in a for a in applied) for j in later)
        return
    assert p.returncode == 1, p.stdout + p.stderr
    assert not any(f"{j.name}.yaml" in a for j in later for a in applied)
    assert ("is gone" if mode == "gone" else "stopped by Kueue") in p.stderr
