"""Scenario loading: the shipped example loads; every kind of bad input names its field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from straits.errors import ScenarioError
from straits.loading import load_scenario, parse_scenario
from straits.model.scenario import Scenario


@pytest.fixture(scope="module")
def base(example_path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(example_path.read_text())
    return doc


def test_example_loads_and_is_immutable(example_path: Path) -> None:
    sc = load_scenario(example_path)
    assert sc.name == "offshore-2025"
    assert sc.site("sg-jurong").pools[0].chip == "H100-SXM"
    with pytest.raises(ValidationError):
        sc.sites[0].pools[0].count = 1  # type: ignore[misc]
    assert isinstance(sc.workloads[0].stages, tuple)


def test_json_with_the_same_shape_is_accepted(example_path: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(example_path.read_text())
    p = tmp_path / "s.json"
    p.write_text(json.dumps(data, default=str))
    assert load_scenario(p) == load_scenario(example_path)


def test_chip_ids_are_canonicalized(base: dict[str, Any]) -> None:
    d = copy.deepcopy(base)
    d["sites"][0]["pools"][0]["chip"] = "h100-sxm"
    assert parse_scenario(d).sites[0].pools[0].chip == "H100-SXM"


def _mutate(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    d = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = d
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is KeyError:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return d


# (mutation path, new value, expected field path in the error, words the message must contain)
BAD = [
    ("sites.0.pools.0.chip", "H300", "sites[0].pools[0].chip", "unknown chip 'H300'"),
    ("datasets.0.tokens", KeyError, "datasets[0].tokens", "required field is missing"),
    ("workloads.0.stages.0.after", ["serve-intl"], "workloads[0].stages", "cycle"),
    ("sites.1.pools.0.count", -5, "sites[1].pools[0].count", "greater than or equal to 0"),
    (
        "workloads.0.stages.1.datasets",
        ["nope"],
        "workloads[0].stages[1].datasets[0]",
        "unknown dataset 'nope'",
    ),
    (
        "workloads.0.stages.1.after",
        ["pre-train"],
        "workloads[0].stages[1].after[0]",
        "unknown stage 'pre-train'",
    ),
    ("workloads.0.tenant", "acme", "workloads[0].tenant", "unknown tenant 'acme'"),
    ("datasets.1.located_at", "mars", "datasets[1].located_at", "unknown site 'mars'"),
    ("tenants.0.hq", "XX", "tenants[0].hq", "ISO 3166-1"),
    ("sites.0.wan_gpbs", 5, "sites[0].wan_gpbs", "unknown field"),
    ("regime", "wishful", "regime", "'enacted' or 'ai-diffusion'"),
    ("workloads.0.model.active_params", 1e12, "workloads[0].model", "must not exceed params"),
    ("datasets.0.classes", [], "datasets[0].classes", "at least 1 item"),
    ("sites.1.id", "sg-jurong", "sites[1]", "duplicate id 'sg-jurong'"),
    ("workloads.0.stages.2.chips", KeyError, "workloads[0].stages[2]", "`chips` or `tokens_per_s`"),
    ("tenants.0.authorizations", ["bis-licence"], "tenants[0].authorizations[0]", "'bis-license'"),
    ("date", "2025-13-01", "date", "date"),
    (
        "sites.0.targets.kubernetes.cluster",
        "SG_Jurong",
        "sites[0].targets.kubernetes.cluster",
        "pattern",
    ),
    (
        "sites.0.targets.slurm.gpus_per_node",
        0,
        "sites[0].targets.slurm.gpus_per_node",
        "greater than or equal to 1",
    ),
    ("sites.0.targets.skypilot.regoin", "x", "sites[0].targets.skypilot.regoin", "unknown field"),
    (
        "sites.0.pools.0.targets.kubernetes_node_labels",
        {"bad key!": "v"},
        "sites[0].pools[0].targets.kubernetes_node_labels (key 'bad key!')",
        "pattern",
    ),
    ("sites.0.source", "ok\x1b]52;c;cm0gLXJmIH4=\x07", "sites[0].source", "control character"),
    # a right-to-left override shows other text than the field holds (Trojan Source)
    ("sites.0.source", "see \u202egnp.exe", "sites[0].source", "control character"),
    ("sites.0.source", "a\u2067b\u2069", "sites[0].source", "control character"),
    # a URI is one token: exports write it into YAML that SkyPilot hands to its sync commands
    ("datasets.0.uri", "s3://b/x'\n$(id)\nrun: evil", "datasets[0].uri", "pattern"),
    ("datasets.0.uri", "s3://b/x y", "datasets[0].uri", "pattern"),
    ("datasets.0.uri", "s3://b/`id`", "datasets[0].uri", "pattern"),
    # `bash -c "   "` succeeds: the stage is done, having run nothing (a fresh-eye attack)
    ("workloads.0.stages.0.command", "   ", "workloads[0].stages[0].command", "white space"),
    ("workloads.0.stages.0.command", "\t\r\n", "workloads[0].stages[0].command", "white space"),
]


@pytest.mark.parametrize(
    ("path", "value", "field", "words"), BAD, ids=[b[0] + "=" + str(b[1]) for b in BAD]
)
def test_bad_scenarios_name_the_field(
    base: dict[str, Any], path: str, value: Any, field: str, words: str
) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(_mutate(base, path, value), source="s.yaml")
    msg = str(exc.value)
    assert msg.startswith(f"s.yaml: {field}: "), msg
    assert words in msg
    assert "\n" not in msg


def test_broken_yaml_gives_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "broken.yaml"
    p.write_text("straits: 1\nname: x\n  date: [2025\n")
    with pytest.raises(ScenarioError, match=r"broken.yaml: not valid YAML/JSON at line 3"):
        load_scenario(p)


def test_missing_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")
    p = tmp_path / "list.yaml"
    p.write_text("- 1\n- 2\n")
    with pytest.raises(ScenarioError, match="mapping at the top level"):
        load_scenario(p)


def test_yaml_boolean_country_is_explained(base: dict[str, Any]) -> None:
    d = copy.deepcopy(base)
    d["tenants"][0]["hq"] = False  # what an unquoted NO (Norway) becomes in YAML
    with pytest.raises(ScenarioError, match='quote country codes such as "NO"'):
        parse_scenario(d)


def test_direct_construction_checks_references_too(base: dict[str, Any]) -> None:
    d = _mutate(base, "workloads.0.tenant", "acme")
    with pytest.raises(ScenarioError, match="unknown tenant"):
        Scenario.model_validate(d)
