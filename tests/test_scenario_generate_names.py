"""`scenario generate -o` writes what the name says (atk67): `-o g.yaml.gz`, `.xz` or `.zip`
held plain YAML, exit 0, and `-o g.json` YAML; now a compression or archive name is exit 2 with
nothing written, and a `.json` name gets JSON (the same scenario)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from straits.loading import load_scenario
from test_ledger_cli import straits

ARGS = ("scenario", "generate", "--workloads", "2", "--sites", "3", "--seed", "7")


@pytest.mark.parametrize(
    "name", ["g.yaml.gz", "g.yaml.xz", "g.zip", "g.tgz", "g.tar", "G.YAML.ZST"]
)
def test_a_compressed_name_is_refused(tmp_path: Path, name: str) -> None:
    r = straits(*ARGS, "-o", str(tmp_path / name))
    assert r.returncode == 2 and "-o:" in r.stderr, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_json_name_gets_the_same_scenario_as_json(tmp_path: Path) -> None:
    assert straits(*ARGS, "-o", str(tmp_path / "g.json")).returncode == 0
    assert straits(*ARGS, "-o", str(tmp_path / "g.yaml")).returncode == 0
    json.loads((tmp_path / "g.json").read_text())  # JSON, not YAML
    a, b = (load_scenario(tmp_path / n) for n in ("g.json", "g.yaml"))
    assert a.model_dump() == b.model_dump()
    assert straits("scenario", "validate", str(tmp_path / "g.json")).returncode == 0
