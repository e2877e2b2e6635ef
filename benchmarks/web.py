"""Reports and the console in Chromium: time to first render and file size.

Plans the shipped demo scenario (CP-SAT) and a generated portfolio of 1,000 workloads over 200
sites (greedy, other seed than the tests), writes each plan's report, and opens it in headless
Chromium (Debian's, driven by Playwright), recording the time from navigation to the moment
every chart is drawn (``performance.now()`` when the page sets ``data-rendered``). The demo
plan page of the console (`straits serve`) is measured the same way. The baseline, measured in
the same run, is a page holding Plotly's bundle and one small chart: what any Plotly page costs
before Straits draws anything.

Goals: a 1,000-workload report renders in under 3 s and stays under 10 MB.

Run: python benchmarks/web.py [--workloads N] [--sites M] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from straits.loading import load_scenario
from straits.plan import make_plan
from straits.report import plan_report
from straits.report.page import render
from straits.rules import ruleset
from straits.simulate.generate import generate

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def render_ms(page: Any, url: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        page.goto("about:blank")
        page.goto(url, wait_until="commit")
        page.wait_for_selector("body[data-rendered=true]", timeout=120_000)
        times.append(float(page.get_attribute("body", "data-rendered-ms") or "nan"))
    return statistics.median(times)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def console_page_ms(page: Any, tmp: Path, sc_path: Path, repeat: int) -> float:
    """The demo plan's page in the console: submit through the API, open it signed in."""
    import httpx

    env = {**os.environ, "STRAITS_DATABASE_URL": f"sqlite:///{tmp / 'web.db'}"}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "straits", "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    try:
        token = subprocess.run(
            [
                sys.executable,
                "-m",
                "straits",
                "tokens",
                "create",
                "--tenant",
                "hz-cloud",
                "--role",
                "planner",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        token = next(w for w in token.split() if w.startswith("st_"))
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(base + "/healthz")
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        h = {"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"}
        job = httpx.post(
            base + "/v1/plans?time_limit=5", content=sc_path.read_bytes(), headers=h, timeout=60
        )
        if job.status_code == 400:  # a server without YAML bodies: send JSON
            import json

            import yaml

            job = httpx.post(
                base + "/v1/plans?time_limit=5",
                content=json.dumps(yaml.safe_load(sc_path.read_text()), default=str),
                headers={**h, "Content-Type": "application/json"},
                timeout=60,
            )
        plan_id = job.json()["id"]
        while httpx.get(f"{base}/v1/plans/{plan_id}", headers=h).json()["status"] in (
            "queued",
            "running",
        ):
            time.sleep(0.5)
        page.goto(base + "/ui/login")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/ui/")
        return render_ms(page, f"{base}/ui/plans/{plan_id}", repeat)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    chromium = os.environ.get("STRAITS_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        sys.exit("needs Chromium (apt-get install chromium)")
    rules = ruleset()
    tmp = Path(tempfile.mkdtemp(prefix="straits-web-"))
    demo_path = ROOT / "examples" / "offshore-2025.yaml"
    demo = load_scenario(demo_path)
    print("planning the demo scenario ...", file=sys.stderr)
    cases = {"demo": (demo, make_plan(demo, rules=rules, time_limit=5).to_json(details=True))}
    print(
        f"planning {args.workloads} workloads over {args.sites} sites (greedy) ...", file=sys.stderr
    )
    big = generate(workloads=args.workloads, sites=args.sites, seed=args.seed)
    cases[f"{args.workloads} workloads"] = (
        big,
        make_plan(big, rules=rules, solver="greedy").to_json(details=True),
    )
    files: dict[str, tuple[Path, float, int]] = {}
    for name, (sc, plan) in cases.items():
        t = time.perf_counter()
        html = plan_report(plan, sc, rules, source=name)
        build_s = time.perf_counter() - t
        path = tmp / f"{name.replace(' ', '-')}.html"
        path.write_text(html)
        files[name] = (path, build_s, len(html.encode()))
    base = tmp / "baseline.html"
    base.write_text(
        render(
            "chart.html.j2",
            title="baseline",
            figure_ids=["f"],
            table=None,
            figures={"f": {"data": [{"type": "scatter", "x": [1, 2], "y": [1, 2]}], "layout": {}}},
        )
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        baseline = render_ms(page, base.as_uri(), args.repeat)
        print(
            f"{'page':<28}{'build (s)':>10}{'size (MB)':>11}{'render (ms)':>13}{'x baseline':>12}"
        )
        print(
            f"{'baseline: Plotly + 1 chart':<28}{'-':>10}"
            f"{base.stat().st_size / 1e6:>11.2f}{baseline:>13.0f}{1.0:>12.2f}"
        )
        for name, (path, build_s, size) in files.items():
            ms = render_ms(page, path.as_uri(), args.repeat)
            print(
                f"{'report, ' + name:<28}{build_s:>10.2f}{size / 1e6:>11.2f}{ms:>13.0f}"
                f"{ms / baseline:>12.2f}"
            )
        ms = console_page_ms(page, tmp, demo_path, args.repeat)
        print(f"{'console plan page, demo':<28}{'-':>10}{'-':>11}{ms:>13.0f}{ms / baseline:>12.2f}")
        browser.close()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
