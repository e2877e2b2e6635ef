"""`straits plan --time-limit` on odd portfolio shapes: wall time against the limit.

Each shape is written to a temporary directory and planned through the real command
(``python -m straits plan FILE --json -q --time-limit S``, with the source under test on
``PYTHONPATH``); the script prints, per shape, the wall time, its ratio to the limit, the
plan's own ``elapsed_s`` (the time after it is the output's) and its phases. The baseline, run
first in the same process, is a generated 10 x 20 portfolio at the same limit: compare ratios
with it, not seconds across machines. A second table plans one stage of N datasets with the
greedy solver and prints its rule-check seconds, each as a ratio to the smallest N's (linear:
about N / N0; quadratic, as before hostile h2: about (N / N0)^2).

Shapes (hostile h2): a chain of 2,000 stages; one stage after 1,500 others (fan-in); 2,000
after one (fan-out); 3,000 workloads with one deadline; one stage of 2,000 datasets; 5,000
sites of four pools; three pools of 5,000 availability windows; 100 generated workloads with
80,000 datasets (a large plan document); and `--pareto 3` on 1,000 workloads.

Run: python benchmarks/plan_shapes.py [--limit S] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from straits.simulate.generate import generate_dict

SRC = str(Path(__file__).resolve().parents[1] / "src")
MODEL = {"params": 1e9, "layers": 16, "d_model": 2048, "heads": 16, "seq_len": 2048}


def _pool(chip: str) -> dict[str, Any]:
    return {"chip": chip, "count": 100000, "usd_per_chip_hour": 2.0, "source": "x"}


def _base(stages: list[dict[str, Any]] | None = None, datasets: int = 1) -> dict[str, Any]:
    return {
        "straits": 1,
        "name": "shape",
        "date": "2025-06-01",
        "tenants": [{"id": "t0", "hq": "US"}],
        "sites": [
            {"id": "us1", "country": "US", "operator_hq": "US",
             "pools": [_pool("H100-SXM"), _pool("A100-SXM-80GB")]},
            {"id": "sg1", "country": "SG", "operator_hq": "SG", "pools": [_pool("H200-SXM")]},
        ],
        "datasets": [
            {"id": f"d{i}", "tokens": 1e8, "size_gb": 1, "located_at": ("us1", "sg1")[i % 2],
             "origin": "US", "classes": ["public"]}
            for i in range(datasets)
        ],
        "workloads": [{"id": "w0", "tenant": "t0", "model": MODEL, "stages": stages or []}],
    }  # fmt: skip


def _ft(i: Any, after: list[str] | None = None, datasets: int = 1) -> dict[str, Any]:
    stage = {"id": f"s{i}", "kind": "finetune", "datasets": [f"d{j}" for j in range(datasets)]}
    return stage | ({"after": after} if after else {})


def shapes() -> dict[str, tuple[dict[str, Any], list[str]]]:
    """name -> (scenario document, extra flags)."""
    out: dict[str, tuple[dict[str, Any], list[str]]] = {}
    out["baseline 10 x 20"] = (generate_dict(workloads=10, sites=20, seed=20001), [])
    out["chain 2,000"] = (_base([_ft(i, [f"s{i - 1}"] if i else None) for i in range(2000)]), [])
    fan_in = [_ft(i) for i in range(1500)] + [_ft("join", [f"s{i}" for i in range(1500)])]
    out["fan-in 1,500"] = (_base(fan_in), [])
    out["fan-out 2,000"] = (_base([_ft("root")] + [_ft(i, ["sroot"]) for i in range(2000)]), [])
    same = _base()
    same["workloads"] = [
        {"id": f"w{i}", "tenant": "t0", "model": MODEL, "deadline": "2025-07-01",
         "stages": [_ft(0)]} for i in range(3000)
    ]  # fmt: skip
    out["3,000 workloads, one deadline"] = (same, [])
    out["one stage of 2,000 datasets"] = (_base([_ft(0, datasets=2000)], datasets=2000), [])
    sites = _base([_ft(0)])
    sites["sites"] = [
        {"id": f"x{i}", "country": ("US", "SG", "DE", "JP")[i % 4], "operator_hq": "US",
         "pools": [_pool(c) for c in ("H100-SXM", "A100-SXM-80GB", "H200-SXM", "MI300X")]}
        for i in range(5000)
    ]  # fmt: skip
    sites["datasets"][0]["located_at"] = "x0"
    out["5,000 sites x 4 pools"] = (sites, [])
    win = _base([_ft(0)])
    day = dt.date(2025, 6, 1)
    for p in win["sites"][0]["pools"] + win["sites"][1]["pools"]:
        p["availability"] = [
            {"start": str(day + dt.timedelta(2 * i)), "end": str(day + dt.timedelta(2 * i + 1)),
             "count": 10 + i % 7}
            for i in range(5000)
        ]  # fmt: skip
    out["3 pools x 5,000 windows"] = (win, [])
    big = generate_dict(workloads=100, sites=20, seed=3)
    home = big["sites"][0]
    big["datasets"] += [
        {"id": f"pad{i}", "tokens": 1e6, "size_gb": 1, "located_at": home["id"],
         "origin": home["country"], "classes": ["public"]}
        for i in range(80000)
    ]  # fmt: skip
    out["100 workloads + 80,000 datasets"] = (big, [])
    pareto = generate_dict(workloads=1000, sites=20, seed=20001)
    out["--pareto 3, 1,000 workloads"] = (pareto, ["--pareto", "3"])
    return out


def run(path: Path, limit: float, flags: list[str]) -> tuple[float, dict[str, Any] | None]:
    env = dict(os.environ, PYTHONPATH=SRC)
    cmd = [sys.executable, "-m", "straits", "plan", str(path), "--json", "-q"]
    t0 = time.monotonic()
    done = subprocess.run(
        [*cmd, "--time-limit", str(limit), *flags], capture_output=True, text=True, env=env
    )
    wall = time.monotonic() - t0
    try:
        timings = json.loads(done.stdout).get("timings")
    except ValueError:
        timings = None
    return wall, timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=float, default=10.0)
    ap.add_argument("--only", nargs="*", default=None, help="shape names containing these")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (doc, flags) in shapes().items():
            wanted = not args.only or any(o in name for o in args.only)
            if not wanted and name != "baseline 10 x 20":
                continue
            path = Path(tmp) / "shape.json"
            path.write_text(json.dumps(doc, default=str), encoding="utf-8")
            wall, t = run(path, args.limit, flags)
            plan = f"plan {t['elapsed_s']:.1f} s, phases {t['phases']}" if t else "no timings"
            print(f"{name:34} wall {wall:6.1f} s = {wall / args.limit:4.2f} x limit; {plan}")
        print("one stage of N datasets (greedy, no limit): rule-check seconds, ratio to the first")
        first = None
        for n in (500, 1000, 2000):
            path = Path(tmp) / "datasets.json"
            path.write_text(json.dumps(_base([_ft(0, datasets=n)], datasets=n)), encoding="utf-8")
            _, t = run(path, 600, ["--solver", "greedy"])
            checks = (t or {}).get("within", {}).get("rule checks", 0.0)
            first = first or checks or 1e-9
            print(f"  {n:5} datasets: {checks:6.2f} s, {checks / first:5.1f} x")


if __name__ == "__main__":
    main()
