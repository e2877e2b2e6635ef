"""The report of edge plans, and the report as a file that is mailed on (web31).

A plan document is user input, and a plan may be odd without being wrong: every stage free, a
stage of one minute beside one of ten years, every stage at one instant, a plan that runs to
2100. Each is drawn with words, never as an empty chart or a stage on no chart. The page
travels by e-mail: it names the file it was made from, not the folders of the machine.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import pytest

from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.report import plan_report
from straits.report.figures import plan_figures
from straits.report.view import build_view
from straits.rules import RuleSet
from test_cli import straits
from test_report import markup

T0 = "2025-06-01T00:00:00Z"


@pytest.fixture(scope="module")
def demo(rules: RuleSet, example_path: Path) -> tuple[Scenario, dict[str, Any]]:
    sc = load_scenario(example_path)
    return sc, make_plan(sc, rules=rules, solver="greedy").to_json(details=True)


def _figures(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet, plan: dict[str, Any]
) -> dict[str, Any]:
    return plan_figures(build_view(plan, demo[0], rules, source="test"))


def _pool_of(figs: dict[str, Any], stage: str) -> dict[str, Any]:
    """The pool chart whose bars or marks name ``stage``."""
    for key, fig in figs.items():
        if key.startswith("pool-") and any(stage in (t.get("text") or []) for t in fig["data"]):
            return dict(fig)
    raise AssertionError(f"{stage} is on no pool chart")


def test_a_report_names_the_file_it_read_not_the_folders_it_was_in(
    tmp_path: Path, example_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`straits report /home/zq7user/deals/acme/plan.json` wrote the whole path into the page's
    source line: the page that is mailed on named the user and the folders, and two reports of
    one plan from two folders differed under SOURCE_DATE_EPOCH."""
    p = straits("plan", str(example_path), "--solver", "greedy", "-o", "json")
    assert p.returncode == 0, p.stderr
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764547200")
    pages = []
    for folder in ("home/zq7user/deals/acme", "srv/other"):
        where = tmp_path / folder
        where.mkdir(parents=True)
        (where / "plan.json").write_text(p.stdout)
        out = where / "plan.html"
        r = straits("report", str(where / "plan.json"), "-o", str(out))
        assert r.returncode == 0, r.stderr
        pages.append(out.read_text(encoding="utf-8"))
    assert pages[0] == pages[1]
    page = markup(pages[0])
    assert str(tmp_path) not in page and "zq7user" not in page and "file:" not in page
    assert '<p class="source">plan document plan.json (plan ' in page
    # a scenario planned now: its file's name, not its path
    sc = tmp_path / "home" / "zq7user" / "deals" / "offshore.yaml"
    sc.write_text(example_path.read_text())
    out = tmp_path / "planned-now.html"
    r = straits("report", str(sc), "-o", str(out), "--time-limit", "2")
    assert r.returncode == 0, r.stderr
    page = markup(out.read_text(encoding="utf-8"))
    assert str(tmp_path) not in page and "zq7user" not in page
    assert '<p class="source">scenario offshore.yaml, planned now' in page
    assert os.path.relpath(sc, Path.cwd()) not in page


def test_a_plan_that_costs_nothing_draws_its_rows_and_says_so(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """Every cost at $0: both cost charts had no trace at all, an axis from -$1 to $6 and rows
    numbered 0 to 4, and no word of why."""
    plan = copy.deepcopy(demo[1])
    for a in plan["assignments"]:
        for k in ("cost_usd", "compute_usd", "egress_usd", "capex_usd", "penalty_usd"):
            a[k] = 0.0
    plan["total_cost_usd"] = plan["total_cost_usd_high"] = 0.0
    figs = _figures(demo, rules, plan)
    workloads = sorted({a["workload"] for a in plan["assignments"]})
    sites = sorted({a["site"] for a in plan["assignments"]})
    for key, rows in (("cost-workload", workloads), ("cost-site", sites)):
        fig = figs[key]
        assert [sorted(t["y"]) for t in fig["data"]] == [rows]
        assert {x for t in fig["data"] for x in t["x"]} == {0}
        assert fig["layout"]["xaxis"]["range"] == [0, 1]
        assert "$0" in fig["layout"]["title"]["text"]
    # a plan that costs something is drawn as before: no range of its own, no word of $0
    fig = _figures(demo, rules, demo[1])["cost-workload"]
    assert "range" not in fig["layout"]["xaxis"] and "$0" not in fig["layout"]["title"]["text"]


def test_the_heatmap_of_a_plan_to_2100_covers_it_all(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """The heatmap stopped at 208 weeks: a plan that ran to 2100 (or a stage of 10 years) was
    drawn to mid-2029 with no word of the rest. Its columns are several weeks each now."""
    plan = copy.deepcopy(demo[1])
    last = plan["assignments"][-1]
    last["end"] = "2100-12-31T00:00:00Z"
    fig = _figures(demo, rules, plan)["utilisation"]
    hm = fig["data"][0]
    edges = [dt.datetime.fromisoformat(x) for x in hm["x"]]
    assert edges[-1] >= dt.datetime(2100, 12, 31, tzinfo=dt.UTC)
    assert len(edges) == len(hm["z"][0]) + 1 <= 209
    step = edges[1] - edges[0]
    assert step.days % 7 == 0 and step.days > 7
    assert f"per {step.days // 7} weeks" in fig["layout"]["title"]["text"]
    # the chart's label says so too (it said "per pool and week")
    page = plan_report(plan, demo[0], rules, source="test")
    assert f'aria-label="Average share of chips in use per {step.days // 7} weeks, ' in page
    # the row of the pool that runs the long stage is in use to the end
    key = f"{last['site']}/{last['chip']}"
    assert hm["z"][hm["y"].index(key)][-1] > 0


def test_a_one_minute_stage_beside_ten_years_is_on_its_chart(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """On an axis of 10 years a stage of one minute is a bar under a pixel wide: Plotly drew
    nothing, and the stage was in the table but on no chart. It is a mark with its name now,
    with the bar's hover text."""
    plan = copy.deepcopy(demo[1])
    short, long = plan["assignments"][0], plan["assignments"][1]
    short["start"], short["end"] = T0, "2025-06-01T00:01:00Z"
    long["start"], long["end"] = T0, "2035-06-01T00:00:00Z"
    fig = _pool_of(_figures(demo, rules, plan), short["stage"])
    marks = [t for t in fig["data"] if t["type"] == "scatter" and t.get("mode") == "markers+text"]
    assert len(marks) == 1 and marks[0]["text"] == [short["stage"]]
    assert marks[0]["x"] == ["2025-06-01T00:00:00+00:00"]
    assert marks[0]["customdata"][0][0].startswith(f"{short['workload']}/{short['stage']}")
    assert marks[0]["hovertemplate"] == next(
        t["hovertemplate"] for t in fig["data"] if t["type"] == "bar"
    )
    # a stage as long as its axis is a bar, not a mark
    long_fig = _pool_of(_figures(demo, rules, plan), long["stage"])
    assert not any(
        long["stage"] in t["text"] for t in long_fig["data"] if t.get("mode") == "markers+text"
    )


def test_stages_at_one_instant_are_drawn_apart(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """Every stage starting and ending at one instant: no bar had any width, and two stages of
    one pool shared a lane, so their names were drawn over each other as one smudge."""
    plan = copy.deepcopy(demo[1])
    for a in plan["assignments"]:
        a["start"] = a["end"] = T0
    figs = _figures(demo, rules, plan)
    by_pool: dict[str, list[str]] = {}
    for a in plan["assignments"]:
        by_pool.setdefault(f"{a['site']}/{a['chip']}", []).append(a["stage"])
    shared = next(stages for stages in by_pool.values() if len(stages) > 1)
    fig = _pool_of(figs, shared[0])
    (marks,) = [t for t in fig["data"] if t.get("mode") == "markers+text"]
    assert sorted(marks["text"]) == sorted(shared)
    assert len(set(marks["y"])) == len(shared)  # each on a lane of its own
    assert json.dumps(figs).count("NaN") == 0


def test_a_pool_of_2000_stages_draws_40_on_lanes_that_can_be_read(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """2,000 overlapping stages on one pool: the chart draws the first 40 and says so (the
    table lists them all), but its 40 lanes were squeezed into the 12-lane panel: bars 5 px
    high and their names 4 px in Chromium. Every lane keeps 24 px now."""
    plan = copy.deepcopy(demo[1])
    first = plan["assignments"][0]
    t0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    many = []
    for i in range(2000):
        a = dict(first, chips=1)
        start = t0 + dt.timedelta(hours=2 * i)
        a["start"] = start.isoformat().replace("+00:00", "Z")
        a["end"] = (start + dt.timedelta(hours=2000)).isoformat().replace("+00:00", "Z")
        many.append(a)
    plan["assignments"] = many + plan["assignments"][1:]
    fig = _pool_of(_figures(demo, rules, plan), first["stage"])
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    lanes = {y for t in bars for y in t["y"]}
    assert sum(len(t["x"]) for t in bars) == 40 and len(lanes) == 40
    layout = fig["layout"]
    assert "2001 stages" in layout["title"]["text"]
    assert "first 40 stages drawn" in layout["title"]["text"]
    lanes_px = (layout["height"] - 70) * (1 - layout["yaxis2"]["domain"][0])
    assert lanes_px / len(lanes) >= 24
    chips_px = (layout["height"] - 70) * layout["yaxis"]["domain"][1]
    assert chips_px >= 170  # the chips panel as tall as a 12-lane chart's


def test_a_right_to_left_override_in_a_file_name_is_shown_not_obeyed(
    tmp_path: Path, example_path: Path
) -> None:
    """A file named `x<U+202E>nosj.plan.json` put its override raw into the page's source line:
    the browser drew the rest of the line reversed, so the page showed other text than it held
    (plan documents and scenarios refuse the character in every text field; the file's name was
    the one way in). The page writes it as `\\u202e`, as the terminal does."""
    p = straits("plan", str(example_path), "--solver", "greedy", "-o", "json")
    assert p.returncode == 0, p.stderr
    doc = tmp_path / "x\u202enosj.plan.json"
    doc.write_text(p.stdout)
    out = tmp_path / "plan.html"
    r = straits("report", str(doc), "-o", str(out))
    assert r.returncode == 0, r.stderr
    page = out.read_text(encoding="utf-8")
    assert "\u202e" not in page
    assert '<p class="source">plan document x\\u202enosj.plan.json (plan ' in page
