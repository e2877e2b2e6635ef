"""The plan report: the view's numbers agree with the plan, the HTML stands alone and escapes
whatever a plan document carries, and the CLI writes it (or refuses clearly)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.report import pareto_report, plan_report, sweep_report
from straits.report.figures import plan_figures
from straits.report.page import script_json
from straits.report.view import PlanView, build_view
from straits.rules import RuleSet
from straits.simulate.generate import generate
from test_cli import straits

ROOT = Path(__file__).resolve().parents[1]
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)
SCRIPT_BODY = re.compile(r"(<script[^>]*>).*?(</script>)", re.S | re.I)


def markup(html: str) -> str:
    """The page without the bodies of its scripts (Plotly's bundle mentions URLs it never
    loads)."""
    return SCRIPT_BODY.sub(r"\1\2", html)


@pytest.fixture(scope="module")
def demo(rules: RuleSet, example_path: Path) -> tuple[Scenario, dict[str, Any]]:
    sc = load_scenario(example_path)
    return sc, make_plan(sc, rules=rules, regime="ai-diffusion", solver="greedy").to_json(
        details=True
    )


def figures_of(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="figures">(.*?)</script>', html, re.S)
    assert m is not None
    return dict(json.loads(m.group(1)))


def level_at(steps: tuple[tuple[dt.datetime, int], ...], t: dt.datetime) -> int:
    n = 0
    for at, v in steps:
        if at > t:
            break
        n = v
    return n


def check_view(view: PlanView, plan: dict[str, Any], sc: Scenario) -> None:
    # every stage of the scenario appears once in "why not"; unplaced stages come first
    stages = [(w.workload, w.stage) for w in view.why_not]
    assert sorted(stages) == sorted((w.id, s.id) for w in sc.workloads for s in w.stages)
    placed_flags = [w.placed_at is not None for w in view.why_not]
    assert placed_flags == sorted(placed_flags)
    unplaced = {(u["workload"], u["stage"]) for u in plan["unplaced"]}
    assert {(w.workload, w.stage) for w in view.why_not if w.placed_at is None} == unplaced
    # the cost parts add up to the plan's cost and penalties, by workload and by site
    total = plan["total_cost_usd"] + plan["penalty_usd"]
    for rows in (view.cost_by_workload, view.cost_by_site):
        assert sum(r.total_usd for r in rows) == pytest.approx(total, rel=1e-6, abs=0.05)
    # a pool's rented chips in use never exceed its capacity, at any instant a stage starts
    for pool in view.pools:
        assert sum(len(p.tasks) for p in [pool]) == sum(
            1 for a in plan["assignments"] if (a["site"], a["chip"]) == (pool.site, pool.chip)
        )
        for t in pool.tasks:
            if not t.bought:
                assert level_at(pool.use, t.start) <= level_at(pool.capacity, t.start)
        assert 0.0 <= pool.utilisation <= 1.0 + 1e-9
    # every data movement leaves the site where the dataset is stored
    located = {d.id: d.located_at for d in sc.datasets}
    for m in view.geo.movements:
        assert m.src != m.dst
        if m.kind == "data":
            assert located[m.what] == m.src


def test_demo_view_matches_the_plan(demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> None:
    sc, plan = demo
    view = build_view(plan, sc, rules, source="test")
    check_view(view, plan, sc)
    assert view.summary.unplaced == len(plan["unplaced"]) > 0  # ai-diffusion leaves one out
    # the rules timeline marks exactly the rules in force on the plan's date
    in_force = {r["rule"] for r in _rules_in_force(rules, plan["date"], plan["regime"])}
    assert {r.rule for r in view.rules_in_force} == in_force
    # weights follow the pipeline: a stage placed elsewhere than its predecessor moves them
    assert (
        any(m.kind == "weights" for m in view.geo.movements)
        or len({a["site"] for a in plan["assignments"]}) == 1
    )


def _rules_in_force(rules: RuleSet, date: str, regime: Any) -> list[dict[str, Any]]:
    from straits import api

    return list(api.rules_json(rules, dt.date.fromisoformat(date), regime, None))


@given(
    st.integers(0, 10_000),
    st.integers(1, 5),
    st.integers(2, 6),
    st.sampled_from(["enacted", "ai-diffusion"]),
)
def test_generated_plans_view_invariants(seed: int, n: int, m: int, regime: str) -> None:
    from straits.rules import ruleset

    sc = generate(workloads=n, sites=m, seed=seed, regime=regime)
    rs = ruleset()
    plan = make_plan(sc, rules=rs, solver="greedy").to_json(details=True)
    view = build_view(plan, sc, rs, source="test")
    check_view(view, plan, sc)
    figures = plan_figures(view)
    assert "map" in figures and "rules" in figures
    json.dumps(figures, allow_nan=False)  # strict JSON: no NaN or Infinity reaches the page


def test_report_is_self_contained(demo: tuple[Scenario, dict[str, Any]], rules: RuleSet) -> None:
    sc, plan = demo
    html = plan_report(plan, sc, rules, source="test")
    assert not EXTERNAL.search(markup(html)), EXTERNAL.search(markup(html))
    assert "<script src=" not in html and '<link rel="stylesheet"' not in html
    assert "window.PlotlyGeoAssets" in html  # the base map travels with the report
    figures = figures_of(html)
    for fid in figures:  # every figure has an element to be drawn in
        assert f'id="{fid}"' in html
    assert {"map", "rules", "cost-workload", "cost-site", "pool-0"} <= set(figures)
    for sec in ("summary", "schedule", "map-section", "costs", "why-not", "rules-section"):
        assert f'id="{sec}"' in html


@pytest.mark.parametrize(
    ("document", "itemized"),
    [
        ("plan --details (a scenario reported now, the demo)", True),
        ("a recorded plan (counts per reason only)", False),
    ],
)
def test_why_not_lists_each_option_or_says_it_only_counts(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet, document: str, itemized: bool
) -> None:
    """Issue 14 asks for each option, lawful or not, with its rule; a plan document without
    the per-option records must say so rather than show the chosen option alone."""
    sc, plan = demo
    plan = copy.deepcopy(plan)
    if not itemized:
        for d in plan["diagnosis"]:
            d.pop("rejections", None)
    view = build_view(plan, sc, rules, source=document)
    for w in view.why_not:
        assert w.itemized == (itemized or w.options <= 1)
        listed = sum(line.count for line in w.lines if not line.chosen)
        assert listed == ((w.options - (w.placed_at is not None)) if itemized else 0)
    html = plan_report(plan, sc, rules, source=document)
    assert ('id="why-not-counted"' in html) == (not itemized)


def test_hostile_plan_text_is_escaped(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """A plan JSON file is user input: text in it never becomes markup or script."""
    sc, plan = demo
    evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
    bad = copy.deepcopy(plan)
    bad["notes"] = [evil]
    bad["diagnosis"][0]["summary"] = evil
    bad["unplaced"][0]["summary"] = evil
    bad["warnings"] = [
        {"rule": evil, "citation": evil, "confidence": "V", "text": evil, "stages": [evil]}
    ]
    html = plan_report(bad, sc, rules, source=evil)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert html.count("</script>") == html.count("<script")  # no early close of a script
    assert figures_of(html)  # the figures still parse


#: text Plotly would draw as markup: a style that fetches from the network, a link out
PLOTLY_MARKUP = '<span style="background:url(https://example.invalid/x)">s</span><a href="https://example.invalid/">a</a>'
RULE_PACK = ROOT / "examples" / "rule-packs" / "h20-letter" / "after" / "us-ear"


def hostile_rules(tmp: Path) -> RuleSet:
    """The example's us-ear pack with Plotly markup in a rule's title and citation (rule
    annotations are free text; a pack is a file anyone may send; a rule's id is refused by the
    pack loader unless it is letters, digits, '.', '_' or '-')."""
    import shutil

    from straits.rules import ruleset

    pack = tmp / "packs" / "us-ear"
    shutil.copytree(RULE_PACK, pack, ignore=shutil.ignore_patterns("cases"))
    cedar = pack / "h20.cedar"
    quoted = PLOTLY_MARKUP.replace('"', '\\"')
    cedar.write_text(
        cedar.read_text()
        .replace('@title("', f'@title("{quoted}</script><script>alert(1)</script>')
        .replace('@citation("', f'@citation("{quoted}')
    )
    return ruleset((tmp / "packs",))


def strings(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Every (key, string) of a figure."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(v, k)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v, key)]
    return []


def test_text_in_figures_is_not_plotly_markup(
    demo: tuple[Scenario, dict[str, Any]], tmp_path: Path
) -> None:
    """Plotly draws tags in chart text (a <span style> with a url() fetched it: the offline
    report made network requests; an <a href> left it). Rule annotations are free text: a
    report under a pack with markup in a rule's title and citation draws them as text.
    Only the page's own hover templates hold markup. Found by a hostile pass (atk10)."""
    sc, plan = demo
    rules = hostile_rules(tmp_path)
    html = plan_report(plan, sc, rules, source="hostile pack")
    figures = figures_of(html)
    for fid, fig in figures.items():
        for key, text in strings(fig):
            if key not in ("hovertemplate", "texttemplate"):
                assert "<" not in text and ">" not in text, (fid, key, text)
    shown = PLOTLY_MARKUP.replace("<", "&lt;").replace(">", "&gt;")
    drawn = [text for fig in figures.values() for _, text in strings(fig)]
    assert any(shown in text for text in drawn)  # as the text it is (Plotly decodes entities)


def test_report_refuses_the_network_by_its_own_policy(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """A report file has no server to send headers: it carries its Content-Security-Policy in
    a <meta> element, so that whatever text got through could neither run nor fetch: no
    source but the page's own inline scripts (by their SHA-256), no connections."""
    import base64
    import hashlib

    sc, plan = demo
    for html in (
        plan_report(plan, sc, rules, source="test"),
        pareto_report([{"cost_usd": 1.0, "makespan_hours": 2.0}], "demo"),
    ):
        m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
        assert m is not None and html.index(m.group(0)) < html.index("<script")
        policy = {
            name: value.split()
            for name, _, value in (d.strip().partition(" ") for d in m.group(1).split(";"))
        }
        assert policy["default-src"] == ["'none'"] and policy["connect-src"] == ["'none'"]
        assert not any(
            "http" in s or s in ("*", "'self'", "'unsafe-inline'", "'unsafe-eval'")
            for s in policy["script-src"]
        )
        scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
        assert scripts
        for body in scripts:
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in policy["script-src"]


def test_script_json_cannot_close_its_element() -> None:
    text = script_json({"a": "</script><!--", "b": "&"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><!--", "b": "&"}
    with pytest.raises(ValueError):
        script_json({"x": float("inf")})


def test_large_plans_are_aggregated(rules: RuleSet) -> None:
    """Many pools: a chart for the busiest ones and a heatmap for all; many options of a stage:
    examples per reason and a count of the rest."""
    sc = generate(workloads=40, sites=30, seed=3)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json(details=True)
    view = build_view(plan, sc, rules, source="test")
    figs = plan_figures(view)
    used = [p for p in view.pools if p.tasks]
    assert sum(1 for k in figs if k.startswith("pool-")) == min(12, len(used))
    if len(used) > 1:
        assert len(figs["utilisation"]["data"][0]["y"]) == len(used)
    for w in view.why_not:
        assert sum(line.count for line in w.lines if not line.chosen) <= max(w.options, 1) + 1


def test_pareto_and_sweep_charts() -> None:
    points = [
        {"cost_usd": 3e6, "makespan_hours": 900.0, "unplaced": 0, "status": "optimal"},
        {"cost_usd": 2e6, "makespan_hours": 1900.0, "unplaced": 0, "status": "optimal"},
    ]
    html = pareto_report(points, "demo")
    assert figures_of(html)["pareto"]["data"][0]["y"] == [3e6, 2e6]
    rows = [
        {"chips": 8, "days": 100.0, "cost_usd": 5e5, "mfu": 0.4},
        {"chips": 64, "days": 14.0, "cost_usd": 6e5, "mfu": 0.38},
    ]
    sweep = figures_of(sweep_report(rows, "7B on H100"))["sweep"]
    assert [t["name"] for t in sweep["data"]] == ["days", "cost"]


# --- the CLI ---------------------------------------------------------------------------------
def test_cli_report_from_a_scenario(tmp_path: Path, example_path: Path) -> None:
    out = tmp_path / "plan.html"
    p = straits("report", str(example_path), "-o", str(out), "--json", "--time-limit", "2")
    assert p.returncode == 0, p.stderr
    written = json.loads(p.stdout)
    assert written["kind"] == "html" and written["bytes"] == out.stat().st_size
    html = out.read_text()
    assert not EXTERNAL.search(markup(html)) and "offshore-2025" in html


def test_a_file_name_with_brackets_is_shown_as_it_is(tmp_path: Path, example_path: Path) -> None:
    """`[` in a file's name reached the report's source line and three error lines as `\\[`:
    the name was escaped for Rich markup, but the page is HTML and the error line is printed as
    text (found by the hostile pass atk23)."""
    sc = tmp_path / "s[bold]x.yaml"
    sc.write_text(example_path.read_text())
    out = tmp_path / "plan.html"
    p = straits("report", str(sc), "-o", str(out), "--time-limit", "2")
    assert p.returncode == 0, p.stderr
    assert f'<p class="source">scenario {sc.name}, planned now' in out.read_text()
    doc = tmp_path / "p[bold]x.json"
    p = straits("plan", str(sc), "--solver", "greedy", "-o", "json")
    doc.write_text(p.stdout)
    for args, shown in (
        (["plan", str(sc), "--show"], str(sc)),
        (["report", str(doc), "--pareto", "3", "-o", str(out)], str(doc)),
        (["report", str(doc), "--regime", "ai-diffusion", "-o", str(out)], str(doc)),
    ):
        p = straits(*args)
        assert p.returncode == 2 and shown in p.stderr and "\\[" not in p.stderr, p.stderr


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (["-o", "x.txt"], "--out"),
        (["-o", "DIR"], "--out"),
    ],
)
def test_cli_report_refuses_bad_outputs(
    tmp_path: Path, example_path: Path, args: list[str], path: str
) -> None:
    target = [
        a.replace("DIR", str(tmp_path)).replace("x.txt", str(tmp_path / "x.txt")) for a in args
    ]
    p = straits("report", str(example_path), *target, "--time-limit", "1")
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and path in p.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_cli_report_unknown_plan_id(tmp_path: Path) -> None:
    p = straits(
        "report",
        "deadbeef",
        "-o",
        str(tmp_path / "r.html"),
        "--db",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
    )
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert not (tmp_path / "r.html").exists()


def test_cli_report_of_a_recorded_plan_carries_its_receipt(
    tmp_path: Path, example_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14: "the ledger entry and receipt when recorded". Without a signed checkpoint
    and a key the report says why there is none; with --key it holds a receipt that
    `ledger verify-receipt` accepts; a bad key is exit 2, not a report without a receipt."""
    import html as html_lib

    monkeypatch.delenv("STRAITS_LEDGER_KEY", raising=False)
    db = ["--db", f"sqlite:///{tmp_path / 'db.sqlite'}"]
    p = straits("plan", str(example_path), "--solver", "greedy", "--record", "-o", "id", *db)
    assert p.returncode == 0, p.stderr
    plan_id = p.stdout.strip()
    key = tmp_path / "ledger.key"
    assert straits("ledger", "keygen", "-o", str(key)).returncode == 0
    cases = [([], False), (["--key", str(key)], True), ([], True)]  # the checkpoint stays
    for extra, has_receipt in cases:
        out = tmp_path / "r.html"
        p = straits("report", plan_id[:8], "-o", str(out), *db, *extra)
        assert p.returncode == 0, p.stderr
        page = out.read_text()
        m = re.search(r'<pre class="receipt">(.*?)</pre>', page, re.S)
        assert (m is not None) == has_receipt, extra
        assert ('class="receipt-note"' in page) != has_receipt
        assert "Store(" not in page and "db.sqlite" not in page  # no local database path
        if m is not None:
            receipt = tmp_path / "receipt.json"
            receipt.write_text(html_lib.unescape(m.group(1)))
            v = straits("ledger", "verify-receipt", str(receipt), "--pubkey", f"{key}.pub")
            assert v.returncode == 0, v.stdout + v.stderr
    p = straits(
        "report",
        plan_id[:8],
        "-o",
        str(tmp_path / "x.html"),
        *db,
        "--key",
        str(tmp_path / "missing.key"),
    )
    assert p.returncode == 2 and "--key" in p.stderr
    assert not (tmp_path / "x.html").exists()


def test_source_date_epoch_makes_the_report_reproducible(
    demo: tuple[Scenario, dict[str, Any]],
    rules: RuleSet,
    tmp_path: Path,
    example_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The page said when it was generated, so two reports of one plan never had the same
    bytes (a report checked in, or compared by its hash, changed every run). Under
    ``SOURCE_DATE_EPOCH`` (the reproducible-builds convention) the time is that one and the
    bytes are the same; a malformed value is refused (exit 2) and nothing is written."""
    sc, plan = demo
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764547200")
    first = plan_report(plan, sc, rules, source="test")
    assert plan_report(plan, sc, rules, source="test") == first
    assert "2025-12-01T00:00:00+00:00" in first
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    p = straits("plan", str(example_path), "--solver", "greedy", "-o", "json")
    doc = tmp_path / "plan.json"
    doc.write_text(p.stdout)
    for bad in ("-5", "1e9", "99999999999999", "", "١٢٣"):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", bad)
        out = tmp_path / "r.html"
        p = straits("report", str(doc), "-o", str(out))
        assert p.returncode == 2, (bad, p.stderr)
        assert "Traceback" not in p.stderr and "SOURCE_DATE_EPOCH" in p.stderr
        assert not out.exists()


@pytest.mark.parametrize("kind", ["missing", "not-executable", "not-a-program"])
def test_a_chromium_that_cannot_run_is_blamed_on_straits_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """user32: `STRAITS_CHROMIUM` naming a file that is not executable made `report -o x.pdf`
    say `--out: cannot write x.pdf: Permission denied (expected a writable file path)`, blaming a
    writable output for the browser's fault; one naming nothing said "install chromium", with
    a Chromium on the PATH the variable hid. Each is now exit 2 naming the variable."""
    from straits.errors import InputError
    from straits.report.static import print_page

    exe = tmp_path / "chromium"
    if kind != "missing":
        exe.write_text("not a program\n")
        exe.chmod(0o755 if kind == "not-a-program" else 0o644)
    monkeypatch.setenv("STRAITS_CHROMIUM", str(exe))
    out = tmp_path / "plan.pdf"
    with pytest.raises(InputError) as err:
        print_page("<html></html>", out, "pdf")
    assert err.value.path == "STRAITS_CHROMIUM" and err.value.exit_code == 2
    assert not out.exists()
