"""Exports of the shipped plan pass each target's own validation, run in order, and stay lawful;
the command line. What each stage runs: tests/test_export_stage_runs.py.

SkyPilot here: its task schema, ``sky.Task.from_yaml_config`` and its pipeline loader.
Kubernetes and Karmada: tests/test_export_kubernetes.py. Slurm: tests/test_export_slurm.py.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from export_support import _ctx, _docs, _lawful, _tasks, demo, inp
from straits.admission import candidates, chip_of, site_of
from straits.export import export_input, exporter, render, write_bundle
from straits.export.base import ExportInput, dns_name, label_value, unique_labels
from straits.export.names import unique_names
from straits.model.scenario import Scenario
from straits.rules import RuleSet
from test_cli import one_line_error, straits

__all__ = ["demo", "inp"]  # fixtures


def test_every_placed_stage_is_exported_to_every_target(inp: ExportInput) -> None:
    placed = {(a["workload"], a["stage"]) for a in inp.plan["assignments"]}
    assert placed and {(j.workload, j.stage) for j in inp.jobs} == placed
    for r in render(inp, ("skypilot", "kubernetes", "karmada", "slurm")):
        assert r.jobs == len(placed), (r.target, r.notes)


# --- SkyPilot -----------------------------------------------------------------------------------
def test_skypilot_tasks_pass_skypilots_schema_and_parser(inp: ExportInput) -> None:
    sky = pytest.importorskip("sky")
    from sky.utils import common_utils, schemas

    validate: Any = common_utils.validate_schema  # SkyPilot's functions are untyped
    task_schema = schemas.get_task_schema()  # type: ignore[no-untyped-call]
    resources_schema = schemas.get_resources_schema()  # type: ignore[no-untyped-call]
    tasks = _tasks(exporter("skypilot").render(inp).files)
    assert set(tasks) == {j.name for j in inp.jobs}
    for task in tasks.values():
        validate(task, task_schema, "task: ")
        for r in task["resources"]["any_of"]:
            validate(r, resources_schema, "resources: ")
        parsed = sky.Task.from_yaml_config(copy.deepcopy(task))
        assert parsed.num_nodes == task["num_nodes"]
        assert len(parsed.resources) == len(task["resources"]["any_of"])


def test_training_stages_are_one_pipeline_in_dependency_order(
    inp: ExportInput, tmp_path: Path
) -> None:
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
        names = [str(t.name) for t in dag.tasks]
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
    inp: ExportInput, demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
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
            if (
                o.problem is None
                and not o.procured
                and o.min_chips <= job.chips <= o.pool.count
                and _lawful(ctx, job.workload, job.stage, o.site.id, o.chip.id)
            ):
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
    files = {
        p: t for r in render(inp, ("skypilot", "kubernetes", "slurm")) for p, t in r.files.items()
    }
    for job in inp.jobs:
        if job.serving:
            continue
        sky_run = _tasks(files)[job.name]["run"]
        k8s = next(
            d
            for d in _docs(files)
            if d.get("kind") == "JobSet"
            and d["metadata"]["labels"]["straits.dev/stage"] == job.stage
        )
        pod = k8s["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
        k8s_env = {e["name"] for e in pod["containers"][0]["env"]}
        slurm = next(t for p, t in files.items() if p.endswith(f"/{job.name}.sbatch"))
        for name in names:
            assert f"{name}=" in sky_run, (job.name, name)
            assert name in k8s_env, (job.name, name)
            assert name in slurm, (job.name, name)


# --- the command line ---------------------------------------------------------------------------
def recorded_id(stderr: str) -> str:
    m = re.search(r"recorded plan ([0-9a-f]{32})", stderr)
    assert m, stderr
    return m.group(1)


def test_cli_exports_a_recorded_plan(tmp_path: Path, example_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    p = straits("plan", str(example_path), "--record", "--db", db, "--json", "--time-limit", "30")
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
    tmp_path: Path, example_path: Path
) -> None:
    out = tmp_path / "out"
    p = straits(
        "export",
        str(example_path),
        "--to",
        "slurm",
        "-o",
        str(out),
        "--json",
        "--run",
        "pretrain=torchrun pretrain.py",
        "--run",
        "sft=torchrun sft.py",
    )
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["commands"] == {
        "chat-72b/pretrain": "--run pretrain=",
        "chat-72b/sft": "--run sft=",
        "chat-72b/serve-intl": "none",
    }
    notes = summary["targets"]["slurm"]["notes"]
    assert any("serve-intl" in n and "no command" in n for n in notes)
    scripts = {f.name: f.read_text() for f in out.rglob("*.sbatch")}
    assert "torchrun pretrain.py" in scripts["chat-72b-pretrain.sbatch"]
    assert "torchrun sft.py" in scripts["chat-72b-sft.sbatch"]
    assert (
        "no command was given for stage chat-72b/serve-intl"
        in scripts["chat-72b-serve-intl.sbatch"]
    )


def test_cli_rejects_a_misspelt_stage_key_and_writes_nothing(
    tmp_path: Path, example_path: Path
) -> None:
    out = tmp_path / "out"
    p = straits(
        "-q",
        "export",
        str(example_path),
        "--to",
        "slurm",
        "-o",
        str(out),
        "--run",
        "pretrian=torchrun x.py",
    )
    one_line_error(p, "--run", "pretrian", "pretrain")
    assert not out.exists() or not any(out.iterdir())


def test_cli_rejects_an_unknown_target_and_writes_nothing(
    tmp_path: Path, example_path: Path
) -> None:
    out = tmp_path / "out"
    p = straits("-q", "export", str(example_path), "--to", "nomad", "-o", str(out))
    one_line_error(p, "--to", "nomad", "skypilot")
    assert not out.exists() or not any(out.iterdir())


def test_a_site_without_a_mapping_is_left_out_with_a_note(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
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
        1 for a in plan["assignments"] if a["site"] == planned
    )


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


@given(st.lists(ids, min_size=1, max_size=12, unique=True))
def test_folder_and_pipeline_labels_are_distinct_dns_labels(names: list[str]) -> None:
    """Workload and cluster names that differ only in case or punctuation ("Chat", "chat")
    never share a pipeline file or a Slurm folder."""
    labels = unique_labels(names)
    assert len(set(labels.values())) == len(names)
    for name, label in labels.items():
        # RFC 1035 (a letter first: SkyPilot's job and service names), single dashes
        assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", label) and len(label) <= 63
        assert "--" not in label
        if re.fullmatch(r"[a-z]([a-z0-9]|-(?!-))*(?<!-)", name) and len(name) <= 63:
            assert label == name or sum(dns_name(n) == name for n in names) > 1
