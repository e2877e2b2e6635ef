"""Every export gives a training stage's command the parallel layout the plan priced (pass
atk91 found none did: a command that picks another layout runs at another speed than planned)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.export import TARGETS, exporter
from straits.export.base import export_input, layout_env
from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.rules import ruleset


@pytest.mark.parametrize(
    ("layout", "want"),
    [
        (
            "TP4 PP1 DP512 ZeRO-3",
            {"STRAITS_TP": "4", "STRAITS_PP": "1", "STRAITS_DP": "512", "STRAITS_ZERO": "3"},
        ),
        (
            "TP8 PP4 DP16 EP8 ZeRO-1 recompute=selective",
            {
                "STRAITS_TP": "8",
                "STRAITS_PP": "4",
                "STRAITS_DP": "16",
                "STRAITS_EP": "8",
                "STRAITS_ZERO": "1",
                "STRAITS_RECOMPUTE": "selective",
            },
        ),
        ("TPx PP2 whatever", {"STRAITS_PP": "2"}),  # a part it does not know: the text alone
        ("TP99999999999 DP2", {"STRAITS_DP": "2"}),
    ],
)
def test_a_layout_is_read_into_its_parts(layout: str, want: dict[str, str]) -> None:
    assert layout_env(layout) == {"STRAITS_LAYOUT": layout, **want}


@pytest.mark.parametrize("layout", [None, "", "   ", 42, ["TP4"]])
def test_no_layout_gives_no_variables(layout: Any) -> None:
    assert layout_env(layout) == {}


def _envs(target: str, text: str) -> list[dict[str, str]]:
    """The environments a target's file gives its commands."""
    if target == "slurm":
        found = re.findall(r"^export (STRAITS_[A-Z]+)=(.+)$", text, re.MULTILINE)
        return [{k: shlex.split(v)[0] for k, v in found}]
    out = []
    for doc in yaml.safe_load_all(text):
        stack = [doc]
        while stack:  # every `env:` list and `envs:` mapping, however deep
            node = stack.pop()
            if isinstance(node, dict):
                if isinstance(node.get("envs"), dict):
                    out.append({k: str(v) for k, v in node["envs"].items()})
                if isinstance(node.get("env"), list):
                    out.append({e["name"]: str(e.get("value")) for e in node["env"]})
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return out


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_gives_a_training_stage_its_planned_layout(
    example_path: Path, target: str
) -> None:
    rules = ruleset(())
    sc = parse_scenario(yaml.safe_load(example_path.read_text("utf-8")), source="offshore")
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    inp = export_input(sc, plan, rules, plan_id="p", run="train")
    res = exporter(target).render(inp)
    training = [j for j in inp.jobs if not j.serving]
    assert training
    for job in training:
        layout = job.placement.raw["layout"]
        assert layout.startswith("TP")
        want = layout_env(layout)
        found = [
            env
            for path, text in res.files.items()
            if path.endswith(".sbatch" if target == "slurm" else (".yaml", ".yml"))
            for env in _envs(target, text)
            if (env.get("STRAITS_WORKLOAD"), env.get("STRAITS_STAGE")) == (job.workload, job.stage)
        ]
        assert found, (target, job.name, sorted(res.files))
        for env in found:
            got = {k: env.get(k) for k in want}
            assert got == want, (target, job.name)
