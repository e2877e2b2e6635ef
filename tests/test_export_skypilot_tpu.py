"""TPU stages on SkyPilot: one Cloud TPU slice of the planned chips, quantity 1, on one node.

The export asked 64 TPU v4 chips as ``accelerators: tpu-v4-8:8`` on ``num_nodes: 8``, the GPU
layout of 8 chips a node: SkyPilot's catalog offers each TPU slice with quantity 1 only, and a
TPU Pod slice (``tpu-v4-128``: 64 chips, two TensorCores each) is one resource whose hosts
SkyPilot starts itself."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from export_support import _tasks
from straits.admission import chip_of
from straits.errors import InputError
from straits.export import export_input, exporter
from straits.export.base import ExportResult
from straits.export.tpu import GENERATIONS, TPU_SLICES, chip_of_slice, slice_for
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.rules import RuleSet

SCENARIO: dict[str, Any] = {
    "straits": 1,
    "name": "tpu-1",
    "date": "2025-06-01",
    "tenants": [{"id": "t1", "hq": "US"}],
    "sites": [
        {
            "id": "us-gcp",
            "country": "US",
            "operator_hq": "US",
            "targets": {"skypilot": {"cloud": "gcp", "region": "us-central2"}},
            "pools": [{"chip": "TPU-v4", "count": 256, "usd_per_chip_hour": 3.2}],
        }
    ],
    "datasets": [
        {
            "id": "d1",
            "tokens": 2.0e10,
            "size_gb": 10,
            "located_at": "us-gcp",
            "origin": "US",
            "classes": ["public"],
        }
    ],
    "workloads": [
        {
            "id": "w",
            "tenant": "t1",
            "model": {"params": 1.0e9, "layers": 16, "d_model": 2048, "heads": 16, "seq_len": 2048},
            "stages": [{"id": "pre", "kind": "pretrain", "datasets": ["d1"], "chips": 64}],
        }
    ],
}
H100_SITE = {
    "id": "us-aws",
    "country": "US",
    "operator_hq": "US",
    "targets": {"skypilot": {"cloud": "aws", "region": "us-east-1"}},
    "pools": [{"chip": "H100-SXM", "count": 256, "usd_per_chip_hour": 9.0}],
}


def _scenario(chips: int = 64, **pool_targets: str) -> dict[str, Any]:
    doc = copy.deepcopy(SCENARIO)
    doc["workloads"][0]["stages"][0]["chips"] = chips
    if pool_targets:
        doc["sites"][0]["pools"][0]["targets"] = dict(pool_targets)
    return doc


def _export(doc: dict[str, Any], rules: RuleSet) -> ExportResult:
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    assert not plan["unplaced"], plan["unplaced"]
    inp = export_input(sc, plan, rules, plan_id="tpu-plan", run="python train.py")
    return exporter("skypilot").render(inp)


@pytest.mark.parametrize(
    ("chips", "name"),
    [
        (4, "tpu-v4-8"),
        (8, "tpu-v4-16"),
        (16, "tpu-v4-32"),
        (32, "tpu-v4-64"),
        (64, "tpu-v4-128"),
        (192, "tpu-v4-384"),  # 4x4x12: whole cubes, not a power of two
        (2048, "tpu-v4-4096"),
        (1, None),
        (2, None),
        (12, None),
        (48, None),
        (96, None),
        (2112, None),
        (4096, None),
    ],
)
def test_tpu_v4_slices_count_tensorcores_and_exist_only_at_googles_sizes(
    chips: int, name: str | None
) -> None:
    got, why = slice_for("TPU-v4", chips)
    assert got == name
    assert (why == "") == (name is not None)
    if name is not None:
        assert chip_of_slice(name) == "TPU-v4"
        assert chip_of_slice(name.upper()) == "TPU-v4"
    assert chip_of_slice(f"tpu-v4-{2 * chips}") == ("TPU-v4" if name else None)
    assert TPU_SLICES["TPU-v4"].chips_ok(chips) == (name is not None)


def test_chip_of_slice_refuses_what_is_no_v4_slice() -> None:
    for acc in ("tpu-v4-96", "tpu-v4-7", "tpu-v4", "tpu-v5p-6", "H100", "tpu-v4-podslice"):
        assert chip_of_slice(acc) is None, acc


def test_64_tpu_v4_chips_are_one_tpu_v4_128_slice_on_one_node(rules: RuleSet) -> None:
    r = _export(_scenario(), rules)
    assert r.jobs == 1, r.notes
    text = r.files["skypilot/w.pipeline.yaml"]
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert docs[0] == {"name": "w"}
    task = docs[1]
    assert task["num_nodes"] == 1
    assert task["resources"] == {
        "any_of": [{"infra": "gcp/us-central2", "accelerators": "tpu-v4-128:1"}]
    }
    assert not any("rounded up" in n for n in r.notes)


def test_the_tpu_task_passes_skypilots_schema_and_parser(rules: RuleSet) -> None:
    sky = pytest.importorskip("sky")
    from sky.utils import common_utils, schemas

    validate: Any = common_utils.validate_schema  # SkyPilot's functions are untyped
    task = _tasks(_export(_scenario(), rules).files)["w-pre"]
    validate(task, schemas.get_task_schema(), "task: ")  # type: ignore[no-untyped-call]
    parsed = sky.Task.from_yaml_config(copy.deepcopy(task))
    assert parsed.num_nodes == 1
    (res,) = parsed.resources
    assert res.accelerators == {"tpu-v4-128": 1}


def _plan_at(chips: int, rules: RuleSet) -> tuple[Scenario, dict[str, Any]]:
    """The 64-chip plan with its assignment edited to ``chips``: the planner makes no TPU
    placement off the slice sizes (atk29), so such a count comes only from a document."""
    sc = Scenario.model_validate(_scenario())
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    plan["assignments"][0]["chips"] = chips
    return sc, plan


def test_the_planner_makes_no_placement_at_a_count_no_slice_has(rules: RuleSet) -> None:
    sc = Scenario.model_validate(_scenario(48))
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    assert not plan["assignments"]
    (un,) = plan["unplaced"]
    assert un["lost_codes"] == {"capacity": 1}


def test_a_plan_at_a_count_no_slice_has_is_refused_naming_the_field(rules: RuleSet) -> None:
    sc, plan = _plan_at(48, rules)
    with pytest.raises(InputError) as e:
        export_input(sc, plan, rules, plan_id="tpu-plan", run="python train.py")
    assert e.value.path == "assignments[0].chips"


@pytest.mark.parametrize(
    ("named", "accelerators", "jobs"),
    [("tpu-v4", "tpu-v4-128:1", 1), ("TPU-v4-128", "tpu-v4-128:1", 1), ("tpu-v4-8", None, 0)],
)
def test_the_pools_skypilot_accelerator_is_a_prefix_or_the_planned_slice(
    named: str, accelerators: str | None, jobs: int, rules: RuleSet
) -> None:
    """An override used to be written as given with the GPU layout: ``tpu-v4-8:8`` again."""
    r = _export(_scenario(skypilot_accelerator=named), rules)
    assert r.jobs == jobs, r.notes
    if accelerators is None:
        assert any(
            n.startswith("w/pre: sites[0].pools[0].targets.skypilot_accelerator: 'tpu-v4-8'")
            for n in r.notes
        ), r.notes
        return
    task = _tasks(r.files)["w-pre"]
    assert task["num_nodes"] == 1
    assert task["resources"]["any_of"][0]["accelerators"] == accelerators


@pytest.mark.parametrize("h100_price", [9.0, 0.5])
def test_gpu_and_tpu_options_do_not_share_a_task_of_another_node_count(
    h100_price: float, rules: RuleSet
) -> None:
    """SkyPilot's ``num_nodes`` is per task: 64 H100s are 8 nodes, 64 TPU v4 chips one slice
    on one node; an alternative of the other layout is left out, with a note."""
    doc = _scenario()
    doc["sites"].append(copy.deepcopy(H100_SITE))
    doc["sites"][1]["pools"][0]["usd_per_chip_hour"] = h100_price
    r = _export(doc, rules)
    task = _tasks(r.files)["w-pre"]
    (only,) = task["resources"]["any_of"]
    if h100_price > 3.2:  # the TPU is planned
        assert (task["num_nodes"], only["accelerators"]) == (1, "tpu-v4-128:1")
        assert any("us-aws/H100-SXM needs 8 node(s)" in n for n in r.notes), r.notes
    else:
        assert (task["num_nodes"], only["accelerators"]) == (8, "H100:8")
        assert any("us-gcp/TPU-v4 is one TPU slice on one node" in n for n in r.notes), r.notes


def test_a_tpu_serving_replica_is_a_whole_slice(rules: RuleSet) -> None:
    """A 1B model's replica fits one chip; the smallest v4 slice is 4 chips (v4-8)."""
    doc = _scenario()
    doc["workloads"][0]["stages"].append(
        {"id": "chat", "kind": "serve", "after": ["pre"], "chips": 16, "days": 2}
    )
    r = _export(doc, rules)
    assert r.jobs == 2, r.notes
    svc = yaml.safe_load(r.files["skypilot/w-chat.service.yaml"])
    assert svc["num_nodes"] == 1
    assert svc["resources"]["any_of"][0]["accelerators"] == "tpu-v4-8:1"
    assert svc["service"]["replicas"] == 4
    assert svc["envs"]["STRAITS_REPLICA_CHIPS"] == "4"


def test_the_admission_hook_maps_a_slice_back_to_the_tpu_pool() -> None:
    sc = Scenario.model_validate(_scenario())
    site = sc.site("us-gcp")
    assert chip_of(site, "tpu-v4-128") == "TPU-v4"
    assert chip_of(site, "tpu-v4-96") is None  # no slice of 48 chips


def test_the_cli_refuses_a_tpu_count_no_slice_has_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "tpu.yaml").write_text(yaml.safe_dump(_scenario()))

    def straits(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "straits", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "1000"},
            timeout=300,
            cwd=tmp_path,
        )

    made = straits("plan", "tpu.yaml", "--json", "--solver", "greedy")
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert doc["assignments"][0]["chips"] == 64
    doc["assignments"][0]["chips"] = 48
    doc["assignments"][0].pop("layout", None)  # its layout is of 64 chips (layout_fits)
    del doc["id"], doc["digest"]  # an edited plan used as a new one
    (tmp_path / "plan.json").write_text(json.dumps(doc))
    out = tmp_path / "out"
    p = straits("export", "plan.json", "--to", "skypilot", "-o", str(out), "--run", "python x.py")
    assert p.returncode == 2, p.stderr
    assert "assignments[0].chips" in p.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("chip", "chips", "name"),
    [
        ("TPU-v5e", 1, "tpu-v5litepod-1"),  # v5e and v6e count chips
        ("TPU-v5e", 8, "tpu-v5litepod-8"),
        ("TPU-v5e", 256, "tpu-v5litepod-256"),
        ("TPU-v5e", 2, None),
        ("TPU-v5e", 512, None),  # a v5e pod is 256 chips
        ("TPU-v6e", 4, "tpu-v6e-4"),
        ("TPU-v6e", 64, "tpu-v6e-64"),
        ("TPU-v6e", 3, None),
        ("TPU-v6e", 320, None),
        ("TPU-v5p", 4, "tpu-v5p-8"),  # v5p counts TensorCores, two a chip
        ("TPU-v5p", 16, "tpu-v5p-32"),
        ("TPU-v5p", 64, "tpu-v5p-128"),
        ("TPU-v5p", 6144, "tpu-v5p-12288"),  # 16x16x24, the largest slice
        ("TPU-v5p", 1, None),
        ("TPU-v5p", 48, None),
        ("TPU-v5p", 6208, None),
    ],
)
def test_later_generations_are_named_as_skypilot_names_them(
    chip: str, chips: int, name: str | None
) -> None:
    """fix90: v5e, v5p and v6e slices, at Google's sizes only."""
    s = GENERATIONS[chip]
    assert s.name(chips) == name
    assert s.chips_ok(chips) == (name is not None)


def test_at_least_and_sizes_of_a_generation_without_cubes() -> None:
    v5e = GENERATIONS["TPU-v5e"]
    assert [v5e.at_least(n) for n in (1, 2, 5, 200, 256, 257)] == [1, 4, 8, 256, 256, None]
    assert v5e.sizes() == "1, 4, 8, 16, 32, 64, 128, 256 chips"
    assert GENERATIONS["TPU-v5p"].at_least(65) == 128


def test_only_the_catalogs_tpus_are_mapped() -> None:
    """No chip is invented: a generation is exported once the catalog has its chip (with
    sourced figures): v4, v5e, v5p and v6e today."""
    from straits.catalog.chips import catalog

    tpus = {c.id for c in catalog() if c.family == "tpu"}
    assert set(TPU_SLICES) == tpus == {"TPU-v4", "TPU-v5e", "TPU-v5p", "TPU-v6e"}
    assert set(GENERATIONS) >= tpus
    for acc, chip in (("tpu-v5litepod-8", "TPU-v5e"), ("tpu-v5p-8", "TPU-v5p")):
        assert chip_of_slice(acc) == chip, acc
    assert chip_of_slice("tpu-v6e-8") == "TPU-v6e"
    for acc in ("tpu-v5litepod-2", "tpu-v6e-512", "tpu-v5p-2", "tpu-v3-8"):
        assert chip_of_slice(acc) is None, acc


def test_a_generation_the_catalog_gains_is_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TPU_SLICES, "TPU-v5p", GENERATIONS["TPU-v5p"])
    monkeypatch.setitem(TPU_SLICES, "TPU-v6e", GENERATIONS["TPU-v6e"])
    assert slice_for("TPU-v5p", 64) == ("tpu-v5p-128", "")
    assert slice_for("TPU-v5p", 64, "tpu-v5p") == ("tpu-v5p-128", "")
    assert chip_of_slice("tpu-v5p-128") == "TPU-v5p"
    assert chip_of_slice("tpu-v6e-8") == "TPU-v6e"
    assert chip_of_slice("tpu-v5p-128") != chip_of_slice("tpu-v4-128")
    got, why = slice_for("TPU-v6e", 12)
    assert got is None
    assert (
        why
        == "12 TPU-v6e chips are no tpu-v6e slice (slices of 1, 4, 8, 16, 32, 64, 128, 256 chips)"
    )
    got, why = slice_for("TPU-v6e", 8, "tpu-v5p")
    assert got is None and "is not a TPU-v6e slice" in why
