"""Reports and the console in Chromium: time to first render and file size.

Plans the shipped demo scenario (CP-SAT) and generated portfolios of 10 and 1,000 workloads
over 200 sites (greedy, other seed than the tests), writes each plan's report (build time in
CPU seconds: the machine is shared), and opens it in headless Chromium (Debian's, driven by
Playwright), recording the time from navigation to the moment every chart is drawn
(``performance.now()`` when the page sets ``data-rendered``), and every script error and
request to another host (``errors/out``: both 0 is the goal). The plan pages of the console
(`straits serve`) of the demo and of the 1,000 workloads (planned by the server, 5 s) are
measured the same way; their "served" column is the first view's and the repeat views' median
(``first/repeat``; ``STRAITS_PLAN_PAGE_CACHE=0`` in the environment measures them uncached).
Two baselines, measured in the same run: a page holding Plotly's bundle
and one small chart (what any Plotly page costs before Straits draws anything) and the
10-workload report. Last, how many of the large plan's stages the pool charts draw (web31).

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

import yaml
from playwright.sync_api import sync_playwright

from straits.loading import load_scenario
from straits.plan import make_plan
from straits.report import plan_report
from straits.report.page import render
from straits.rules import ruleset
from straits.simulate.generate import generate, generate_dict

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


#: per page, script errors and requests that left the file or the server (web31)
SEEN: dict[str, list[str]] = {"errors": [], "out": []}


def watch(page: Any, host: str = "127.0.0.1") -> None:
    """Record the page's script errors and every request to another host than ``host``."""
    page.on("pageerror", lambda e: SEEN["errors"].append(str(e)))
    page.on("console", lambda m: SEEN["errors"].append(m.text) if m.type == "error" else None)
    local = ("file:", "data:", "blob:", "about:", f"http://{host}:")
    page.on("request", lambda r: None if r.url.startswith(local) else SEEN["out"].append(r.url))


def seen() -> str:
    """Errors and requests out since the last call, as ``E/O``; cleared."""
    text = f"{len(SEEN['errors'])}/{len(SEEN['out'])}"
    for v in SEEN.values():
        v.clear()
    return text


def drawn(html: str) -> tuple[int, int]:
    """(stages drawn on the pool charts, as bars or marks; stages placed) of a report."""
    import json
    import re

    m = re.search(r'<script type="application/json" id="figures">(.*?)</script>', html, re.S)
    figures = json.loads(m.group(1)) if m else {}
    bars = sum(
        len(t.get("x") or [])
        for k, f in figures.items()
        if k.startswith("pool-")
        for t in f["data"]
        if t["type"] == "bar" or t.get("mode") == "markers+text"
    )
    placed = re.search(r"All ([\d,]+) placed stages", html)
    return bars, int(placed.group(1).replace(",", "")) if placed else 0


def render_ms(page: Any, url: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        page.goto("about:blank")
        page.goto(url, wait_until="commit")
        page.wait_for_selector("body[data-rendered=true]", timeout=120_000)
        times.append(float(page.get_attribute("body", "data-rendered-ms") or "nan"))
        # the part of it before the page's first byte: the server building the page
        SERVED.append(
            float(page.evaluate("performance.getEntriesByType('navigation')[0].responseStart"))
        )
    return statistics.median(times)


#: per render, ms from navigation to the page's first byte (the server's part; a file's ~0)
SERVED: list[float] = []


def served(first_apart: bool = False) -> str:
    """The median of :data:`SERVED` since the last call; cleared. With ``first_apart``, the
    first view and the median of the repeat views (``first/repeat``: the console keeps a
    finished plan's page after its first view, srv32)."""
    if first_apart and len(SERVED) > 1:
        text = f"{SERVED[0]:.0f}/{statistics.median(SERVED[1:]):.0f}"
    else:
        text = f"{statistics.median(SERVED):.0f}" if SERVED else "-"
    SERVED.clear()
    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def console_page_ms(page: Any, tmp: Path, sc_paths: list[Path], repeat: int) -> list[float]:
    """Each scenario's plan page in the console: submit through the API, open it signed in."""
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
                "admin",  # plans every tenant of the generated portfolio
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
        page.goto(base + "/ui/login")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_url(base + "/ui/")
        out = []
        for sc_path in sc_paths:
            job = httpx.post(
                base + "/v1/plans?time_limit=5",
                content=sc_path.read_bytes(),
                headers=h,
                timeout=600,
            )
            job.raise_for_status()
            plan_id = job.json()["id"]
            while httpx.get(f"{base}/v1/plans/{plan_id}", headers=h).json()["status"] in (
                "queued",
                "running",
            ):
                time.sleep(0.5)
            out.append(render_ms(page, f"{base}/ui/plans/{plan_id}", repeat))
        return out
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
        f"planning 10 and {args.workloads} workloads over {args.sites} sites (greedy) ...",
        file=sys.stderr,
    )
    small_name, big_name = "10 workloads", f"{args.workloads} workloads"
    big_doc = generate_dict(workloads=args.workloads, sites=args.sites, seed=args.seed)
    big_path = tmp / "big.yaml"
    big_path.write_text(yaml.safe_dump(big_doc, sort_keys=False))
    for name, n in ((small_name, 10), (big_name, args.workloads)):
        sc = generate(workloads=n, sites=args.sites, seed=args.seed)
        cases[name] = (sc, make_plan(sc, rules=rules, solver="greedy").to_json(details=True))
    files: dict[str, tuple[Path, float, int]] = {}
    for name, (sc, plan) in cases.items():
        t = time.process_time()
        html = plan_report(plan, sc, rules, source=name)
        build_s = time.process_time() - t
        path = tmp / f"{name.replace(' ', '-')}.html"
        path.write_text(html)
        files[name] = (path, build_s, len(html.encode()))
    bars, placed = drawn(files[big_name][0].read_text())
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
        watch(page)
        baseline = render_ms(page, base.as_uri(), args.repeat)
        rows = [
            (
                "baseline: Plotly + 1 chart",
                "-",
                base.stat().st_size / 1e6,
                baseline,
                served(),
                seen(),
            )
        ]
        for name, (path, build_s, size) in files.items():
            ms = render_ms(page, path.as_uri(), args.repeat)
            rows.append((f"report, {name}", f"{build_s:.2f}", size / 1e6, ms, served(), seen()))
        print(f"console: planning the demo and {big_name} on the server ...", file=sys.stderr)
        for name, path in (("demo", demo_path), (big_name, big_path)):
            (ms,) = console_page_ms(page, tmp, [path], args.repeat)
            rows.append((f"console plan page, {name}", "-", None, ms, served(True), seen()))
        browser.close()
    ten = next(ms for name, _, _, ms, _, _ in rows if name == f"report, {small_name}")
    print(
        f"{'page':<36}{'build (CPU s)':>14}{'size (MB)':>11}{'render (ms)':>13}"
        f"{'x baseline':>12}{'x 10 wl':>9}{'served (ms)':>13}{'errors/out':>12}"
    )
    for name, build, size, ms, first, errs in rows:
        mb = "-" if size is None else f"{size:.2f}"
        print(
            f"{name:<36}{build:>14}{mb:>11}{ms:>13.0f}{ms / baseline:>12.2f}{ms / ten:>9.2f}"
            f"{first:>13}{errs:>12}"
        )
    print(f"{big_name}: {bars:,} of {placed:,} placed stages drawn on the pool charts")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
