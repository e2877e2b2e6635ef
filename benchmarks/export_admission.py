"""Exports, admission and drift on a generated portfolio: how long each takes, per stage.

A generated scenario (N workloads over M sites, every site mapped to SkyPilot, Kubernetes and
Slurm) is planned greedily; then, with figures per placed stage:

* export_input: the lawful alternatives of every placed stage (rule verdicts memoised across
  stages) against the baseline of asking the rules afresh for each stage (a new PlanContext
  per stage, no shared memo);
* rendering the four targets;
* SkyPilot admission decisions per second in process, and through the REST route (FastAPI
  TestClient, token auth, JSON) - the ratio is what HTTP costs a launch; and what reading a
  task with SkyPilot's own parser costs (its import once, then per task);
* `impact` of a rule change (a later date and the other regime) without and with the re-plan.

Run: python benchmarks/export_admission.py [N] [M]
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from straits.admission import admit_skypilot, candidates
from straits.export import export_input, render
from straits.impact import impact
from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.plan.recheck import PlanContext
from straits.rules import ruleset
from straits.simulate.generate import generate_dict


def mapped(workloads: int, sites: int) -> dict[str, Any]:
    doc = generate_dict(workloads=workloads, sites=sites, seed=3)
    for s in doc["sites"]:
        name = s["id"].lower().replace("_", "-")
        s["targets"] = {
            "skypilot": {"cloud": "kubernetes", "region": name},
            "kubernetes": {"cluster": name},
            "slurm": {"cluster": name},
        }
    return doc


def timed(fn: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    m = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    rs = ruleset()
    sc = parse_scenario(mapped(n, m))
    plan, t_plan = timed(lambda: make_plan(sc, rules=rs, solver="greedy").to_json())
    stages = len(plan["assignments"])
    print(
        f"scenario: {n} workloads, {m} sites; greedy plan placed {stages} stages in {t_plan:.1f} s"
    )

    inp, t_inp = timed(lambda: export_input(sc, plan, rs, plan_id="bench"))
    alts = sum(len(j.alternatives) for j in inp.jobs)

    def per_stage_baseline() -> None:
        for a in plan["assignments"]:
            ctx = PlanContext(sc, plan, rs, date=sc.date, regime=plan["regime"])
            ctx.alternatives(ctx.placements[(a["workload"], a["stage"])])

    _, t_base = timed(per_stage_baseline)
    print(
        f"lawful alternatives: {alts} over {stages} stages; shared memo {t_inp:.2f} s "
        f"({t_inp / max(stages, 1) * 1000:.1f} ms/stage) vs fresh per stage {t_base:.2f} s "
        f"-> {t_base / max(t_inp, 1e-9):.1f}x"
    )
    targets = ("skypilot", "kubernetes", "karmada", "slurm")
    results, t_render = timed(lambda: render(inp, targets))
    files = sum(len(r.files) for r in results)
    print(f"render {', '.join(targets)}: {files} files in {t_render * 1000:.0f} ms")

    sky = next(r for r in results if r.target == "skypilot")
    tasks = [
        d
        for p, t in sky.files.items()
        if p.endswith(".yaml")
        for d in yaml.safe_load_all(t)
        if d and "resources" in d
    ]
    day = sc.date
    t0 = time.perf_counter()
    import sky as _sky  # noqa: F401  (what the server's first admission pays once)

    t_import = time.perf_counter() - t0
    _, t_parse = timed(lambda: [candidates(t) for t in tasks])
    print(
        f"SkyPilot's parser: imported in {t_import:.1f} s (once per server); first reading "
        f"{t_parse / len(tasks) * 1000:.2f} ms per task ({len(tasks)} tasks, "
        f"{sum(len(t['resources']['any_of']) for t in tasks) / len(tasks):.0f} candidates "
        "each on average)"
    )
    reps = max(1, 400 // max(len(tasks), 1))
    _, t_cold = timed(
        lambda: [admit_skypilot(t, (sc, plan), rs, date=day, plan_ref="bench") for t in tasks]
    )
    contexts: dict[Any, Any] = {}
    _, t_adm = timed(
        lambda: [
            admit_skypilot(t, (sc, plan), rs, date=day, plan_ref="bench", contexts=contexts)
            for _ in range(reps)
            for t in tasks
        ]
    )
    cold = len(tasks) / t_cold
    direct = reps * len(tasks) / t_adm
    http = http_rate(sc, plan, tasks, rs)
    print(
        f"admission: {cold:,.0f} decisions/s with a fresh plan context each, {direct:,.0f}/s "
        f"with the server's context cache ({direct / cold:.1f}x); {http:,.0f}/s through "
        f"POST /v1/skypilot/policy -> HTTP costs {direct / http:.1f}x (a task read once "
        f"is not parsed again: SkyPilot resends it for every relaunch)"
    )

    later = day + dt.timedelta(days=30)
    other = "ai-diffusion" if plan["regime"] == "enacted" else "enacted"
    r1, t1 = timed(lambda: impact("bench", sc, plan, rs, date=later, regime=other, replan=False))
    r2, t2 = timed(lambda: impact("bench", sc, plan, rs, date=later, regime=other, time_limit=10))
    print(
        f"impact ({later}, {other}): {len(r1.affected)} stages affected, re-check "
        f"{t1:.2f} s; with re-plan {t2:.1f} s ({len(r2.affected)} stages in the proposal)"
    )


def http_rate(sc: Any, plan: dict[str, Any], tasks: list[dict[str, Any]], rs: Any) -> float:
    import warnings

    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store import Store
    from straits.store.records import record_plan
    from straits.store.tokens import create_token

    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{Path(d) / 'b.db'}")
        made = make_plan(sc, rules=rs, solver="greedy")
        plan_id, _ = record_plan(store, sc, made, rs, {}, tenant="t", actor="bench")
        token = create_token(store, "t", "viewer")[0]
        bodies = []
        for t in tasks:
            t = {**t, "envs": {**t["envs"], "STRAITS_PLAN_ID": plan_id}}
            bodies.append(
                json.dumps(
                    json.dumps(
                        {
                            "task": yaml.safe_dump(t),
                            "skypilot_config": "{}\n",
                            "request_name": "launch",
                        }
                    )
                )
            )
        with TestClient(create_app(store)) as client:
            n = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 3 or n < 20:
                r = client.post(
                    "/v1/skypilot/policy",
                    content=bodies[n % len(bodies)],
                    params={"token": token, "date": str(sc.date)},
                )
                assert r.status_code in (200, 400), r.text
                n += 1
            return n / (time.perf_counter() - t0)


if __name__ == "__main__":
    main()
