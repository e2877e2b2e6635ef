"""The hostile export pass exp30: plans whose stages run in parallel branches, and what every
target writes for them.

SkyPilot put a workload's training stages into pipelines in the topological order of their
declaration: with a branch ``eval`` after the pre-train declared after ``sft`` (also after
the pre-train), ``eval`` ran after ``sft`` in the pipeline though the plan starts it as the
pre-train ends, 13 days before ``sft`` ends; held ``sft`` ten days (a pipeline of its own),
``eval`` joined that pipeline and started 23 days late. The pipelines follow the plan's starts
now (a predecessor first), and a stage a pipeline runs after a task the plan runs at the same
time gets a note."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from export_support import _pipelines, _tasks
from straits.admission import site_of
from straits.export import export_input, exporter
from straits.export.base import ExportInput
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plandoc import make_document
from straits.rules import RuleSet
from test_export_start_wait import _between, _run, _started

ROOT = Path(__file__).resolve().parents[1]
W = "chat-72b"


def _offshore() -> dict[str, Any]:
    """The offshore example with its pre-train in Malaysia, where the greedy plan put it until
    est33's estimator refit (since, on cn-ulanqab's H800s beside ``sft``): the plans this pass
    is about start a branch or a service in Johor as the pre-train ends there."""
    doc: dict[str, Any] = copy.deepcopy(
        load_scenario(ROOT / "examples" / "offshore-2025.yaml").model_dump(mode="json")
    )
    assert doc["workloads"][0]["stages"][0]["id"] == "pretrain"
    doc["workloads"][0]["stages"][0]["locations"] = ["MY"]
    return doc


def _diamond() -> Scenario:
    """The offshore example (:func:`_offshore`) with ``eval``, after the pre-train, declared
    after ``sft``."""
    doc = _offshore()
    doc["workloads"][0]["stages"].insert(
        2,
        {
            "id": "eval",
            "kind": "finetune",
            "after": ["pretrain"],
            "tokens": 1.0e9,
            "locations": ["SG", "MY"],
        },
    )
    return Scenario.model_validate(doc)


@pytest.fixture(scope="module")
def plan(rules: RuleSet) -> dict[str, Any]:
    return make_plan(_diamond(), rules=rules, solver="greedy").to_json()


def _input(plan: dict[str, Any], rules: RuleSet, days: float = 0) -> ExportInput:
    """The plan with ``sft`` and the service after it ``days`` later."""
    plan = copy.deepcopy(plan)
    for a in plan["assignments"]:
        if a["stage"] in ("sft", "serve-intl"):
            for k in ("start", "end"):
                t = dt.datetime.fromisoformat(a[k].replace("Z", "+00:00"))
                a[k] = (t + dt.timedelta(days=days)).isoformat()
    inp = export_input(_diamond(), plan, rules, plan_id="diamond", run="true")
    pre, sft, ev = (inp.job(W, s) for s in ("pretrain", "sft", "eval"))
    # both branches start as the pre-train ends (sft: plus moving its data), eval ends first
    shift = int(days * 86400)
    assert ev.begin <= sft.begin - shift < ev.begin + 3600
    assert int(ev.placement.end.timestamp()) < int(sft.placement.end.timestamp()) - shift
    assert ev.after == sft.after == ("pretrain",) and ev.begin >= int(pre.placement.end.timestamp())
    return inp


def test_a_branch_runs_in_the_order_the_plan_starts_it(
    plan: dict[str, Any], rules: RuleSet
) -> None:
    inp = _input(plan, rules)
    res = exporter("skypilot").render(inp)
    assert _pipelines(res.files) == {W: ["pretrain", "eval", "sft"]}
    # sft is planned while eval runs: the pipeline runs it after eval, and says so
    late = [n for n in res.notes if n.startswith(f"{W}/sft: planned to start ")]
    assert len(late) == 1 and "while eval runs" in late[0], res.notes


def test_a_branch_does_not_join_a_held_stages_pipeline(
    plan: dict[str, Any], rules: RuleSet, tmp_path: Path
) -> None:
    inp = _input(plan, rules, days=10)
    res = exporter("skypilot").render(inp)
    assert _pipelines(res.files) == {W: ["pretrain", "eval"], f"{W}-2": ["sft"]}
    assert not any("while" in n for n in res.notes), res.notes
    pre, sft, serve = (inp.job(W, s) for s in ("pretrain", "sft", "serve-intl"))
    p, log = _run(
        res.files,
        tmp_path,
        "skypilot/launch.sh",
        clock=pre.begin,
        jumps={W: sft.begin - 30, f"{W}-2": serve.begin},
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert _started(log) == [W, f"{W}-2", serve.name]
    assert _between(log, W, f"{W}-2") == [30]


@pytest.mark.parametrize("days", [0, 10])
def test_every_target_starts_the_branch_before_the_held_stage(
    plan: dict[str, Any], rules: RuleSet, days: float
) -> None:
    """Kubernetes' apply.sh applies in the plan's starts too (one background job per
    workload: a stage waiting for its start holds back the ones after it)."""
    apply = exporter("kubernetes").render(_input(plan, rules, days)).files["kubernetes/apply.sh"]
    steps = [ln.split()[2] for ln in apply.splitlines() if ln.strip().startswith("apply_stage ")]
    assert [s.rsplit("/", 1)[1].removesuffix(".yaml") for s in steps] == [
        f"{W}-pretrain",
        f"{W}-eval",
        f"{W}-sft",
        f"{W}-serve-intl",
    ]


# --- SkyPilot infra that names no one place ------------------------------------------------------
def _mapped(sky: dict[str, Any], only: str | None = None) -> dict[str, Any]:
    """The offshore example with ``sky`` as the SkyPilot mapping of every site (``only``: of
    that site alone; the pre-train in Malaysia, :func:`_offshore`)."""
    doc = _offshore()
    for s in doc["sites"]:
        if s["targets"] and s["targets"].get("skypilot") and only in (None, s["id"]):
            s["targets"]["skypilot"] = sky
    return doc


def test_a_site_mapped_to_a_cloud_without_region_gets_no_task(rules: RuleSet) -> None:
    """``infra: aws`` lets SkyPilot pick any AWS region in the world, outside the site, and the
    admission hook knows no site by it: it was written as the planned infra of every task."""
    sc = Scenario.model_validate(_mapped({"cloud": "aws"}, only="my-johor"))
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="noregion", run="true")
    assert {j.planned.site.id for j in inp.jobs if j.stage != "sft"} == {"my-johor"}
    res = exporter("skypilot").render(inp)
    infras = {
        r["infra"] for d in _tasks(res.files).values() for r in next(iter(d["resources"].values()))
    }
    assert "aws" not in infras and infras, infras
    written = {d["envs"]["STRAITS_STAGE"] for d in _tasks(res.files).values()}
    assert written == {"sft"}
    assert any(
        n.startswith("chat-72b/pretrain: the planned site my-johor has no region")
        for n in res.notes
    ), res.notes


def test_a_plan_only_on_such_sites_exports_nothing(rules: RuleSet, tmp_path: Path) -> None:
    doc = _mapped({"cloud": "kubernetes"})
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    (tmp_path / "plan.json").write_text(json.dumps(make_document(plan, doc, {})))
    out = tmp_path / "o"
    args = ("--to", "skypilot", "--run", "true", "-o", str(out))
    p = subprocess.run(
        [sys.executable, "-m", "straits", "-q", "export", str(tmp_path / "plan.json"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "1000"},
        timeout=300,
    )
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and not out.exists()
    assert "has no region in sites[].targets.skypilot" in p.stderr


@pytest.mark.parametrize(
    ("sky", "field"),
    [
        ({"cloud": "k8s", "region": "ctx", "zone": "z"}, "zone"),
        ({"cloud": "kubernetes", "region": "*"}, "region"),
        ({"cloud": "gcp", "region": "us-central1", "zone": "us-central1-a/b"}, "zone"),
    ],
)
def test_infra_skypilot_reads_otherwise_is_refused(sky: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as e:
        Scenario.model_validate(_mapped(sky, only="my-johor"))
    assert {err["loc"][-1] for err in e.value.errors()} == {field}


def test_a_kubernetes_context_with_slashes_is_one_site(rules: RuleSet) -> None:
    """EKS contexts hold '/': SkyPilot reads all after ``k8s/`` as the context, and so does the
    admission hook, which maps the exported infra back to its site."""
    ctx = "arn:aws:eks:ap-southeast-1:123456789012:cluster/johor"
    sc = Scenario.model_validate(_mapped({"cloud": "k8s", "region": ctx}, only="my-johor"))
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    res = exporter("skypilot").render(export_input(sc, plan, rules, plan_id="eks", run="true"))
    pre = _tasks(res.files)[next(n for n, t in _tasks(res.files).items() if "pretrain" in n)]
    infra = next(iter(pre["resources"].values()))[0]["infra"]
    assert infra == f"k8s/{ctx}"
    site = site_of(sc, infra)
    assert site is not None and site.id == "my-johor"


# --- a service the plan starts before a training branch ------------------------------------------
def _served_early(rules: RuleSet, shift_s: int = 0) -> ExportInput:
    """The offshore example with the service after the pre-train (not after ``sft``): both
    start as the pre-train ends, the service first; ``shift_s`` later, after ``sft`` (the
    pre-train in Malaysia, :func:`_offshore`)."""
    doc = _offshore()
    doc["workloads"][0]["stages"][2]["after"] = ["pretrain"]
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    for a in plan["assignments"]:
        if a["stage"] == "serve-intl":
            for k in ("start", "end"):
                t = dt.datetime.fromisoformat(a[k].replace("Z", "+00:00"))
                a[k] = (t + dt.timedelta(seconds=shift_s)).isoformat()
    return export_input(sc, plan, rules, plan_id="served", run="true")


def test_a_training_branch_does_not_hold_back_a_service_planned_before_it(
    rules: RuleSet, tmp_path: Path
) -> None:
    """``sft`` joined the pre-train's pipeline, which launch.sh ran to its end before bringing
    up the service: the service came up 12.7 days after its planned start."""
    inp = _served_early(rules)
    pre, sft, serve = (inp.job(W, s) for s in ("pretrain", "sft", "serve-intl"))
    assert serve.begin < sft.begin < int(sft.placement.end.timestamp())
    res = exporter("skypilot").render(inp)
    assert _pipelines(res.files) == {W: ["pretrain"], f"{W}-2": ["sft"]}
    p, log = _run(
        res.files,
        tmp_path,
        "skypilot/launch.sh",
        clock=pre.begin,
        jumps={W: serve.begin - 5},
    )
    assert p.returncode == 0, p.stdout + p.stderr
    assert _started(log) == [W, serve.name, f"{W}-2"]
    assert _between(log, W, serve.name) == [5]
    assert _between(log, serve.name, f"{W}-2") == [sft.begin - serve.begin]


def test_a_service_planned_while_the_pipeline_before_it_runs_is_noted(rules: RuleSet) -> None:
    inp = _served_early(rules, shift_s=60)
    sft, serve = inp.job(W, "sft"), inp.job(W, "serve-intl")
    assert sft.begin < serve.begin < int(sft.placement.end.timestamp())
    res = exporter("skypilot").render(inp)
    assert _pipelines(res.files) == {W: ["pretrain", "sft"]}
    late = [n for n in res.notes if n.startswith(f"{W}/serve-intl: planned to start ")]
    assert len(late) == 1 and "while sft runs" in late[0], res.notes


# --- two sites mapped to one place of a scheduler -------------------------------------------------
def _shared(target: str, change: dict[str, Any] | None = None) -> dict[str, Any]:
    """The offshore example with cn-ulanqab (where the plan puts ``sft``, for its Chinese
    data) given sg-jurong's ``target`` mapping, ``change`` applied to it."""
    doc: dict[str, Any] = copy.deepcopy(
        load_scenario(ROOT / "examples" / "offshore-2025.yaml").model_dump(mode="json")
    )
    sites = {s["id"]: s for s in doc["sites"]}
    if "zz" in (change or {}).get("node_labels", {}):  # the same labels in another order
        sites["sg-jurong"]["targets"][target]["node_labels"]["zz"] = "a"
    sites["cn-ulanqab"]["targets"][target] = {
        **sites["sg-jurong"]["targets"][target],
        **(change or {}),
    }
    return doc


@pytest.mark.parametrize(
    ("target", "change"),
    [
        ("skypilot", {}),
        ("skypilot", {"cloud": "AWS"}),  # SkyPilot's cloud names know no case
        ("skypilot", {"zone": "ap-southeast-1a"}),  # the hook takes it for sg-jurong's
        ("kubernetes", {}),
        (
            "kubernetes",
            {"node_labels": {"zz": "a", "topology.kubernetes.io/region": "ap-southeast-1"}},
        ),
        ("slurm", {}),
    ],
)
def test_two_sites_mapped_to_one_place_are_refused(
    target: str, change: dict[str, Any], tmp_path: Path
) -> None:
    """``sft`` was planned in China for its data; with cn-ulanqab mapped as sg-jurong, every
    target ran it on the Singapore cluster (the admission hook took the infra for sg-jurong)."""
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(_shared(target, change)))
    p = subprocess.run(
        [sys.executable, "-m", "straits", "scenario", "validate", str(f)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "1000"},
        timeout=300,
    )
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"sites[2].targets.{target}:" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize(
    ("target", "change"),
    [
        ("skypilot", {"region": "ap-east-1"}),
        ("kubernetes", {"node_labels": {"topology.kubernetes.io/region": "cn-north-1"}}),
        ("slurm", {"partition": "cn"}),
    ],
)
def test_one_cluster_told_apart_is_taken(
    target: str, change: dict[str, Any], rules: RuleSet
) -> None:
    """A zone of the region, other node labels in one cluster, another partition: the
    scheduler can tell the sites apart."""
    sc = Scenario.model_validate(_shared(target, change))
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="apart", run="true")
    assert inp.job(W, "sft").planned.site.id == "cn-ulanqab"
    assert exporter(target).render(inp).jobs == 3
