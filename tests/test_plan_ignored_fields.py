"""A training stage that sets serving's fields (``days``, ``tokens_per_s``, ``prompt_tokens``,
``output_tokens``) is planned as without them, and the plan's notes say each was ignored: a
fine-tune given ``days: 3`` ran for weeks with no word that the 3 days were never read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from straits.store.records import scenario_document

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "offshore-2025.yaml"


def _plan(rules: RuleSet, **sft: Any) -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    stage = next(s for w in doc["workloads"] for s in w["stages"] if s["id"] == "sft")
    stage.update(sft)
    return make_plan(parse_scenario(doc), rules=rules, solver="greedy").to_json()


def _ignored(plan: dict[str, Any]) -> list[str]:
    return sorted(n.split("`")[1] for n in plan["notes"] if "applies to serving stages only" in n)


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"days": 3},
        {"tokens_per_s": 5000, "prompt_tokens": 16},
        {"output_tokens": 512},
    ],
    ids=lambda f: ",".join(f) or "none",
)
def test_serving_fields_on_a_training_stage_are_noted_and_change_nothing(
    rules: RuleSet, fields: dict[str, Any]
) -> None:
    base = _plan(rules)
    plan = _plan(rules, **fields)
    assert _ignored(plan) == sorted(fields)
    assert _ignored(base) == []
    assert [(a["stage"], a["site"], a["chips"]) for a in plan["assignments"]] == [
        (a["stage"], a["site"], a["chips"]) for a in base["assignments"]
    ]


def test_a_scenario_read_back_from_its_document_notes_the_same(rules: RuleSet) -> None:
    """The API plans the scenario it stored (defaults written out): every training stage's
    four serving fields were noted as ignored there, where the CLI noted none."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    sc = parse_scenario(doc)
    stored = parse_scenario(scenario_document(sc))
    for s in (sc, stored):
        assert [st.ignored_fields() for w in s.workloads for st in w.stages] == [(), (), ()]
    sft = next(s for w in doc["workloads"] for s in w["stages"] if s["id"] == "sft")
    sft["days"] = 3
    again = parse_scenario(scenario_document(parse_scenario(doc)))
    assert [st.ignored_fields() for w in again.workloads for st in w.stages] == [(), ("days",), ()]


def test_an_assumed_count_of_people_is_still_noted_once_read_back(rules: RuleSet) -> None:
    """A personal dataset with no `subjects` is read as 1,000,000 individuals with a note to
    give the count: the API plans the stored scenario, where it read as given (no note)."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    ds = next(d for d in doc["datasets"] if d["id"] == "cn-dialogs")
    del ds["subjects"], ds["sensitive_subjects"]
    sc = parse_scenario(doc)
    stored = parse_scenario(scenario_document(sc))
    assert [d.subjects_assumed for d in stored.datasets] == [
        d.subjects_assumed for d in sc.datasets
    ]
    assert [d.subjects for d in stored.datasets] == [d.subjects for d in sc.datasets]
    assert any(d.subjects_assumed for d in stored.datasets)
    given = parse_scenario(scenario_document(parse_scenario(yaml.safe_load(EXAMPLE.read_text()))))
    assert not any(d.subjects_assumed for d in given.datasets)
