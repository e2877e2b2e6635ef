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

GKE_SITE = {
    "id": "gke",
    "country": "US",
    "operator_hq": "US",
    "targets": {"skypilot": {"cloud": "kubernetes", "region": "gke-tpu"}},
    "pools": [{"chip": "TPU-v4", "count": 256, "usd_per_chip_hour": 3.0}],
}


def _resources(text: str) -> list[dict[str, Any]]:
    out = []
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
