"""A plan document's ``layout`` goes into every export as ``STRAITS_LAYOUT`` (pass atk91), so
a hand-edited one is read as the estimator writes it (atk93): printable ASCII on one line, at
most :data:`straits.plan_fields.MAX_LAYOUT` characters. 200,000 characters were exported as
they were: Linux refuses to start a program whose one variable is over 128 KiB
(MAX_ARG_STRLEN, E2BIG), so every process of the job failed to start."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.errors import InputError
from straits.export.base import layout_env
from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.plandoc import make_document, read_document
from straits.rules import ruleset


@pytest.fixture(scope="module")
def plan(example_path: Path) -> dict[str, Any]:
    raw = yaml.safe_load(example_path.read_text("utf-8"))
    sc = parse_scenario(raw, source="offshore")
    body = make_plan(sc, rules=ruleset(()), solver="greedy").to_json()
    doc = json.loads(json.dumps(make_document(body, raw, {}), default=str))
    assert doc["assignments"][0]["layout"].startswith("TP")
    return doc  # type: ignore[no-any-return]


def _edited(plan: dict[str, Any], layout: Any) -> dict[str, Any]:
    doc = copy.deepcopy(plan)
    doc.pop("id", None)
    doc.pop("digest", None)
    doc["assignments"][0]["layout"] = layout
    return doc


@pytest.mark.parametrize(
    "layout",
    [
        "TP4 " + "A" * 200_000,  # over MAX_ARG_STRLEN: no process of the job starts
        "TP4 " + "x" * 300,
        "TP4 PP1\nDP512: x",  # a second line the estimator never writes
        "TP4\tPP1",
        "TP4 PP1 DP512 ZeRO-3 \u00e9",
    ],
    ids=["200k", "over-max", "newline", "tab", "non-ascii"],
)
def test_a_layout_the_estimator_never_writes_is_refused(plan: dict[str, Any], layout: str) -> None:
    with pytest.raises(InputError) as exc:
        read_document(_edited(plan, layout), "edited")
    assert exc.value.exit_code == 2
    assert [p for p, _ in exc.value.problems] == ["assignments[0].layout"]


@pytest.mark.parametrize(
    "layout",
    [
        "TP4 PP1 DP512 ZeRO-3",
        "TP8 PP4 DP64 EP8 ZeRO-1 recompute=selective",  # of its 2,048 chips (layout_fits)
        "TP4 PP1 DP512 ZeRO-3 ' \" `id` $(touch x) ${HOME}",  # quoted by every target
        "",
    ],
)
def test_a_layout_on_one_printable_line_is_read(plan: dict[str, Any], layout: str) -> None:
    doc = read_document(_edited(plan, layout), "edited")
    assert doc.plan["assignments"][0]["layout"] == layout
    assert layout_env(layout).get("STRAITS_LAYOUT", layout) == layout
