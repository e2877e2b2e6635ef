"""The console in a real browser: Debian's Chromium driven by Playwright against `straits serve`.

Slow (a server process and a browser): skipped by `make test`, run by CI. Without a Chromium
the tests skip, unless STRAITS_REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure.
Screenshots go to STRAITS_SCREENSHOTS (default: the test's temporary directory).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = (
    os.environ.get("STRAITS_CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)
if CHROMIUM is None:
    if os.environ.get("STRAITS_REQUIRE_BROWSER") == "1":
        raise RuntimeError("STRAITS_REQUIRE_BROWSER=1 but no chromium executable was found")
    pytest.skip("no Chromium on this machine (apt-get install chromium)", allow_module_level=True)

playwright = pytest.importorskip("playwright.sync_api")
Page = Any


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _straits(*args: str, env: dict[str, str]) -> str:
    p = subprocess.run(
        [sys.executable, "-m", "straits", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return p.stdout


class Server:
    def __init__(self, tmp: Path) -> None:
        self.db = f"sqlite:///{tmp / 'browser.db'}"
        self.env = {**os.environ, "STRAITS_DATABASE_URL": self.db}
        # a signing key, so the log issues checkpoints and receipts can be downloaded
        _straits(
            "ledger",
            "keygen",
            "--origin",
            "straits.test/console",
            "-o",
            str(tmp / "ledger.key"),
            env=self.env,
        )
        self.env["STRAITS_LEDGER_KEY"] = str(tmp / "ledger.key")
        self.key_pub = tmp / "ledger.key.pub"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "straits",
                "serve",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        self.proc.stderr.read().decode() if self.proc.stderr else "server exited"
                    ) from None
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def token(self, tenant: str, role: str) -> str:
        out = _straits("tokens", "create", "--tenant", tenant, "--role", role, env=self.env)
        m = re.search(r"st_[A-Za-z0-9_-]+", out)
        assert m is not None, out
        return m.group(0)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("console"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("STRAITS_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def sign_in(page: Page, server: Server, token: str) -> None:
    page.goto(server.url + "/ui/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(server.url + "/ui/")


def submit_demo(page: Page, server: Server, example: Path, **options: str) -> str:
    page.goto(server.url + "/ui/submit")
    page.set_input_files("#file", str(example))
    page.fill("input[name=time_limit]", "3")
    for name, value in options.items():
        page.select_option(f"select[name={name}]", value)
    page.get_by_role("button", name="Plan it").click()
    page.wait_for_url(re.compile(r".*/ui/plans/[0-9a-f]{32}$"))
    plan_id: str = page.url.rsplit("/", 1)[1]
    # the page polls while the plan runs and reloads itself when it is done
    page.wait_for_selector("#why-not", timeout=120_000)
    page.wait_for_selector("body[data-rendered=true]")
    return plan_id


def test_submit_watch_open_gantt_compare_and_download(
    page: Page, server: Server, example_path: Path, shots: Path, tmp_path: Path
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    outside: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if not r.url.startswith((server.url, "data:", "blob:", "file:"))
            else None
        ),
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(server.url + "/ui/")
    page.screenshot(path=str(shots / "console-sign-in.png"))
    sign_in(page, server, server.token("hz-cloud", "planner"))
    plan_id = submit_demo(page, server, example_path)
    # the Gantt of the busiest pool and the map are drawn (Plotly made their SVG)
    # charts are drawn as they come into view: the busiest pool's Gantt and the map
    for chart in ("#pool-0", "#map"):
        page.locator(chart).scroll_into_view_if_needed()
        page.wait_for_selector(f"{chart} .main-svg")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "console-plan.png"))
    # a section's picture without the sticky contents bar drawn over its heading
    page.add_style_tag(content="nav.toc { position: static; }")
    page.locator("#schedule").screenshot(path=str(shots / "console-gantt.png"))
    page.locator("#why-not").screenshot(path=str(shots / "console-why-not.png"))
    page.goto(server.url + "/ui/")
    assert page.locator(f"tr[data-plan='{plan_id}'] .status.done").count() == 1
    page.screenshot(path=str(shots / "console-plans.png"))
    # switch regime: the same scenario under the AI Diffusion rule, side by side
    page.goto(f"{server.url}/ui/plans/{plan_id}")
    page.get_by_role("link", name="Compare regimes").click()
    page.wait_for_selector("table#compare")
    assert page.locator("tr.moved[data-stage='chat-72b/pretrain']").count() == 1
    assert page.locator("[data-rule='us-diffusion-tier3-hq-compute']").count() >= 1
    page.screenshot(path=str(shots / "console-compare.png"), full_page=True)
    # downloads: the report (self-contained) and the receipt
    page.goto(f"{server.url}/ui/plans/{plan_id}")
    with page.expect_download() as dl:
        page.get_by_role("link", name="Download report").click()
    report = tmp_path / "report.html"
    dl.value.save_as(report)
    assert "window.PlotlyGeoAssets" in report.read_text()
    with page.expect_download() as dl2:
        page.get_by_role("link", name="Download receipt").click()
    receipt = tmp_path / "receipt.json"
    dl2.value.save_as(receipt)
    checked = subprocess.run(
        [
            sys.executable,
            "-m",
            "straits",
            "ledger",
            "verify-receipt",
            str(receipt),
            "--pubkey",
            str(server.key_pub),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr  # offline, the key alone
    # the downloaded report renders offline, from the file alone
    page.goto(report.as_uri() + "#all")
    page.wait_for_selector("body[data-rendered=true]")
    page.wait_for_selector("#pool-0 .main-svg")
    page.wait_for_selector("#rules .main-svg")
    page.screenshot(path=str(shots / "report.png"))
    assert errors == [] and outside == []


def test_what_if_slider_and_regime(
    page: Page, server: Server, example_path: Path, shots: Path
) -> None:
    sign_in(page, server, server.token("hz-cloud", "planner"))
    plan_id = submit_demo(page, server, example_path)
    page.goto(f"{server.url}/ui/plans/{plan_id}/whatif")
    page.select_option("select[name=regime]", "ai-diffusion")  # submits itself
    page.wait_for_selector("tr[data-severity=blocking]")
    page.screenshot(path=str(shots / "console-whatif.png"), full_page=True)
    # the slider moves the date with the keyboard; releasing it re-checks the plan
    slider = page.locator("#day")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("ArrowLeft")
    slider.dispatch_event("change")
    page.wait_for_url(re.compile(r".*whatif\?i=\d+"))
    assert page.locator("#day-out").inner_text() < "2025-06-01"


def test_a_second_tenant_cannot_see_the_first(
    page: Page, server: Server, example_path: Path
) -> None:
    sign_in(page, server, server.token("hz-cloud", "planner"))
    plan_id = submit_demo(page, server, example_path)
    page.context.clear_cookies()
    sign_in(page, server, server.token("other-co", "planner"))
    assert page.locator(f"tr[data-plan='{plan_id}']").count() == 0
    response = page.goto(f"{server.url}/ui/plans/{plan_id}")
    assert response is not None and response.status == 404
    response = page.goto(f"{server.url}/ui/plans/{plan_id}/report.html")
    assert response is not None and response.status == 404


def test_a_bad_scenario_shows_the_field_path(
    page: Page, server: Server, example_path: Path, shots: Path
) -> None:
    sign_in(page, server, server.token("hz-cloud", "planner"))
    page.goto(server.url + "/ui/submit")
    bad = example_path.read_text().replace("count: 4096", "count: -5", 1)
    page.fill("#text", bad)
    page.get_by_role("button", name="Plan it").click()
    errors = page.locator("#submit-errors")
    errors.wait_for()
    paths = page.locator("#submit-errors [data-path]").evaluate_all(
        "els => els.map(e => e.getAttribute('data-path'))"
    )
    assert any(p.startswith("sites[") and p.endswith(".count") for p in paths), paths
    assert page.locator("#text").input_value() == bad  # nothing the user typed is lost
    page.screenshot(path=str(shots / "console-bad-scenario.png"))


@pytest.mark.parametrize("width", [1280, 820])
def test_pages_fit_and_every_control_has_a_label(
    page: Page, server: Server, example_path: Path, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 1000})
    sign_in(page, server, server.token("hz-cloud", "planner"))
    plan_id = submit_demo(page, server, example_path, risk="p90")  # the form's every select
    for path in (
        "/ui/",
        "/ui/submit",
        "/ui/ledger",
        "/ui/rules",
        f"/ui/plans/{plan_id}",
        f"/ui/plans/{plan_id}/whatif",
    ):
        page.goto(server.url + path)
        page.wait_for_selector("body[data-rendered=true]")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)
        unlabelled = page.evaluate("""() => [...document.querySelectorAll(
            'input:not([type=hidden]), select, textarea')].filter(el =>
            !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map(el =>
            el.name || el.id)""")
        assert unlabelled == [], (path, unlabelled)
    # keyboard: the first Tab reaches the skip link, which leads to the content
    page.goto(server.url + "/ui/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"


def test_a_hostile_report_runs_nothing_and_stays_offline(
    page: Page, example_path: Path, tmp_path: Path
) -> None:
    """A report whose text is hostile (Plotly markup in a rule pack's annotations, script tags
    in the plan's notes and warnings) opened from the file: no script of its text runs, no
    request leaves the file, even while the user hovers over the charts. Before the fix the
    rules chart fetched two URLs from a rule's id and title (found by a hostile pass, atk10;
    the pack loader now refuses such an id, the title is still free text)."""
    import copy

    from straits.loading import load_scenario
    from straits.plan import make_plan
    from straits.report import plan_report
    from test_report import hostile_rules

    rules = hostile_rules(tmp_path)
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, solver="greedy").to_json(details=True)
    evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)>\u2028<!--"
    plan = copy.deepcopy(plan)
    plan["notes"] = [evil]
    plan["warnings"] = [{"rule": evil, "citation": evil, "confidence": "V", "text": evil}]
    report = tmp_path / "hostile.html"
    report.write_text(plan_report(plan, sc, rules, source=evil))
    dialogs: list[str] = []
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # the report's own policy refuses nothing the report itself needs (a refusal is logged)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)

    def record(route: Any) -> None:
        url = route.request.url
        requests.append(url)
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    page.context.route("**/*", record)
    page.goto(report.as_uri() + "#all")
    page.wait_for_selector("body[data-rendered=true]")
    bars = page.locator("#rules .bars .point")
    assert bars.count() > 0
    for i in range(bars.count()):
        bars.nth(i).hover(force=True)
    page.locator("#map").scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    assert dialogs == [] and errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
    assert page.locator("#rules svg a").count() == 0  # no link out of the file


def test_api_docs_render_under_their_policy_from_the_server_alone(
    page: Page, server: Server
) -> None:
    """Swagger UI and ReDoc draw the API under the Content-Security-Policy their inline script
    is hashed into, and they ask nothing of another host: ReDoc's bundle asked for its logo
    at cdn.redoc.ly (an external request from /redoc before the policy, a hostile pass found
    it, atk10; then the policy refused it, an error in the browser's console); the bundle is
    now served with the logo taken from this server."""
    outside: list[str] = []
    blocked: list[str] = []
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "request",
        lambda r: (
            outside.append(r.url) if not r.url.startswith((server.url, "data:", "blob:")) else None
        ),
    )
    page.on(
        "requestfailed",
        lambda r: blocked.append(r.url) if r.failure == "csp" else None,  # refused by the policy
    )
    page.goto(server.url + "/docs")
    page.wait_for_selector(".swagger-ui .info .title")
    page.goto(server.url + "/redoc")
    page.wait_for_selector(".api-content h1")
    page.wait_for_timeout(500)
    assert errors == []
    assert outside == [] and blocked == []


def _running_plan(page: Page, server: Server, tmp_path: Path) -> str:
    """Sign in as an admin and submit a portfolio that plans for many seconds (80 workloads
    over 40 sites, 20 s of search); the plan page, while it runs."""
    scenario = tmp_path / "portfolio.yaml"
    _straits(
        "scenario",
        "generate",
        "--workloads",
        "80",
        "--sites",
        "40",
        "--seed",
        "3",
        "-o",
        str(scenario),
        env=server.env,
    )
    sign_in(page, server, server.token("ops", "admin"))
    page.goto(server.url + "/ui/submit")
    page.set_input_files("#file", str(scenario))
    page.fill("input[name=time_limit]", "20")
    page.get_by_role("button", name="Plan it").click()
    page.wait_for_url(re.compile(r".*/ui/plans/[0-9a-f]{32}$"))
    return str(page.url).rsplit("/", 1)[1]


def test_a_page_that_polls_goes_to_sign_in_when_the_session_ends(
    page: Page, server: Server, tmp_path: Path
) -> None:
    """A running plan's page polls its progress (and the plan list its rows); once the session
    ended (signed out in another tab, the token revoked, the cookie expired) fetch followed
    the server's redirect to the sign-in page and put that whole page, a second <main> and
    all, into the progress box (found by the hostile pass atk23). The page now loads itself
    again, and the server sends it to sign in."""
    _running_plan(page, server, tmp_path)
    assert page.locator("[data-poll]").count() == 1
    page.context.clear_cookies()
    page.wait_for_url(server.url + "/ui/login", timeout=20_000)
    assert page.locator("main").count() == 1
    assert page.get_by_label("API token").count() == 1


def test_without_scripts_a_running_plan_reloads_until_it_is_done(
    browser: Any, server: Server, example_path: Path
) -> None:
    """With JavaScript off nothing polls: a running plan's page said 'running' until the user
    thought of reloading it (found by the hostile pass atk23). It reloads itself now (a
    <noscript> refresh) until the plan is done; every form works without scripts."""
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, server, server.token("hz-cloud", "planner"))
        page.goto(server.url + "/ui/submit")
        page.set_input_files("#file", str(example_path))
        page.fill("input[name=time_limit]", "3")
        page.get_by_role("button", name="Plan it").click()
        page.wait_for_url(re.compile(r".*/ui/plans/[0-9a-f]{32}$"))
        page.wait_for_selector("#why-not", timeout=120_000)  # no reload asked for
        assert page.locator("meta[http-equiv=refresh]").count() == 0  # done: it stays
        page.get_by_role("link", name="What if: another date").click()
        page.select_option("select[name=regime]", "ai-diffusion")
        page.get_by_role("button", name="Check").click()
        page.wait_for_selector("tr[data-severity=blocking]")
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(server.url + "/ui/login")
    finally:
        context.close()
