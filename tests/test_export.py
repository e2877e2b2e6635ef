"""Exports of the shipped plan pass each target's own validation, run in order, and stay lawful.

SkyPilot: its task schema, ``sky.Task.from_yaml_config`` and its pipeline loader. Kubernetes:
JobSet, LeaderWorkerSet and Kueue objects against their CRDs' own OpenAPI schemas (shipped in
tests/schemas/crds with their source), core objects against the Kubernetes OpenAPI schema in
strict mode (kubernetes-validate); ``apply.sh`` run against a stand-in kubectl. Karmada: a
structural model of its API (no library exists). Slurm: tests/test_export_slurm.py.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from schemas import crds
from schemas.karmada import PropagationPolicy
from straits.admission import candidates, chip_of, site_of
from straits.errors import InputError
from straits.export import export_input, exporter, render, write_bundle
from straits.export.base import ExportInput, label_value, unique_names
from straits.export.commands import parse as parse_run
from straits.export.k8s_objects import fit_name, object_name, serving
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.recheck import PlanContext
from straits.rules import RuleSet
from test_cli import one_line_error, straits

K8S_VERSION = "1.31"


@pytest.fixture(scope="module")
def demo(example_path: Path, rules: RuleSet) -> tuple[Scenario, dict[str, Any]]:
    sc = load_scenario(example_path)
    return sc, make_plan(sc, rules=rules, time_limit=5).to_json()


@pytest.fixture(scope="module")
def inp(demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> ExportInput:
    sc, plan = demo
    return export_input(sc, plan, rules, plan_id="test-plan", run="python train.py")


def _lawful(ctx: PlanContext, workload: str, stage: str, site: str, chip: str) -> bool:
    w = ctx.sc.workload(workload)
    o = ctx.option(w, w.stage(stage), site, chip, False)
    return o is not None and ctx.verdict(w, w.stage(stage), o).lawful


def _ctx(demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> PlanContext:
    sc, plan = demo
    return PlanContext(sc, plan, rules, date=sc.date, regime=plan["regime"])


def test_every_placed_stage_is_exported_to_every_target(inp: ExportInput) -> None:
    placed = {(a["workload"], a["stage"]) for a in inp.plan["assignments"]}
    assert placed and {(j.workload, j.stage) for j in inp.jobs} == placed
    for r in render(inp, ("skypilot", "kubernetes", "karmada", "slurm")):
        assert r.jobs == len(placed), (r.target, r.notes)


def _docs(files: dict[str, str]) -> list[dict[str, Any]]:
    return [d for p, t in files.items() if p.endswith(".yaml") for d in yaml.safe_load_all(t)
            if d]


def _tasks(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """SkyPilot tasks of the export (pipeline documents and services) by task name."""
    return {d["name"]: d for d in _docs(files) if "resources" in d}


# --- SkyPilot -----------------------------------------------------------------------------------
def test_skypilot_tasks_pass_skypilots_schema_and_parser(inp: ExportInput) -> None:
    sky = pytest.importorskip("sky")
    from sky.utils import common_utils, schemas

    tasks = _tasks(exporter("skypilot").render(inp).files)
    assert set(tasks) == {j.name for j in inp.jobs}
    for task in tasks.values():
        common_utils.validate_schema(task, schemas.get_task_schema(), "task: ")
        for r in task["resources"]["any_of"]:
            common_utils.validate_schema(r, schemas.get_resources_schema(), "resources: ")
        parsed = sky.Task.from_yaml_config(copy.deepcopy(task))
        assert parsed.num_nodes == task["num_nodes"]
        assert len(parsed.resources) == len(task["resources"]["any_of"])


def test_training_stages_are_one_pipeline_in_dependency_order(
        inp: ExportInput, tmp_path: Path) -> None:
    """`sky jobs launch` runs a multi-document YAML as a chain: each task after the one
    before succeeds. SkyPilot's own loader reads it back in the order of `after`."""
    pytest.importorskip("sky")
    from sky.utils import dag_utils

    res = exporter("skypilot").render(inp)
    write_bundle(tmp_path, res.files)
    for w in inp.scenario.workloads:
        training = [j for j in inp.jobs if j.workload == w.id and not j.serving]
        path = tmp_path / "skypilot" / f"{w.id}.pipeline.yaml"
        dag = dag_utils.load_chain_dag_from_yaml(str(path))
        names = [t.name for t in dag.tasks]
        assert sorted(names) == sorted(j.name for j in training)
        for j in training:
            for a in j.after:
                assert names.index(f"{j.workload}-{a}") < names.index(j.name)


def test_serving_stages_are_skyserve_services(inp: ExportInput) -> None:
    sky = pytest.importorskip("sky")
    files = exporter("skypilot").render(inp).files
    serve = [j for j in inp.jobs if j.serving]
    assert serve
    for j in serve:
        task = yaml.safe_load(files[f"skypilot/{j.name}.service.yaml"])
        parsed = sky.Task.from_yaml_config(copy.deepcopy(task))
        assert parsed.service is not None
        assert task["service"]["replicas"] * j.replica_chips <= j.chips
        assert task["service"]["readiness_probe"]["path"]
        first = task["resources"]["any_of"][0]["accelerators"]
        assert first.endswith(f":{j.replica_chips}")
    launch = files["skypilot/launch.sh"]
    for j in serve:  # the service comes up after its workload's pipeline
        assert launch.index(f"{j.workload}.pipeline.yaml") < launch.index(f"{j.name}.service")
    subprocess.run(["bash", "-n", "-c", launch], check=True)


def test_skypilot_resources_are_the_lawful_options_planned_first(
        inp: ExportInput, demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> None:
    sc, _ = demo
    ctx = _ctx(demo, rules)
    tasks = _tasks(exporter("skypilot").render(inp).files)
    for job in inp.jobs:
        cands = candidates(tasks[job.name])
        planned = yaml.safe_load(yaml.safe_dump(tasks[job.name]))["resources"]["any_of"][0]
        first = site_of(sc, planned["infra"])
        assert first is not None and first.id == job.planned.site.id
        offered = set()
        for c in cands:
            site = site_of(sc, c.infra)
            assert site is not None and c.accelerator is not None
            chip = chip_of(site, c.accelerator)
            assert chip is not None
            assert _lawful(ctx, job.workload, job.stage, site.id, chip), (job.name, c)
            offered.add((site.id, chip))
        # and nothing lawful at this size is missing
        w = sc.workload(job.workload)
        for o in ctx.cands.options(w, w.stage(job.stage)):
            if (o.problem is None and not o.procured and o.min_chips <= job.chips
                    <= o.pool.count and _lawful(ctx, job.workload, job.stage, o.site.id,
                                                o.chip.id)):
                assert (o.site.id, o.chip.id) in offered


def test_personal_data_stage_never_offers_an_offshore_region(inp: ExportInput) -> None:
    """The fine-tune on Chinese users' dialogues: PIPL keeps it in China, so SkyPilot's
    failover may not reach Singapore or Johor."""
    task = _tasks(exporter("skypilot").render(inp).files)["chat-72b-sft"]
    infras = [r["infra"] for r in task["resources"]["any_of"]]
    assert infras and not any("ap-southeast" in i or "my-johor" in i for i in infras), infras


def test_ordered_mode_keeps_the_plans_order(inp: ExportInput) -> None:
    task = _tasks(exporter("skypilot", ordered=True).render(inp).files)["chat-72b-pretrain"]
    assert "ordered" in task["resources"] and "any_of" not in task["resources"]


def test_every_target_sets_the_same_rendezvous(inp: ExportInput) -> None:
    """MASTER_ADDR, MASTER_PORT, NNODES, NODE_RANK and NPROC_PER_NODE reach the command on
    every target, so one `torchrun --nnodes=$NNODES ...` line runs anywhere."""
    names = ("MASTER_ADDR", "MASTER_PORT", "NNODES", "NODE_RANK", "NPROC_PER_NODE")
    files = {p: t for r in render(inp, ("skypilot", "kubernetes", "slurm")) for p, t in
             r.files.items()}
    for job in inp.jobs:
        if job.serving:
            continue
        sky_run = _tasks(files)[job.name]["run"]
        k8s = next(d for d in _docs(files) if d.get("kind") == "JobSet"
                   and d["metadata"]["labels"]["straits.dev/stage"] == job.stage)
        pod = k8s["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
        k8s_env = {e["name"] for e in pod["containers"][0]["env"]}
        slurm = next(t for p, t in files.items() if p.endswith(f"/{job.name}.sbatch"))
        for name in names:
            assert f"{name}=" in sky_run, (job.name, name)
            assert name in k8s_env, (job.name, name)
            assert name in slurm, (job.name, name)


# --- Kubernetes and Karmada ---------------------------------------------------------------------
def _objects(files: dict[str, str], kind: str) -> list[dict[str, Any]]:
    return [d for d in _docs(files) if d.get("kind") == kind]


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
        job = inp.job(doc["metadata"]["labels"]["straits.dev/workload"],
                      doc["metadata"]["labels"]["straits.dev/stage"])
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
        terms = pod["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert "nvidia.com/gpu.product" in {e["key"] for e in terms[0]["matchExpressions"]}


def test_serving_is_a_deployment_behind_a_service(inp: ExportInput) -> None:
    files = exporter("kubernetes").render(inp).files
    deployments = _objects(files, "Deployment")
    services = {d["metadata"]["name"]: d for d in _objects(files, "Service")}
    assert deployments and not _objects(files, "Job")
    for d in deployments:
        job = inp.job(d["metadata"]["labels"]["straits.dev/workload"],
                      d["metadata"]["labels"]["straits.dev/stage"])
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
    k = job.planned.site.targets.kubernetes  # type: ignore[union-attr]
    lws, svc = serving(inp, big, k)
    crds.validate(lws)
    kv.validate(svc, K8S_VERSION, strict=True)
    tmpl = lws["spec"]["leaderWorkerTemplate"]
    assert tmpl["size"] == 2 and lws["spec"]["replicas"] == big.replicas()
    assert tmpl["restartPolicy"] == "RecreateGroupOnPodRestart"
    assert "LWS_LEADER_ADDRESS" in tmpl["workerTemplate"]["spec"]["containers"][0]["command"][2]
    assert svc["spec"]["selector"]["leaderworkerset.sigs.k8s.io/worker-index"] == "0"


def test_the_crd_schemas_can_fail(inp: ExportInput) -> None:
    """The validator rejects what the API server would: a wrong enum, an unknown field, an
    unknown field inside the embedded pod spec, a wrong apiVersion."""
    kv = pytest.importorskip("kubernetes_validate")
    good = _objects(exporter("kubernetes").render(inp).files, "JobSet")[0]
    crds.validate(good)
    breaks = [
        lambda d: d["spec"]["failurePolicy"].__setitem__("restartStrategy", "Sometimes"),
        lambda d: d["spec"].__setitem__("replicatedjobs", d["spec"].pop("replicatedJobs")),
        lambda d: d["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"][
            "containers"][0].__setitem__("envv", []),
        lambda d: d.__setitem__("apiVersion", "jobset.x-k8s.io/v1"),
    ]
    for i, brk in enumerate(breaks):
        doc = copy.deepcopy(good)
        brk(doc)
        with pytest.raises((crds.jsonschema.ValidationError, kv.ValidationError)):
            crds.validate(doc)
            pytest.fail(f"break {i} passed")


def test_kueue_queue_priority_and_topology_where_declared(
        demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> None:
    sc, plan = demo
    doc = sc.model_dump(mode="json")
    level = "cloud.provider.com/topology-block"
    for s in doc["sites"]:
        if s["id"] == "my-johor":
            s["targets"]["kubernetes"].update(cluster_queue="gpu-cq", priority_class="batch",
                                              serve_priority_class="online")
            s["pools"][0]["targets"]["kubernetes_topology"] = {"level": level,
                                                               "mode": "required"}
    files = exporter("kubernetes").render(
        export_input(Scenario.model_validate(doc), plan, rules, plan_id="p", run="x")).files
    queues = _objects(files, "LocalQueue")
    assert queues and queues[0]["spec"]["clusterQueue"] == "gpu-cq"
    for q in queues:
        crds.validate(q)
    apply = files["kubernetes/apply.sh"]
    assert apply.index("kueue-") < apply.index("apply_stage my-johor")
    for d in _docs(files):
        if d["kind"] in ("JobSet", "Deployment") and d["metadata"]["labels"][
                "straits.dev/site"] == "my-johor":
            want = "online" if d["kind"] == "Deployment" else "batch"
            assert d["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == want
        if d.get("kind") == "JobSet" and d["metadata"]["labels"]["straits.dev/site"] == "my-johor":
            meta = d["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["metadata"]
            assert meta["annotations"] == {"kueue.x-k8s.io/podset-required-topology": level}
            crds.validate(d)


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


def _run_apply(files: dict[str, str], tmp_path: Path, fail: str = ""
               ) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    write_bundle(tmp_path, files, executable=(".sh",))
    fake = tmp_path / "kubectl"
    fake.write_text(FAKE_KUBECTL)
    fake.chmod(0o755)
    log = tmp_path / "kubectl.log"
    env = {**os.environ, "KUBECTL": str(fake), "KLOG": str(log), "FAIL": fail,
           "STRAITS_POLL_SECONDS": "0"}
    p = subprocess.run(["bash", str(tmp_path / "kubernetes" / "apply.sh")], env=env,
                       capture_output=True, text=True, timeout=60)
    return p, log.read_text().splitlines() if log.exists() else []


def test_apply_sh_applies_each_stage_after_its_predecessors(inp: ExportInput,
                                                            tmp_path: Path) -> None:
    files = exporter("kubernetes").render(inp).files
    p, log = _run_apply(files, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    applied = [ln.split()[2] for ln in log if ln.startswith("apply")]
    assert len(applied) == len(inp.jobs)
    for job in inp.jobs:
        mine = next(i for i, ln in enumerate(log) if ln.startswith("apply")
                    and ln.endswith(f"/{job.name}.yaml"))
        assert log[mine].split()[1] == (job.planned.site.targets.kubernetes.context)  # type: ignore[union-attr]
        for a in job.after:
            pred = inp.job(job.workload, a)
            seen = [i for i, ln in enumerate(log) if ln.endswith(f" {object_name(pred)}")
                    and ln.startswith("get")]
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


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=63),
       st.integers(min_value=5, max_value=20))
def test_fitted_names_leave_room_for_pod_suffixes(name: str, suffix: int) -> None:
    fitted = fit_name(name, suffix)
    assert len(fitted) + suffix <= 63
    if len(name) + suffix <= 63:
        assert fitted == name


def test_karmada_policies_restrict_clusters_to_lawful_ones(
        inp: ExportInput, demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    sc, _ = demo
    ctx = _ctx(demo, rules)
    cluster_site = {s.targets.kubernetes.cluster: s.id for s in sc.sites
                    if s.targets and s.targets.kubernetes}
    for path, text in exporter("karmada").render(inp).files.items():
        *objects, policy_doc = yaml.safe_load_all(text)
        for o in objects:
            if o["kind"] in ("JobSet", "LeaderWorkerSet"):
                crds.validate(o)
            else:
                kv.validate(o, K8S_VERSION, strict=True)
        policy = PropagationPolicy.model_validate(policy_doc)
        job = inp.job(policy_doc["metadata"]["labels"]["straits.dev/workload"],
                      policy_doc["metadata"]["labels"]["straits.dev/stage"])
        selected = {(s.kind, s.name) for s in policy.spec.resourceSelectors}
        assert selected == {(o["kind"], o["metadata"]["name"]) for o in objects}
        terms = policy.spec.placement.clusterAffinities  # type: ignore[union-attr]
        assert terms and terms[0].clusterNames == [job.planned.site.targets.kubernetes.cluster]  # type: ignore[union-attr]
        for term in terms:
            for cluster in term.clusterNames or ():
                assert _lawful(ctx, job.workload, job.stage, cluster_site[cluster],
                               job.planned.pool.chip), (path, cluster)


def test_karmada_model_rejects_what_karmada_would() -> None:
    bad = {"apiVersion": "policy.karmada.io/v1alpha1", "kind": "PropagationPolicy",
           "metadata": {"name": "x"},
           "spec": {"resourceSelectors": [{"apiVersion": "batch/v1", "kind": "Job"}],
                    "placement": {"clusterAffinity": {"clusterNames": ["a"]},
                                  "clusterAffinities": [{"affinityName": "p",
                                                         "clusterNames": ["a"]}]}}}
    with pytest.raises(ValueError, match="mutually exclusive"):
        PropagationPolicy.model_validate(bad)


# --- what each stage runs -----------------------------------------------------------------------
def _stage_commands(inp: ExportInput) -> dict[str, str]:
    return {j.stage: j.command for j in inp.jobs}


RUN_CASES = [  # (--run values, expected command per stage; None: the failing default)
    ([], {"pretrain": None, "sft": None, "serve-intl": None}),
    (["all"], {"pretrain": "all", "sft": "all", "serve-intl": "all"}),
    (["all", "serve=vllm"], {"pretrain": "all", "sft": "all", "serve-intl": "vllm"}),
    (["finetune=ft", "pretrain=pt"], {"pretrain": "pt", "sft": "ft", "serve-intl": None}),
    (["finetune=ft", "sft=by-id"], {"pretrain": None, "sft": "by-id", "serve-intl": None}),
    (["sft=by-id", "chat-72b/sft=by-pair"], {"pretrain": None, "sft": "by-pair",
                                            "serve-intl": None}),
    (["NCCL_DEBUG=INFO torchrun x.py"], {"pretrain": "NCCL_DEBUG=INFO torchrun x.py",
                                         "sft": "NCCL_DEBUG=INFO torchrun x.py",
                                         "serve-intl": "NCCL_DEBUG=INFO torchrun x.py"}),
]


@pytest.mark.parametrize(("values", "want"), RUN_CASES)
def test_run_options_give_each_stage_its_command(
        demo: tuple[Scenario, dict[str, Any]], rules: RuleSet, values: list[str],
        want: dict[str, str | None]) -> None:
    sc, plan = demo
    inp = export_input(sc, plan, rules, plan_id="p", commands=parse_run(values, sc))
    for stage, cmd in _stage_commands(inp).items():
        if want[stage] is None:
            assert "no command was given" in cmd and stage in cmd and "exit 1" in cmd
        else:
            assert cmd == want[stage]


@pytest.mark.parametrize("values", [["pretrian=x"], ["fine-tune=x"], ["a", "b"],
                                    ["sft=x", "sft=y"], ["sft="], ["chat-72b/nope=x"],
                                    ["x" * 20000], ["a\0b"]])
def test_bad_run_options_are_input_errors(demo: tuple[Scenario, dict[str, Any]],
                                          values: list[str]) -> None:
    with pytest.raises(InputError) as err:
        parse_run(values, demo[0])
    assert err.value.path and err.value.path.startswith("--run")


def test_the_scenarios_stage_command_is_used_and_a_keyed_run_wins(
        demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> None:
    sc, plan = demo
    doc = sc.model_dump(mode="json")
    doc["workloads"][0]["stages"][1]["command"] = "python sft.py --resume"
    sc2 = Scenario.model_validate(doc)
    got = _stage_commands(export_input(sc2, plan, rules, plan_id="p",
                                       commands=parse_run(["plain"], sc2)))
    assert got == {"pretrain": "plain", "sft": "python sft.py --resume", "serve-intl": "plain"}
    got = _stage_commands(export_input(sc2, plan, rules, plan_id="p",
                                       commands=parse_run(["finetune=ft"], sc2)))
    assert got["sft"] == "ft"


def test_a_command_reaches_every_target_verbatim(
        demo: tuple[Scenario, dict[str, Any]], rules: RuleSet, tmp_path: Path) -> None:
    """Quotes, dollars, newlines and backslashes survive YAML and shell quoting."""
    sc, plan = demo
    tricky = "echo \"it's $HOME\" \\\n  && printf '%s\\n' `date` ; echo 'a\"b'"
    inp = export_input(sc, plan, rules, plan_id="p", run=tricky)
    files = {p: t for r in render(inp, ("skypilot", "kubernetes", "slurm")) for p, t in
             r.files.items()}
    for task in _tasks(files).values():
        assert task["run"].endswith("\n" + tricky)
    for d in _docs(files):
        for c in _containers(d):
            assert {"name": "STRAITS_COMMAND", "value": tricky} in c["env"]
    write_bundle(tmp_path, files)
    # run each sbatch script with stand-ins for scontrol and srun (srun records the command)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho node-a\n")
    (bin_dir / "srun").write_text('#!/bin/bash\nprintf %s "$STRAITS_COMMAND" > "$OUT"\n')
    for f in ("scontrol", "srun"):
        (bin_dir / f).chmod(0o755)
    for path in files:
        if path.endswith(".sbatch"):
            out = tmp_path / "cmd.txt"
            env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "OUT": str(out),
                   "HOME": str(tmp_path), "SLURM_JOB_NODELIST": "node-a",
                   "SLURM_JOB_ID": "7", "SLURM_JOB_NUM_NODES": "1"}
            p = subprocess.run(["bash", str(tmp_path / path)], env=env, capture_output=True,
                               text=True, timeout=30)
            assert p.returncode == 0, p.stdout + p.stderr
            assert out.read_text() == tricky


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if "containers" in x:
                found.extend(x["containers"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(doc)
    return found


# --- the command line ---------------------------------------------------------------------------
def recorded_id(stderr: str) -> str:
    m = re.search(r"recorded plan ([0-9a-f]{32})", stderr)
    assert m, stderr
    return m.group(1)


def test_cli_exports_a_recorded_plan(tmp_path: Path, example_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    p = straits("plan", str(example_path), "--record", "--db", db, "--json", "--time-limit", "5")
    assert p.returncode == 0, p.stderr
    plan_id = recorded_id(p.stderr)
    out = tmp_path / "out"
    p = straits("export", plan_id[:8], "--to", "all", "-o", str(out), "--db", db, "--json")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["plan_id"] == plan_id
    assert set(summary["targets"]) == {"skypilot", "kubernetes", "karmada", "slurm"}
    name, *tasks = yaml.safe_load_all((out / "skypilot" / "chat-72b.pipeline.yaml").read_text())
    assert name == {"name": "chat-72b"}
    assert all(t["envs"]["STRAITS_PLAN_ID"] == plan_id for t in tasks)
    assert not list(out.glob(".straits-export-*"))


def test_cli_runs_per_stage_and_says_where_each_command_came_from(
        tmp_path: Path, example_path: Path) -> None:
    out = tmp_path / "out"
    p = straits("export", str(example_path), "--to", "slurm", "-o", str(out), "--json",
                "--run", "pretrain=torchrun pretrain.py", "--run", "sft=torchrun sft.py")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["commands"] == {"chat-72b/pretrain": "--run pretrain=",
                                   "chat-72b/sft": "--run sft=", "chat-72b/serve-intl": "none"}
    notes = summary["targets"]["slurm"]["notes"]
    assert any("serve-intl" in n and "no command" in n for n in notes)
    scripts = {f.name: f.read_text() for f in out.rglob("*.sbatch")}
    assert "torchrun pretrain.py" in scripts["chat-72b-pretrain.sbatch"]
    assert "torchrun sft.py" in scripts["chat-72b-sft.sbatch"]
    assert "no command was given for stage chat-72b/serve-intl" in scripts[
        "chat-72b-serve-intl.sbatch"]


def test_cli_rejects_a_misspelt_stage_key_and_writes_nothing(tmp_path: Path,
                                                             example_path: Path) -> None:
    out = tmp_path / "out"
    p = straits("export", str(example_path), "--to", "slurm", "-o", str(out),
                "--run", "pretrian=torchrun x.py")
    one_line_error(p, "--run", "pretrian", "pretrain")
    assert not out.exists() or not any(out.iterdir())


def test_cli_rejects_an_unknown_target_and_writes_nothing(tmp_path: Path,
                                                          example_path: Path) -> None:
    out = tmp_path / "out"
    p = straits("export", str(example_path), "--to", "nomad", "-o", str(out))
    one_line_error(p, "--to", "nomad", "skypilot")
    assert not out.exists() or not any(out.iterdir())


def test_a_site_without_a_mapping_is_left_out_with_a_note(
        demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> None:
    sc, plan = demo
    doc = sc.model_dump(mode="json")
    planned = plan["assignments"][0]["site"]
    for s in doc["sites"]:
        if s["id"] == planned:
            s["targets"] = None
    bare = Scenario.model_validate(doc)
    r = exporter("slurm").render(export_input(bare, plan, rules, plan_id="p"))
    assert any(planned in n and "targets.slurm" in n for n in r.notes)
    assert r.jobs == len(plan["assignments"]) - sum(
        1 for a in plan["assignments"] if a["site"] == planned)


def test_bundle_is_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b.yaml").mkdir()  # a folder where a file must go
    with pytest.raises(IsADirectoryError):
        write_bundle(tmp_path, {"a/first.yaml": "x: 1\n", "a/b.yaml": "y: 2\n"})
    assert not (tmp_path / "a" / "first.yaml").exists()
    assert not list(tmp_path.glob(".straits-export-*"))


ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,90}", fullmatch=True)


@given(st.lists(st.tuples(ids, ids), min_size=1, max_size=12, unique=True))
def test_job_names_are_unique_dns_labels(keys: list[tuple[str, str]]) -> None:
    names = unique_names(keys)
    assert len(set(names.values())) == len(keys)
    for name in names.values():
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63


def test_colliding_names_get_a_hash() -> None:
    names = unique_names([("a-b", "c"), ("a", "b-c")])
    assert names[("a-b", "c")] != names[("a", "b-c")]


@given(ids)
def test_label_values_are_valid(text: str) -> None:
    v = label_value(text)
    assert len(v) <= 63 and re.fullmatch(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?", v)
