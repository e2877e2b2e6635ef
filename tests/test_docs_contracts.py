"""docs/contracts.md names every field the commands print: a field added to `check --json`,
`estimate --json` or `plan -o json` without a word in its section fails here, naming it.

Real outputs of the shipped examples are read (subprocess, as a user runs them); the keys of
each object the contract describes (the answer, its reasons; the estimate and its parts; the
plan, its assignments, unplaced stages, diagnosis, rejections, search and inputs) must each
appear in backticks in the command's section."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from test_cli import straits

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
BEFORE = EXAMPLES / "rule-packs" / "h20-letter" / "before"
PAGE = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
SERVE = {
    "kind": "serve",
    "model": {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096},
    "chip": "H100-SXM",
    "chips": 8,
    "days": 30,
    "tokens_per_s": 2000,
}


def section(title: str) -> str:
    """The text of the section whose heading starts with ``title``, up to the next one."""
    parts = re.split(r"^## ", PAGE, flags=re.M)
    found = [p for p in parts if p.startswith(title)]
    assert found, f"no section {title!r} in docs/contracts.md"
    return found[0]


def named(text: str) -> set[str]:
    """Every name in a code span (`unplaced[].lost_codes` names both) or in quotes."""
    spans = re.findall(r"`([^`]+)`", text) + re.findall(r'"([\w-]+)"', text)
    return {w for span in spans for w in re.findall(r"[\w-]+", span)}


def keys_of(objs: Iterator[Any]) -> set[str]:
    out: set[str] = set()
    for o in objs:
        if isinstance(o, dict):
            out |= set(o)
    return out


def undocumented(doc: str, objects: dict[str, Iterator[Any]]) -> list[str]:
    names = named(doc)
    return [
        f"{where}.{k}" for where, objs in objects.items() for k in sorted(keys_of(objs) - names)
    ]


def test_check_fields_are_documented() -> None:
    p = straits("check", "--json", str(EXAMPLES / "request.json"))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    reasons = [*out["reasons"], *out["warnings"], *out["notes"]]
    doc = section("`straits check --json`")
    missing = undocumented(doc, {"answer": iter([out]), "reason": iter(reasons)})
    assert missing == [], f"not in docs/contracts.md: {missing}"


@pytest.mark.parametrize("kind", ["train", "serve"])
def test_estimate_fields_are_documented(kind: str) -> None:
    body = (EXAMPLES / "estimate.json").read_text() if kind == "train" else json.dumps(SERVE)
    p = straits("estimate", "--json", stdin=body)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    doc = section("`straits estimate --json`")
    parts = {
        "estimate": iter([out]),
        **{k: iter([out.get(k)]) for k in ("efficiency", "interval", "energy", "mfu_components")},
        "nearest_runs": iter(out.get("nearest_runs") or []),
        "guidance": iter(out["guidance"]),
    }
    missing = undocumented(doc, parts)
    assert missing == [], f"not in docs/contracts.md: {missing}"


@pytest.mark.parametrize("regime", ["enacted", "ai-diffusion"])
def test_plan_fields_are_documented(regime: str) -> None:
    p = straits(
        "plan", str(EXAMPLES / "offshore-2025.yaml"), "-o", "json", "--regime", regime, "--details"
    )
    assert p.returncode in (0, 3), p.stderr
    plan = json.loads(p.stdout)
    doc = section("`straits plan SCENARIO --json`")
    parts = {
        "plan": iter([plan]),
        "assignments[]": iter(plan["assignments"]),
        "unplaced[]": iter(plan["unplaced"]),
        "diagnosis[]": iter(plan["diagnosis"]),
        "rejections[]": iter(r for d in plan["diagnosis"] for r in d.get("rejections", [])),
        "why_not[]": iter(plan["why_not"] or []),
        "search": iter([plan["search"]]),
        "timings": iter([plan["timings"]]),
        "inputs": iter([plan["inputs"], plan["inputs"]["options"]]),
    }
    missing = undocumented(doc, parts)
    assert missing == [], f"not in docs/contracts.md: {missing}"


def test_openapi_names_every_field_a_check_answer_always_has(tmp_path: Path) -> None:
    """The spec's `CheckAnswer` and `Reason` (server/schemas.py: "a check answer's every
    field") list every field a check answer and a reason always carry."""
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store import Store

    store = Store(f"sqlite:///{tmp_path / 'spec.db'}")
    try:
        with TestClient(create_app(store)) as client:
            schemas = client.get("/openapi.json").json()["components"]["schemas"]
    finally:
        store.close()
    p = straits("check", "--json", str(EXAMPLES / "request.json"))
    out = json.loads(p.stdout)
    reasons = [*out["reasons"], *out["warnings"], *out["notes"]]
    always = {
        "CheckAnswer": set(out),
        "Reason": set.intersection(*(set(r) for r in reasons)),
    }
    missing = {k: sorted(v - set(schemas[k]["properties"])) for k, v in always.items()}
    assert missing == {"CheckAnswer": [], "Reason": []}


def test_estimate_sweep_sizes_are_the_documented_ones() -> None:
    body = (EXAMPLES / "estimate.json").read_text()
    p = straits("estimate", "--sweep", "chips", "--json", stdin=body)
    assert p.returncode == 0, p.stderr
    sizes = [e["chips"] for e in json.loads(p.stdout)]
    doc = section("`straits estimate --json`")
    assert "20, 32, 64, ..., 4096, ..., 65536" in doc
    assert sizes[:3] == [20, 32, 64] and 4096 in sizes and sizes[-1] == 65536


def test_demo_fields_are_documented(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    p = straits("demo", "--json", "--no-report", "--db", db)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    doc = section("`straits demo --json`")
    parts = {
        "demo": iter([out]),
        "ledger": iter([out["ledger"]]),
        "ledger.entries": iter(out["ledger"]["entries"].values()),
        "differences[]": iter(out["differences"]),
    }
    missing = undocumented(doc, parts)
    assert missing == [], f"not in docs/contracts.md: {missing}"


def test_export_and_impact_fields_are_documented(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    p = straits("plan", str(EXAMPLES / "h20-2025.yaml"), "-o", "json", "--rules", str(BEFORE))
    assert p.returncode == 0, p.stderr
    plan.write_text(p.stdout)
    args = ("--to", "all", "-o", str(tmp_path / "jobs"), "--json", "--rules", str(BEFORE))
    e = straits("export", str(plan), *args)
    assert e.returncode == 0, e.stderr
    out = json.loads(e.stdout)
    parts = {
        "export": iter([out]),
        "targets": iter(out["targets"].values()),
        "jobs[]": iter(out["jobs"]),
    }
    missing = undocumented(section("`straits export PLAN"), parts)
    i = straits("impact", "--date", "2025-04-10", "--plan", str(plan), "--json")
    assert i.returncode == 0, i.stderr
    impact = json.loads(i.stdout)
    one = impact["plans"][0]
    parts = {
        "impact": iter([impact, one]),
        "changes[]": iter(one["changes"]),
        "replan": iter([one["replan"]]),
        "replan.stages[]": iter(one["replan"]["stages"]),
    }
    missing += undocumented(section("`straits impact --date D --json`"), parts)
    assert missing == [], f"not in docs/contracts.md: {missing}"


def _rules(items: list[Any]) -> list[str]:
    return [r["rule"] for r in items if isinstance(r, dict) and "rule" in r]


def test_the_check_example_answer_is_what_the_example_request_gets() -> None:
    """The answer shown under the request of `straits check --json` is that request's answer:
    its decision and requirements, and every list it shows empty is empty (docs51: it showed
    `"notes": []` where the request gets the note us-ear-remote-access)."""
    blocks = re.findall(r"```json\n(.*?)```", section("`straits check --json`"), flags=re.S)
    request, shown = json.loads(blocks[0]), json.loads(blocks[1])
    p = straits("check", "--json", stdin=json.dumps(request))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert (shown["decision"], shown["requires"]) == (out["decision"], out["requires"])
    for key in ("reasons", "warnings", "notes", "satisfied"):
        assert set(_rules(shown[key])) <= set(_rules(out[key])), key
        assert (shown[key] == []) == (out[key] == []), key


def test_every_estimate_option_is_named_in_its_section() -> None:
    """`straits estimate`'s options are each named in its contract (docs51: `--chips`, which
    overrides the request's `chips`, was in `--help` only)."""
    import click
    import typer

    from straits.cli import app

    command = typer.main.get_command(app)
    assert isinstance(command, click.Group)
    doc = section("`straits estimate --json`")
    opts = {o for p in command.commands["estimate"].params for o in p.opts if o.startswith("--")}
    named_here = {o for o in opts if re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", doc)}
    assert sorted(opts - {"--help"} - named_here) == []
