"""The report and the console as a user and an attacker see them, a second pass (atk33):
the plan list past its first page, a form posted twice, and the report of degenerate plans.
(The first pass, atk23: test_hostile_console_errors.py, test_hostile_api_auth.py.)"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.report import plan_report
from straits.rules import RuleSet, ruleset
from straits.server import create_app
from straits.store import Store, queue
from straits.store.tokens import create_token
from straits.web.submit import Submissions
from test_console import Browser
from test_report import figures_of, markup

T = TypeVar("T")


def _alone(fn: Callable[[], T]) -> T:
    """``fn()`` in a thread of its own: an event loop of its own (pytest-playwright's
    fixtures keep one running in the test thread once a browser test of the session ran)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result()


ROW = re.compile(r'<tr data-plan="([0-9a-f]+)"')
OLDER = re.compile(r'<a href="/ui/\?cursor=([^"]+)">Older plans</a>')


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    yield Store(f"sqlite:///{tmp_path / 'console.db'}")


def _queued(store: Store, example_path: Path, tenant: str, n: int) -> list[str]:
    sc = load_scenario(example_path)
    return [
        queue.enqueue(
            store,
            sc,
            {"solver": "greedy"},
            tenant=tenant,
            actor="test",
            record=False,
            rules_digest=ruleset().digest,
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("role", ["planner", "admin"])
def test_every_plan_is_reachable_from_the_plan_list(
    store: Store, example_path: Path, role: str
) -> None:
    """The list showed the newest 100 plans and nothing else: the 101st and older were
    reachable by id only, and the page did not say any were left out. It pages now (an
    "Older plans" link, the API's keyset cursor), each plan on exactly one page."""
    ids = _queued(store, example_path, "hz-cloud", 205)
    _queued(store, example_path, "other", 3)  # never in hz-cloud's pages
    app = create_app(store)  # no lifespan: the plans stay queued
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", role)[0])
    seen: list[str] = []
    pages = 0
    url = "/ui/"
    while True:
        r = b.client.get(url)
        assert r.status_code == 200
        pages += 1
        seen += ROW.findall(r.text)
        more = OLDER.search(r.text)
        if more is None:
            break
        url = f"/ui/?cursor={more.group(1)}"
        rows = b.client.get(f"/ui/plans/rows?cursor={more.group(1)}")
        assert rows.status_code == 200 and ROW.findall(rows.text)
    expected = 208 if role == "admin" else 205
    assert pages == 3
    assert len(seen) == len(set(seen)) == expected
    assert set(ids) <= set(seen)


@pytest.mark.parametrize("cursor", ["x", "W10", "WyJhIiwiYiJd", "a" * 401])
def test_a_forged_plan_list_cursor_is_a_400_page(store: Store, cursor: str) -> None:
    b = Browser(create_app(store), store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    for path in ("/ui/", "/ui/plans/rows"):
        r = b.client.get(path, params={"cursor": cursor})
        assert r.status_code in (400, 422), (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html")


FORM_ID = re.compile(r'name="form_id" value="([^"]+)"')


def test_a_submit_form_posted_twice_makes_one_plan(store: Store, example_path: Path) -> None:
    """A double click (or Reload after the post) on the submit form queued the scenario
    twice: two plans, two ledger entries. The form carries a one-time id now; its later
    posts go to the first post's plan. A form edited and posted again is another plan."""
    b = Browser(create_app(store), store)  # no lifespan: plans stay queued
    csrf = b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    page = b.client.get("/ui/submit")
    form_id = FORM_ID.search(page.text)
    assert form_id is not None
    text = example_path.read_text()
    form = {"csrf": csrf, "form_id": form_id.group(1), "text": text, "time_limit": "2"}
    firsts = [b.client.post("/ui/submit", data=form, follow_redirects=False) for _ in range(3)]
    assert [r.status_code for r in firsts] == [303, 303, 303]
    assert len({r.headers["location"] for r in firsts}) == 1
    edited = b.client.post("/ui/submit", data={**form, "time_limit": "3"}, follow_redirects=False)
    assert edited.status_code == 303
    assert edited.headers["location"] != firsts[0].headers["location"]
    assert len(ROW.findall(b.client.get("/ui/").text)) == 2
    # another form is another plan, and every page of the form has its own id
    again = FORM_ID.search(b.client.get("/ui/submit").text)
    assert again is not None and again.group(1) != form_id.group(1)


def test_a_failed_post_of_a_form_may_be_posted_again(store: Store, example_path: Path) -> None:
    b = Browser(create_app(store), store)
    csrf = b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    form = {"csrf": csrf, "form_id": "f" * 22, "text": "straits: 1\n", "time_limit": "2"}
    assert b.client.post("/ui/submit", data=form).status_code == 400
    assert b.client.post("/ui/submit", data=form).status_code == 400
    ok = b.client.post(
        "/ui/submit", data={**form, "text": example_path.read_text()}, follow_redirects=False
    )
    assert ok.status_code == 303


def test_posts_of_one_form_at_once_wait_for_the_first() -> None:
    made: list[str] = []

    async def make() -> str:
        await asyncio.sleep(0.01)
        made.append(f"plan{len(made)}")
        return made[-1]

    async def failing() -> str:
        await asyncio.sleep(0.01)
        raise ValueError("bad scenario")

    async def main() -> None:
        subs = Submissions()
        key = ("token", "form", "text")
        got = await asyncio.gather(*(subs.once(key, make) for _ in range(5)))
        assert got == ["plan0"] * 5 and made == ["plan0"]
        other = ("token", "form", "edited")
        assert await subs.once(other, make) == "plan1"
        bad = ("token", "form2", "text")
        results = await asyncio.gather(
            *(subs.once(bad, failing) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, ValueError) for r in results)
        assert await subs.once(bad, make) == "plan2"  # a failed form is not remembered
        assert await subs.once(("token", "", "text"), make) == "plan3"  # no id: no match

    _alone(lambda: asyncio.run(main()))


def _serving(chips: int) -> Scenario:
    """One serving stage of ``chips`` chips over three US sites of 1,000 chips each."""
    return Scenario.model_validate(
        {
            "straits": 1,
            "name": "serve-one",
            "date": "2025-06-01",
            "tenants": [{"id": "acme", "hq": "US", "authorizations": []}],
            "sites": [
                {
                    "id": f"us-{i}",
                    "country": "US",
                    "operator_hq": "US",
                    "wan_gbps": 100,
                    "egress_usd_per_gb": 0.02,
                    "pools": [{"chip": "H100-SXM", "count": 1000, "usd_per_chip_hour": 2.0 + i}],
                }
                for i in range(3)
            ],
            "datasets": [],
            "workloads": [
                {
                    "id": "w0",
                    "tenant": "acme",
                    "model": {
                        "params": 7e9,
                        "active_params": 7e9,
                        "layers": 32,
                        "d_model": 4096,
                        "heads": 32,
                        "seq_len": 4096,
                    },
                    "stages": [{"id": "s", "kind": "serve", "chips": chips, "days": 1}],
                }
            ],
        }
    )


@pytest.mark.parametrize("chips", [8, 5000])
def test_a_plan_of_one_stage_or_none_placed_is_drawn_as_it_is(chips: int) -> None:
    """A plan that placed no stage drew its two cost charts anyway: axes of nothing (-$1 to
    $6 over 0 to 4), an empty cost table and an empty table of placed stages, as if there
    were costs to read. With nothing placed the page says so in their place; with one stage
    placed the charts and tables hold that stage and its cost, as the plan JSON does."""
    rules = ruleset()
    plan = make_plan(_serving(chips), rules=rules, solver="greedy").to_json(details=True)
    html = plan_report(plan, _serving(chips), rules, source="test")
    figures = figures_of(html)
    text = markup(html)
    if chips > 1000:  # more than any pool holds: nothing placed
        assert plan["assignments"] == [] and len(plan["unplaced"]) == 1
        assert not {"cost-workload", "cost-site"} & set(figures)
        assert 'id="no-costs"' in text and 'id="no-schedule"' in text
        assert 'id="cost-workload"' not in text and "Placed stages" not in text
    else:
        (a,) = plan["assignments"]
        assert {"cost-workload", "cost-site", "pool-0"} <= set(figures)
        assert 'id="no-costs"' not in text and 'id="no-schedule"' not in text
        bars = figures["cost-workload"]["data"]
        assert sum(sum(t["x"]) for t in bars) == pytest.approx(a["cost_usd"])
    assert {"map", "rules"} <= set(figures)


@pytest.mark.slow
def test_a_long_unbroken_text_never_widens_the_report(
    tmp_path: Path, example_path: Path, rules: RuleSet
) -> None:
    """A planner's note of 100,000 characters without a space (a plan document is user
    input) made the report 950,000 px wide: the page scrolled sideways at 1280 and 820 px.
    Text wraps anywhere it must now; the page is as wide as the window."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no Chromium on this machine")
    sync_api = pytest.importorskip("playwright.sync_api")
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json(details=True)
    plan["notes"] = ["<b>x</b>" + "n" * 100_000]
    plan["warnings"] = [{**w, "text": "w" * 20_000} for w in plan["warnings"]]
    report = tmp_path / "long.html"
    report.write_text(plan_report(plan, sc, rules, source="y" * 5_000), encoding="utf-8")

    def widths() -> list[list[int]]:
        out = []
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                for width in (1280, 820):
                    page = browser.new_page(viewport={"width": width, "height": 900})
                    page.goto(report.as_uri() + "#all")
                    page.wait_for_selector("body[data-rendered=true]")
                    out.append(
                        page.evaluate(
                            "[document.documentElement.scrollWidth, "
                            "document.documentElement.clientWidth]"
                        )
                    )
                    page.close()
            finally:
                browser.close()
        return out

    assert _alone(widths) == [[1280, 1280], [820, 820]]
