"""Edge plans and ids that differ only by case, in a real browser (web31).

Each report is opened in Debian's Chromium (driven by Playwright) with every request, console
message and page error recorded: no request may leave the file, no script may fail, the page's
text may hold no NaN, Infinity or undefined, every stage of a pool's chart is drawn with its
name where it can be read, and the printed page has the charts. Slow.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.report import plan_report
from straits.rules import RuleSet
from test_hostile_report_browser import _in_chromium

pytestmark = pytest.mark.slow

T0 = "2025-06-01T00:00:00Z"
#: words a number or a value the page failed to format turns into
NOT_A_VALUE = re.compile(r"\b(?:NaN|-?Infinity|undefined|Invalid Date)\b")
#: per chart: its id, its traces' points, and the names drawn large enough to read
CHARTS = """() => [...document.querySelectorAll('.chart')].map(c => [
  c.id,
  (c.data || []).reduce((n, t) => n + ((t.x || t.z || t.lat || []).length || 0), 0),
  [...c.querySelectorAll('text')].filter(t => t.getBBox().width > 5).map(t => t.textContent),
])"""


def _edges(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    p = copy.deepcopy(plan)
    for a in p["assignments"]:
        a["start"] = a["end"] = T0
    out["one instant"] = p
    p = copy.deepcopy(plan)
    p["assignments"][-1]["end"] = "2100-12-31T00:00:00Z"
    out["to 2100"] = p
    p = copy.deepcopy(plan)
    for a in p["assignments"]:
        for k in ("cost_usd", "compute_usd", "egress_usd", "capex_usd", "penalty_usd"):
            a[k] = 0.0
    p["total_cost_usd"] = p["total_cost_usd_high"] = 0.0
    out["costs nothing"] = p
    p = copy.deepcopy(plan)
    p["assignments"][0]["start"], p["assignments"][0]["end"] = T0, "2025-06-01T00:01:00Z"
    p["assignments"][1]["start"], p["assignments"][1]["end"] = T0, "2035-06-01T00:00:00Z"
    out["a minute beside 10 years"] = p
    return out


def _open(browser: Any, f: Path) -> tuple[list[str], list[str], list[str], Any, bytes]:
    """(script errors, requests, values not formatted, the charts, the printed page)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(f.as_uri() + "#all")
    page.wait_for_selector("body[data-rendered=true]")
    text = page.evaluate("document.body.innerText")
    charts = page.evaluate(CHARTS)
    page.emulate_media(media="print")
    pdf = page.pdf()
    page.close()
    return errors, requests, NOT_A_VALUE.findall(text), charts, pdf


def test_edge_plans_are_drawn_with_every_stage_named_and_no_empty_chart(
    tmp_path: Path, example_path: Path, rules: RuleSet
) -> None:
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json(details=True)
    stages = {a["stage"] for a in plan["assignments"]}
    files = {}
    for name, p in _edges(plan).items():
        f = tmp_path / f"{name.replace(' ', '-')}.html"
        f.write_text(plan_report(p, sc, rules, source="test"), encoding="utf-8")
        files[name] = f

    def look(browser: Any) -> dict[str, Any]:
        return {name: _open(browser, f) for name, f in files.items()}

    for name, (errors, requests, bad, charts, pdf) in _in_chromium(look).items():
        assert errors == [], name
        assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
        assert bad == [], name
        assert all(points > 0 for _, points, _ in charts), (name, charts)
        drawn = {t for cid, _, texts in charts if cid.startswith("pool-") for t in texts}
        assert stages <= drawn, (name, stages - drawn)
        costs = [texts for cid, _, texts in charts if cid == "cost-workload"]
        assert costs and "chat-72b" in costs[0], name
        assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page(?![a-z])", pdf)) > 1


def test_ids_that_differ_only_by_case_are_drawn_apart(
    tmp_path: Path, example_path: Path, rules: RuleSet
) -> None:
    """Ids are case-sensitive (`chat-72b`, `CHAT-72B` and `Chat-72b` are three workloads): each
    is its own row of the cost chart and its own row of the table, never one."""
    doc: dict[str, Any] = yaml.safe_load(example_path.read_text())
    for wid in ("CHAT-72B", "Chat-72b"):
        w = copy.deepcopy(doc["workloads"][0])
        w["id"] = wid
        doc["workloads"].append(w)
    sc = Scenario.model_validate(doc)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json(details=True)
    names = {"chat-72b", "CHAT-72B", "Chat-72b"}
    assert {a["workload"] for a in plan["assignments"]} == names
    f = tmp_path / "case.html"
    f.write_text(plan_report(plan, sc, rules, source="test"), encoding="utf-8")

    def look(browser: Any) -> tuple[list[str], list[str]]:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f.as_uri() + "#all")
        page.wait_for_selector("body[data-rendered=true]")
        rows = page.evaluate(
            "[...document.querySelectorAll('#cost-workload .ytick text')].map(t => t.textContent)"
        )
        cells = page.evaluate(
            "[...document.querySelectorAll('#schedule table tbody tr td:first-child')]"
            ".map(td => td.textContent.split('/')[0])"
        )
        page.close()
        return rows, cells

    rows, cells = _in_chromium(look)
    assert sorted(rows) == sorted(names)
    assert set(cells) == names and len(cells) == len(plan["assignments"])
