"""A TPU pool on a site SkyPilot reaches through Kubernetes (atk93). SkyPilot names Cloud TPU
slices (``tpu-v6e-1``, ``tpu-v5p-8``) on GCP only; on a GKE cluster it asks podslices by other
names (``tpu-v5-lite-podslice``), so ``infra: kubernetes/...`` with a Cloud TPU slice is a
candidate SkyPilot can never launch. docs/exports.md says such TPUs are not exported, yet the
export wrote them, as an alternative of a GCP slice and as the planned resource itself."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from straits.rules import RuleSet
from test_export_skypilot_tpu import SCENARIO, _export

GKE_SITE: dict[str, Any] = {
    "id": "gke",
    "country": "US",
    "operator_hq": "US",
    "targets": {"skypilot": {"cloud": "kubernetes", "region": "gke-tpu"}},
    "pools": [{"chip": "TPU-v4", "count": 256, "usd_per_chip_hour": 3.0}],
}


def _resources(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(text):
        r = (doc or {}).get("resources")
        if isinstance(r, dict):
            out.extend(r.get("any_of") or r.get("ordered") or [r])
    return out


@pytest.mark.parametrize(
    ("gke_price", "planned_on_gke"),
    [(3.0, True), (3.4, False)],  # GCP's pool costs 3.2 a chip-hour
    ids=["planned-on-gke", "gke-an-alternative"],
)
def test_no_cloud_tpu_slice_is_asked_through_kubernetes(
    rules: RuleSet, gke_price: float, planned_on_gke: bool
) -> None:
    doc = copy.deepcopy(SCENARIO)
    site = copy.deepcopy(GKE_SITE)
    site["pools"][0]["usd_per_chip_hour"] = gke_price
    doc["sites"].append(site)
    r = _export(doc, rules)
    asked = [
        x for path, text in r.files.items() if path.endswith(".yaml") for x in _resources(text)
    ]
    assert not [x for x in asked if str(x.get("infra", "")).startswith("kubernetes")]
    assert any("gke/TPU-v4" in n and "Kubernetes" in n for n in r.notes), r.notes
    assert r.jobs == (0 if planned_on_gke else 1)


K8S = {"cluster": "gke", "namespace": "training", "queue": "training"}


@pytest.mark.parametrize("target", ["kubernetes", "karmada"])
@pytest.mark.parametrize("resource", [None, "google.com/tpu"])
def test_a_tpu_pool_is_never_asked_as_nvidia_gpus(
    rules: RuleSet, target: str, resource: str | None
) -> None:
    """Kubernetes and Karmada asked a TPU pool without ``kubernetes_resource`` as
    ``nvidia.com/gpu``, 8 a pod, without a word: no TPU node offers that resource. It was
    then said (atk93); it is now asked as GKE's ``google.com/tpu``, with the slice's node
    labels (k8stpu95, tests/test_export_k8s_tpu_gke.py), and a pool's own resource wins."""
    from straits.export import export_input, exporter
    from straits.model.scenario import Scenario
    from straits.plan import make_plan

    doc = copy.deepcopy(SCENARIO)
    doc["sites"][0]["targets"]["kubernetes"] = K8S
    if resource is not None:
        doc["sites"][0]["pools"][0]["targets"] = {"kubernetes_resource": resource}
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    r = exporter(target).render(export_input(sc, plan, rules, plan_id="p", run="python t.py"))
    assert not [n for n in r.notes if "nvidia.com/gpu" in n], r.notes
    limits = [
        x
        for path, text in r.files.items()
        if path.endswith(".yaml")
        for d in yaml.safe_load_all(text)
        for x in _walk(d, "limits")
    ]
    assert limits and all((resource or "google.com/tpu") in x for x in limits)
    assert not [x for x in limits if "nvidia.com/gpu" in x]


def _walk(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        here = [node[key]] if key in node else []
        return here + [y for v in node.values() for y in _walk(v, key)]
    if isinstance(node, list):
        return [y for v in node for y in _walk(v, key)]
    return []
