"""Ids that Kubernetes' YAML reader takes for something other than a string.

kubectl reads manifests with sigs.k8s.io/yaml (go-yaml v2, YAML 1.1), where a bare ``y`` or
``n`` is a boolean, ``1e10`` or ``1.5e3`` a float and ``0o17`` an int. PyYAML, which writes the
exports, reads none of these as such, so it wrote them bare: a workload ``y`` or a stage
``1e10`` gave labels, annotations and env values that kubectl refused to decode ("cannot
unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string"). Such strings
are now quoted."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from straits.export import export_input, exporter
from straits.export.base import dump_yaml
from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.rules import RuleSet

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "offshore-2025.yaml"
#: strings go-yaml v2 reads bare as a bool, null, int or float, and PyYAML writes bare
GO_YAML_NON_STRINGS = ["y", "Y", "n", "N", "1e10", "1E5", "1.5e3", ".5e3", "0o17", "0O17"]
#: strings that stay strings in both, written bare as before
PLAIN = ["yak", "n1", "1e10-x", "e10", "0x1p-2", "chat-72b"]


@pytest.mark.parametrize("text", GO_YAML_NON_STRINGS)
def test_a_string_kubernetes_reads_otherwise_is_quoted(text: str) -> None:
    line = dump_yaml({"k": text}).strip()
    assert line[3] in "'\"", line
    assert yaml.safe_load(line) == {"k": text}


@pytest.mark.parametrize("text", PLAIN)
def test_other_strings_stay_bare(text: str) -> None:
    assert dump_yaml({"k": text}).strip() == f"k: {text}"


@pytest.fixture(scope="module")
def odd_ids(rules: RuleSet) -> dict[str, dict[str, str]]:
    """The example with the workload named ``y`` and its fine-tune ``1e10``, exported."""
    doc = load_scenario(EXAMPLE).model_dump(mode="json")
    w = doc["workloads"][0]
    w["id"] = "y"
    for stage in w["stages"]:
        if stage["id"] == "sft":
            stage["id"] = "1e10"
        stage["after"] = ["1e10" if a == "sft" else a for a in stage["after"]]
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="0o17", run="true")
    return {t: exporter(t).render(inp).files for t in ("kubernetes", "karmada", "skypilot")}


def test_odd_ids_read_back_as_strings(odd_ids: dict[str, dict[str, str]]) -> None:
    for files in odd_ids.values():
        for path, text in files.items():
            if not path.endswith(".yaml"):
                continue
            for d in yaml.safe_load_all(text):
                labels = d.get("metadata", {}).get("labels", {}) if "kind" in d else {}
                assert all(isinstance(v, str) for v in labels.values()), (path, labels)
    # every plain scalar of the manifests is one go-yaml v2 also reads as a string
    for files in (odd_ids["kubernetes"], odd_ids["karmada"]):
        for path, text in files.items():
            if not path.endswith(".yaml"):
                continue
            for event in yaml.parse(text):
                if isinstance(event, yaml.ScalarEvent) and event.style is None:
                    assert event.value not in GO_YAML_NON_STRINGS, (path, event.value)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_decodes_every_manifest(odd_ids: dict[str, dict[str, str]], tmp_path: Path) -> None:
    for target in ("kubernetes", "karmada"):
        for path, text in odd_ids[target].items():
            if not path.endswith(".yaml"):
                continue
            f = tmp_path / Path(path).name
            f.write_text(text)
            p = subprocess.run(
                ["kubectl", "apply", "--dry-run=client", "--validate=false", "-f", str(f)],
                capture_output=True,
                text=True,
                timeout=120,
                env={"PATH": "/usr/bin:/bin", "KUBECONFIG": str(tmp_path / "none")},
            )
            # no cluster here: it stops at finding the API, after decoding (or not) the file
            assert "unable to decode" not in p.stderr, (path, p.stderr)
