"""The report and the console in a real browser with the longest ids the model takes (web29).

Ids are at most 128 characters of ``[A-Za-z0-9._-]`` (a tenant of a token at most 100): a
valid scenario can name every site, tenant, dataset, workload and stage with 128 letters and no
place to break a line. The report's tables of each stage's options then spread to 2,700 px
and the page scrolled sideways at 820 px (1,135 px wide), and out of the printed page; the
console's bar, which names the signed-in tenant, widened every console page to 1,184 px at
820 px. Slow: Debian's Chromium, driven by Playwright.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.report import plan_report
from straits.rules import RuleSet
from straits.server import create_app
from straits.store import Store
from straits.store.tokens import create_token
from test_console import Browser
from test_hostile_report_console2 import _alone

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

#: every element's right edge beyond the window, and the page's scroll and client widths
OVERFLOW = """() => {
  const w = document.documentElement.clientWidth;
  const out = [];
  for (const e of document.querySelectorAll('body *')) {
    if (e.closest('.chart')) continue;  // Plotly sizes its own layers
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 1) out.push(e.tagName + '.' + e.className);
  }
  return [document.documentElement.scrollWidth, w, out.slice(0, 5)];
}"""


def _longest(text: str, fill: str) -> str:
    return (text.replace("-", "") + fill * 128)[:128]


def longest_ids(example_path: Path) -> Scenario:
    """The shipped example with every id 128 characters long (no hyphen to break at)."""
    doc: dict[str, Any] = yaml.safe_load(example_path.read_text())
    new: dict[str, str] = {}
    for s in doc["sites"]:
        new[s["id"]] = _longest(s["id"], "S")
        s.pop("targets", None)  # scheduler names have shorter limits of their own
        for p in s["pools"]:
            p.pop("targets", None)
    new.update({t["id"]: _longest(t["id"], "N") for t in doc["tenants"]})
    new.update({d["id"]: _longest(d["id"], "D") for d in doc["datasets"]})
    for t in doc["tenants"]:
        t["id"] = new[t["id"]]
    for s in doc["sites"]:
        s["id"] = new[s["id"]]
        for p in s["pools"]:
            if p.get("procurable", {}).get("buyer"):
                p["procurable"]["buyer"] = new[p["procurable"]["buyer"]]
    for d in doc["datasets"]:
        d["id"], d["located_at"] = new[d["id"]], new[d["located_at"]]
    for w in doc["workloads"]:
        w["id"], w["tenant"] = _longest(w["id"], "W"), new[w["tenant"]]
        stages = {st["id"]: _longest(st["id"], "T") for st in w["stages"]}
        for st in w["stages"]:
            st["id"] = stages[st["id"]]
            st["after"] = [stages[a] for a in st.get("after", [])]
            st["datasets"] = [new[d] for d in st.get("datasets", [])]
    return Scenario.model_validate(doc)


def _in_chromium(fn: Callable[[Any], Any]) -> Any:
    if CHROMIUM is None:
        pytest.skip("no Chromium on this machine")
    sync_api = pytest.importorskip("playwright.sync_api")

    def run() -> Any:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                return fn(browser)
            finally:
                browser.close()

    return _alone(run)


def test_a_report_of_the_longest_ids_fits_the_screen_and_the_printed_page(
    tmp_path: Path, example_path: Path, rules: RuleSet
) -> None:
    sc = longest_ids(example_path)
    assert max(len(s.id) for s in sc.sites) == 128
    plan = make_plan(sc, rules=rules, solver="greedy").to_json(details=True)
    assert plan["assignments"]
    plan["notes"] = ['<img src=x onerror="window.__straits_ran=1">']
    report = tmp_path / "long-ids.html"
    report.write_text(plan_report(plan, sc, rules, source="test"), encoding="utf-8")

    def widths(browser: Any) -> list[Any]:
        out = []
        requests: list[str] = []
        for width, media in ((1280, "screen"), (820, "screen"), (718, "print")):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.emulate_media(media=media)
            page.goto(report.as_uri() + "#all")
            page.wait_for_selector("body[data-rendered=true]")
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
            assert page.locator("details.stage table").count() > 0  # each stage's options
            out.append(page.evaluate(OVERFLOW))
            assert page.evaluate("window.__straits_ran") is None
            assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
            page.close()
        return out

    # 718 px: A4's width less Chromium's default print margins
    assert _in_chromium(widths) == [[1280, 1280, []], [820, 820, []], [718, 718, []]]


def test_the_console_bar_of_a_tenant_of_100_characters_fits_the_tablet(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'console.db'}")
    b = Browser(create_app(store), store)
    tenant = "W" * 100  # a wide letter: 1,400 px of it
    b.sign_in(create_token(store, tenant, "planner")[0])
    served = {p: b.client.get(p) for p in ("/ui/", "/ui/submit", "/ui/rules", "/static/report.css")}
    assert all(r.status_code == 200 for r in served.values())

    def serve(route: Any) -> None:
        path = "/" + route.request.url.split("/", 3)[3]
        r = served.get(path)
        if r is None:
            route.fulfill(status=404, body="")
        else:
            route.fulfill(status=200, body=r.content, content_type=r.headers["content-type"])

    def widths(browser: Any) -> list[Any]:
        page = browser.new_page(viewport={"width": 820, "height": 900})
        page.route("**/*", serve)
        out = []
        for path in ("/ui/", "/ui/submit", "/ui/rules"):
            page.goto("https://testserver" + path)
            assert tenant in page.inner_text("header")
            out.append(page.evaluate(OVERFLOW))
        page.close()
        return out

    assert _in_chromium(widths) == [[820, 820, []]] * 3


#: the chart roles whose children a screen reader never reads (ARIA: children presentational)
FOCUS_HIDDEN = """() => [...document.querySelectorAll('[role=img], [role=presentation]')]
  .filter(e => [...e.querySelectorAll('a[href], button, input, select, [tabindex]')]
    .some(c => c.tabIndex >= 0)).length"""


def test_no_chart_control_sends_the_plan_out_of_the_page(
    tmp_path: Path, sc: Scenario, rules: RuleSet
) -> None:
    """Plotly's bar over each chart had "Share chart...": one click and "Share" opened
    cloud.plotly.com in a new window, to which the page then posts the figure (the plan's
    sites, stages and costs). The bar now has no such button; every control of every chart,
    pressed, opens no window and asks nothing of the network. The charts' controls are
    reachable by keyboard, so a chart is a figure (named by its label), never an image
    whose focusable children a screen reader does not read."""
    plan = make_plan(sc, rules=rules, solver="greedy").to_json(details=True)
    report = tmp_path / "plan.html"
    report.write_text(plan_report(plan, sc, rules, source="test"), encoding="utf-8")

    def press_every_control(browser: Any) -> tuple[list[str], list[str], int, int]:
        context = browser.new_context(accept_downloads=True)
        requests: list[str] = []
        windows: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        context.on("page", lambda p: windows.append(p.url))  # any other window
        page.on("dialog", lambda d: d.dismiss())
        page.goto(report.as_uri() + "#all")
        page.wait_for_selector("body[data-rendered=true]")
        charts = page.locator(".chart")
        for i in range(charts.count()):
            chart = charts.nth(i)
            buttons = chart.locator(".modebar-btn")
            for j in range(buttons.count()):
                chart.hover()
                buttons.nth(j).click()
                confirm = page.locator(".plotly-cloud-dialog-box button", has_text="Share")
                if confirm.count():
                    confirm.first.click()
        page.wait_for_timeout(500)  # a window opened by a click has its request out by now
        unnamed = page.evaluate(
            "[...document.querySelectorAll('.chart')].filter(c => "
            "c.getAttribute('role') !== 'figure' || !c.getAttribute('aria-label')).length"
        )
        hidden = page.evaluate(FOCUS_HIDDEN)
        windows += [p.url for p in context.pages if p is not page]
        context.close()
        return windows, requests, unnamed, hidden

    windows, requests, unnamed, hidden = _in_chromium(press_every_control)
    assert windows == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
    assert unnamed == 0 and hidden == 0
