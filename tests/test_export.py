"""Exports of the shipped plan pass each target's own validation, and stay lawful.

SkyPilot: its task and resources JSON schemas and ``sky.Task.from_yaml_config``. Kubernetes:
the API server's OpenAPI schema in strict mode (kubernetes-validate) and the ``kubernetes``
client's models. Karmada: a structural model of its API (no library exists). Slurm: bash's
parser, sbatch's option grammar, and ``submit.sh`` run against a stand-in ``sbatch``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from schemas.karmada import PropagationPolicy
from straits.admission import candidates, chip_of, site_of
from straits.export import export_input, exporter, render, write_bundle
from straits.export.base import ExportInput, label_value, unique_names
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


# --- SkyPilot -----------------------------------------------------------------------------------
def test_skypilot_tasks_pass_skypilots_schema_and_parser(inp: ExportInput) -> None:
    sky = pytest.importorskip("sky")
    from sky.utils import common_utils, schemas

    files = exporter("skypilot").render(inp).files
    assert files
    for text in files.values():
        task = yaml.safe_load(text)
        common_utils.validate_schema(task, schemas.get_task_schema(), "task: ")
        for r in task["resources"]["any_of"]:
            common_utils.validate_schema(r, schemas.get_resources_schema(), "resources: ")
        parsed = sky.Task.from_yaml_config(copy.deepcopy(task))
        assert parsed.num_nodes == task["num_nodes"]
        assert len(parsed.resources) == len(task["resources"]["any_of"])


def test_skypilot_resources_are_the_lawful_options_planned_first(
        inp: ExportInput, demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> None:
    sc, _ = demo
    ctx = _ctx(demo, rules)
    files = exporter("skypilot").render(inp).files
    for job in inp.jobs:
        task = yaml.safe_load(files[f"skypilot/{job.name}.yaml"])
        cands = candidates(task)
        first = site_of(sc, cands[0].infra)
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
    task = yaml.safe_load(exporter("skypilot").render(inp).files["skypilot/chat-72b-sft.yaml"])
    infras = [r["infra"] for r in task["resources"]["any_of"]]
    assert infras and not any("ap-southeast" in i or "my-johor" in i for i in infras), infras


def test_ordered_mode_keeps_the_plans_order(inp: ExportInput) -> None:
    files = exporter("skypilot", ordered=True).render(inp).files
    task = yaml.safe_load(files["skypilot/chat-72b-pretrain.yaml"])
    assert "ordered" in task["resources"] and "any_of" not in task["resources"]


# --- Kubernetes and Karmada ---------------------------------------------------------------------
def test_kubernetes_jobs_pass_the_openapi_schema_strictly(inp: ExportInput) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    from kubernetes import client

    files = exporter("kubernetes").render(inp).files
    jobs = [d for p, t in files.items() if p.endswith(".yaml") for d in yaml.safe_load_all(t)]
    assert len(jobs) == len(inp.jobs)
    api = client.ApiClient()
    for doc in jobs:
        kv.validate(doc, K8S_VERSION, strict=True)
        model = api.deserialize(json.dumps(doc), "V1Job", "application/json")
        job = inp.job(doc["metadata"]["labels"]["straits.dev/workload"],
                      doc["metadata"]["labels"]["straits.dev/stage"])
        assert model.metadata.labels["kueue.x-k8s.io/queue-name"] == "training"
        assert model.spec.suspend is True
        per_node = int(next(iter(model.spec.template.spec.containers[0].resources.limits
                                 .values())))
        assert per_node * model.spec.completions >= job.chips
        terms = model.spec.template.spec.affinity.node_affinity \
            .required_during_scheduling_ignored_during_execution.node_selector_terms
        keys = {e.key for e in terms[0].match_expressions}
        assert "nvidia.com/gpu.product" in keys


def test_a_broken_job_fails_the_same_validation(inp: ExportInput) -> None:
    """The validator can fail: a misspelt field is caught."""
    kv = pytest.importorskip("kubernetes_validate")
    text = next(iter(v for k, v in exporter("kubernetes").render(inp).files.items()
                     if k.endswith(".yaml")))
    doc = yaml.safe_load(text)
    doc["spec"]["completionmode"] = doc["spec"].pop("completionMode")
    with pytest.raises(kv.ValidationError):
        kv.validate(doc, K8S_VERSION, strict=True)


def test_karmada_policies_restrict_clusters_to_lawful_ones(
        inp: ExportInput, demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> None:
    kv = pytest.importorskip("kubernetes_validate")
    sc, _ = demo
    ctx = _ctx(demo, rules)
    cluster_site = {s.targets.kubernetes.cluster: s.id for s in sc.sites
                    if s.targets and s.targets.kubernetes}
    for path, text in exporter("karmada").render(inp).files.items():
        job_doc, policy_doc = yaml.safe_load_all(text)
        kv.validate(job_doc, K8S_VERSION, strict=True)
        policy = PropagationPolicy.model_validate(policy_doc)
        job = inp.job(policy_doc["metadata"]["labels"]["straits.dev/workload"],
                      policy_doc["metadata"]["labels"]["straits.dev/stage"])
        assert policy.spec.resourceSelectors[0].name == job_doc["metadata"]["name"]
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


# --- Slurm ----------------------------------------------------------------------------------------
#: sbatch long options Straits writes, with the grammar of their values (sbatch(1))
SBATCH = {
    "job-name": r"[A-Za-z0-9._-]+", "clusters": r"[A-Za-z0-9._,-]+",
    "partition": r"[A-Za-z0-9._,-]+", "account": r"\S+", "nodes": r"[1-9][0-9]*",
    "ntasks-per-node": r"[1-9][0-9]*", "gpus-per-node": r"([A-Za-z0-9_]+:)?[1-9][0-9]*",
    "time": r"[0-9]+-[0-9]{2}:[0-9]{2}:[0-9]{2}", "output": r"\S+",
}


def _sbatch_options(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#SBATCH"):
            m = re.fullmatch(r"#SBATCH --([a-z-]+)=(\S+)", line)
            assert m, line
            key, value = m.groups()
            assert key in SBATCH and re.fullmatch(SBATCH[key], value), line
            out[key] = value
    return out


def test_slurm_scripts_parse_and_chain_with_afterok(inp: ExportInput, tmp_path: Path) -> None:
    res = exporter("slurm").render(inp)
    write_bundle(tmp_path, res.files, executable=(".sh", ".sbatch"))
    for path in res.files:
        subprocess.run(["bash", "-n", str(tmp_path / path)], check=True)
    for job in inp.jobs:
        opts = _sbatch_options(res.files[f"slurm/{job.name}.sbatch"])
        assert int(opts["nodes"]) * 8 >= job.chips
        d, hms = opts["time"].split("-")
        h, m, _ = (int(x) for x in hms.split(":"))
        assert int(d) * 24 + h + m / 60 >= job.hours
    # run submit.sh against a stand-in sbatch that records its arguments and hands out ids
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "sbatch.log"
    fake = bin_dir / "sbatch"
    fake.write_text("#!/bin/bash\nn=$(( $(wc -l < \"$SBATCH_LOG\" 2>/dev/null || echo 0) + 101 ))"
                    "\necho \"$n $*\" >> \"$SBATCH_LOG\"\necho \"$n;cluster\"\n")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SBATCH_LOG": str(log)}
    subprocess.run(["bash", str(tmp_path / "slurm" / "submit.sh")], check=True, env=env,
                   capture_output=True)
    ids: dict[str, str] = {}
    for line in log.read_text().splitlines():
        jid, *args = shlex.split(line)
        script = args[-1].removesuffix(".sbatch")
        ids[script] = jid
        job = next(j for j in inp.jobs if j.name == script)
        deps = [a for a in args if a.startswith("--dependency=")]
        if job.after:
            want = ":".join(ids[f"{job.workload}-{a}"] for a in job.after)
            assert deps == [f"--dependency=afterok:{want}"]
        else:
            assert deps == []
    assert set(ids) == {j.name for j in inp.jobs}


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
    task = yaml.safe_load((out / "skypilot" / "chat-72b-pretrain.yaml").read_text())
    assert task["envs"]["STRAITS_PLAN_ID"] == plan_id
    assert not list(out.glob(".straits-export-*"))


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
