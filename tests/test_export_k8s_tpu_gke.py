"""TPU stages on Kubernetes and Karmada as GKE runs Cloud TPUs (k8stpu95).

The export asked a TPU pool without ``kubernetes_resource`` as ``nvidia.com/gpu``, 8 a pod (a
note said so, atk93): no TPU node offers that resource. A TPU stage is now asked as GKE asks a
TPU slice: ``google.com/tpu`` (the chips of one TPU VM host a pod), node selectors
``cloud.google.com/gke-tpu-accelerator`` and ``cloud.google.com/gke-tpu-topology``, one pod per
host; a slice size without a sourced topology is left out with a note; a pool's explicit
``kubernetes_resource`` still wins."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from straits.catalog.tpu_slices import GENERATIONS, GKE_TPU
from straits.export import export_input, exporter
from straits.export.base import ExportResult
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from straits.store.records import scenario_document
from test_export_skypilot_tpu import SCENARIO

K8S = {"cluster": "gke", "namespace": "training", "queue": "training"}
ACCEL = "cloud.google.com/gke-tpu-accelerator"
TOPO = "cloud.google.com/gke-tpu-topology"


def _doc(chip: str, chips: int, serve: int = 0, **pool_targets: Any) -> dict[str, Any]:
    doc = copy.deepcopy(SCENARIO)
    doc["sites"][0]["targets"]["kubernetes"] = K8S
    pool = doc["sites"][0]["pools"][0]
    pool["chip"] = chip
    pool["count"] = max(chips, serve, 256)
    if pool_targets:
        pool["targets"] = pool_targets
    # a 125M-parameter model: one v5e chip holds its training state
    doc["workloads"][0]["model"] = {
        "params": 1.25e8,
        "layers": 12,
        "d_model": 768,
        "heads": 12,
        "seq_len": 2048,
    }
    doc["datasets"][0]["tokens"] = 2.0e9
    doc["workloads"][0]["stages"][0]["chips"] = chips
    if serve:
        doc["workloads"][0]["stages"].append(
            {"id": "chat", "kind": "serve", "after": ["pre"], "chips": serve, "days": 2}
        )
    return doc


def _render(doc: dict[str, Any], rules: RuleSet, target: str = "kubernetes") -> ExportResult:
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    assert not plan["unplaced"], plan["unplaced"]
    inp = export_input(sc, plan, rules, plan_id="p", run="python t.py")
    return exporter(target).render(inp)


def _docs(r: ExportResult) -> list[dict[str, Any]]:
    return [
        d
        for path, text in r.files.items()
        if path.endswith(".yaml")
        for d in yaml.safe_load_all(text)
        if d
    ]


def _pods(d: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """(pods, pod spec) of each pod set of a workload object: a JobSet's Job, a Deployment's
    replica, a LeaderWorkerSet group's leader and workers."""
    if d["kind"] == "JobSet":
        job = d["spec"]["replicatedJobs"][0]["template"]["spec"]
        return [(job["parallelism"], job["template"]["spec"])]
    if d["kind"] == "Deployment":
        return [(1, d["spec"]["template"]["spec"])]
    lwt = d["spec"]["leaderWorkerTemplate"]
    return [(1, lwt["leaderTemplate"]["spec"]), (lwt["size"] - 1, lwt["workerTemplate"]["spec"])]


def _asked(d: dict[str, Any]) -> tuple[int, int, dict[str, str]]:
    """(pods of one gang, chips of each, node selector) of a workload object."""
    sets = _pods(d)
    specs = [s for _, s in sets]
    limits = {tuple(s["containers"][0]["resources"]["limits"].items()) for s in specs}
    assert len(limits) == 1, limits
    ((res, chips),) = next(iter(limits))
    assert res == "google.com/tpu"
    assert all(s["containers"][0]["resources"]["requests"] == {res: chips} for s in specs)
    selectors = [s.get("nodeSelector", {}) for s in specs]
    assert all(x == selectors[0] for x in selectors)
    return sum(n for n, _ in sets), int(chips), selectors[0]


# generation, chips of the slice -> accelerator label, topology, pods (TPU VM hosts), chips a pod
TRAINING = [
    ("TPU-v4", 4, "tpu-v4-podslice", "2x2x1", 1, 4),
    ("TPU-v4", 8, "tpu-v4-podslice", "2x2x2", 2, 4),
    ("TPU-v4", 16, "tpu-v4-podslice", "2x2x4", 4, 4),
    ("TPU-v4", 32, "tpu-v4-podslice", "2x4x4", 8, 4),
    ("TPU-v4", 64, "tpu-v4-podslice", "4x4x4", 16, 4),
    ("TPU-v4", 128, "tpu-v4-podslice", "4x4x8", 32, 4),
    ("TPU-v4", 2048, "tpu-v4-podslice", "8x16x16", 512, 4),
    ("TPU-v5p", 4, "tpu-v5p-slice", "2x2x1", 1, 4),
    ("TPU-v5p", 16, "tpu-v5p-slice", "2x2x4", 4, 4),
    ("TPU-v5p", 256, "tpu-v5p-slice", "4x8x8", 64, 4),
    ("TPU-v5p", 6144, "tpu-v5p-slice", "16x16x24", 1536, 4),
    ("TPU-v5e", 1, "tpu-v5-lite-podslice", "1x1", 1, 1),
    ("TPU-v5e", 4, "tpu-v5-lite-podslice", "2x2", 1, 4),
    ("TPU-v5e", 8, "tpu-v5-lite-podslice", "2x4", 1, 8),
    ("TPU-v5e", 16, "tpu-v5-lite-podslice", "4x4", 4, 4),
    ("TPU-v5e", 256, "tpu-v5-lite-podslice", "16x16", 64, 4),
    ("TPU-v6e", 1, "tpu-v6e-slice", "1x1", 1, 1),
    ("TPU-v6e", 8, "tpu-v6e-slice", "2x4", 1, 8),
    ("TPU-v6e", 32, "tpu-v6e-slice", "4x8", 8, 4),
    ("TPU-v6e", 128, "tpu-v6e-slice", "8x16", 32, 4),
]


@pytest.mark.parametrize("target", ["kubernetes", "karmada"])
@pytest.mark.parametrize(
    ("chip", "chips", "accel", "topo", "pods", "per_pod"),
    TRAINING,
    ids=[f"{c}-{n}" for c, n, *_ in TRAINING],
)
def test_a_tpu_training_stage_is_asked_as_gke_runs_its_slice(
    rules: RuleSet,
    target: str,
    chip: str,
    chips: int,
    accel: str,
    topo: str,
    pods: int,
    per_pod: int,
) -> None:
    r = _render(_doc(chip, chips), rules, target)
    (jobset,) = [d for d in _docs(r) if d["kind"] == "JobSet"]
    assert _asked(jobset) == (pods, per_pod, {ACCEL: accel, TOPO: topo})
    env = {
        e["name"]: e.get("value")
        for e in _pods(jobset)[0][1]["containers"][0]["env"]
        if "value" in e
    }
    assert (env["NNODES"], env["NPROC_PER_NODE"]) == (str(pods), str(per_pod))
    assert not [n for n in r.notes if "nvidia.com/gpu" in n or "left out" in n], r.notes
    assert r.jobs == 1


SERVING = [
    # a 125M model's replica fits one chip: the replica is the smallest slice
    ("TPU-v4", 16, 4, "Deployment", "2x2x1", 1, 4),
    ("TPU-v5p", 8, 2, "Deployment", "2x2x1", 1, 4),
    ("TPU-v5e", 4, 4, "Deployment", "1x1", 1, 1),
    ("TPU-v6e", 2, 2, "Deployment", "1x1", 1, 1),
]


@pytest.mark.parametrize(
    ("chip", "chips", "replicas", "kind", "topo", "pods", "per_pod"),
    SERVING,
    ids=[c for c, *_ in SERVING],
)
def test_a_tpu_serving_replica_is_one_slice_on_gke(
    rules: RuleSet,
    chip: str,
    chips: int,
    replicas: int,
    kind: str,
    topo: str,
    pods: int,
    per_pod: int,
) -> None:
    r = _render(_doc(chip, 4 if chip != "TPU-v5e" else 1, serve=chips), rules)
    (serve,) = [d for d in _docs(r) if d["kind"] in ("Deployment", "LeaderWorkerSet")]
    assert serve["kind"] == kind
    assert serve["spec"]["replicas"] == replicas
    got = _asked(serve)
    assert got == (pods, per_pod, {ACCEL: GKE_TPU[chip].accelerator, TOPO: topo})


def test_a_multi_host_tpu_replica_is_a_leaderworkerset_of_its_hosts(rules: RuleSet) -> None:
    """A replica of a 70B model does not fit a 16 GB v5e host of 8 chips: it is a multi-host
    slice, one LeaderWorkerSet group of its hosts, 4 chips each."""
    doc = _doc("TPU-v5e", 256, serve=256)
    doc["workloads"][0]["model"] = {
        "params": 7.0e10,
        "layers": 80,
        "d_model": 8192,
        "heads": 64,
        "seq_len": 4096,
    }
    r = _render(doc, rules)
    (lws,) = [d for d in _docs(r) if d["kind"] == "LeaderWorkerSet"]
    pods, per_pod, selector = _asked(lws)
    assert per_pod == 4 and selector[ACCEL] == "tpu-v5-lite-podslice"
    want = {16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}
    assert selector[TOPO] == want[pods * 4]
    assert lws["spec"]["replicas"] == 256 // (pods * 4)


@pytest.mark.parametrize("target", ["kubernetes", "karmada"])
def test_a_slice_size_without_a_sourced_topology_is_left_out_with_a_note(
    rules: RuleSet, target: str
) -> None:
    """192 TPU v4 chips are a slice (three cubes), but no topology of that size is sourced:
    the stage is not guessed at."""
    r = _render(_doc("TPU-v4", 192), rules, target)
    assert not [d for d in _docs(r) if d["kind"] == "JobSet"]
    assert r.jobs == 0
    assert any("192" in n and "topology" in n and "left out" in n for n in r.notes), r.notes


@pytest.mark.parametrize("target", ["kubernetes", "karmada"])
def test_an_explicit_kubernetes_resource_still_wins(rules: RuleSet, target: str) -> None:
    doc = _doc(
        "TPU-v4",
        64,
        kubernetes_resource="example.com/tpu",
        kubernetes_node_labels={"pool": "tpu"},
    )
    r = _render(doc, rules, target)
    (jobset,) = [d for d in _docs(r) if d["kind"] == "JobSet"]
    job = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]
    spec = job["template"]["spec"]
    assert spec["containers"][0]["resources"]["limits"] == {"example.com/tpu": "8"}
    assert job["parallelism"] == 8
    assert "nodeSelector" not in spec
    assert r.jobs == 1


@pytest.mark.parametrize("target", ["kubernetes", "karmada"])
def test_a_stored_scenario_read_back_is_still_asked_as_gke(rules: RuleSet, target: str) -> None:
    """Exports of a plan document or a recorded plan read the scenario as stored, its
    defaults written out (``kubernetes_resource: nvidia.com/gpu``): a TPU pool with node
    labels was asked as 8 ``nvidia.com/gpu`` a pod there, and as GKE's slice in memory."""
    doc = _doc("TPU-v5e", 16, kubernetes_node_labels={"pool": "tpu"})
    stored = scenario_document(Scenario.model_validate(doc))
    asked = []
    for d in (doc, stored):
        (jobset,) = [x for x in _docs(_render(d, rules, target)) if x["kind"] == "JobSet"]
        asked.append(_asked(jobset))
    assert asked[1] == asked[0] == (4, 4, {ACCEL: "tpu-v5-lite-podslice", TOPO: "4x4"})


def test_every_mapped_topology_has_the_chips_of_its_slice() -> None:
    for chip, gke in GKE_TPU.items():
        slices = GENERATIONS[chip]
        for chips, topo in gke.topologies.items():
            product = 1
            for n in topo.split("x"):
                product *= int(n)
            assert product == chips, (chip, chips, topo)
            assert slices.chips_ok(chips), (chip, chips)
            hosts, per_host = gke.hosts(chips)
            assert hosts * per_host == chips
