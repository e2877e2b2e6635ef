"""End-to-end: the `straits` command as a user runs it (subprocess, real exit codes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from test_rules_engine import DESIGN_REQUEST


def straits(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line_error(p: subprocess.CompletedProcess[str], *words: str) -> None:
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, p.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_help_lists_the_commands() -> None:
    p = straits("--help")
    assert p.returncode == 0
    for cmd in (
        "chips",
        "check",
        "estimate",
        "plan",
        "demo",
        "scenario",
        "rules",
        "ledger",
        "tokens",
        "serve",
    ):
        assert cmd in p.stdout


def test_chips_json_and_table() -> None:
    p = straits("chips", "--json")
    chips = {c["id"]: c for c in json.loads(p.stdout)}
    assert chips["H20"]["derived"]["class_2023"] == "not-controlled"
    assert chips["H100-SXM"]["figures"]["bf16_tflops"]["source"]
    table = straits("chips")
    assert table.returncode == 0 and "Ascend-910B" in table.stdout


def test_check_json_design_example() -> None:
    p = straits("check", "--json", stdin=json.dumps(DESIGN_REQUEST))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["decision"] == "conditional"
    assert out["requires"] == ["cac-security-assessment"]
    assert out["reasons"][0]["rule"] == "cn-cbdf-2024-assessment"


def test_check_json_list_and_held_authorization() -> None:
    held = {**DESIGN_REQUEST, "tenant": {"hq": "CN", "authorizations": ["cac-security-assessment"]}}
    p = straits("check", "--json", stdin=json.dumps([DESIGN_REQUEST, held]))
    out = json.loads(p.stdout)
    assert [d["decision"] for d in out] == ["conditional", "allow"]


def test_check_human_view_cites_rules() -> None:
    p = straits("check", stdin=json.dumps(DESIGN_REQUEST))
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    assert "CONDITIONAL" in text
    assert "cn-cbdf-2024-assessment" in text
    assert "Art. 7; confidence V" in text


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"chip": "H300"}, ("chip", "unknown chip 'H300'")),
        ({"date": "2025-02-30"}, ("date",)),
        ({"action": "rent"}, ("action", "'train'")),
        (
            {"data": {"origin": "CN", "classes": ["personal"], "subjects": -1}},
            ("data.subjects", "greater than or equal to 0"),
        ),
        ({"tenant": {"hq": "China"}}, ("tenant.hq",)),
    ],
)
def test_check_bad_requests_exit_2(change: dict[str, Any], words: tuple[str, ...]) -> None:
    one_line_error(
        straits("check", "--json", stdin=json.dumps({**DESIGN_REQUEST, **change})),
        "<stdin>",
        *words,
    )


def test_check_bad_json_and_list_index() -> None:
    one_line_error(straits("check", stdin="{not json"), "not valid YAML/JSON")
    bad = [DESIGN_REQUEST, {**DESIGN_REQUEST, "chip": "nope"}]
    one_line_error(straits("check", "--json", stdin=json.dumps(bad)), "[1].chip")


ESTIMATE: dict[str, Any] = {
    "model": {"params": 7.2e10, "layers": 80, "d_model": 8192, "heads": 64, "seq_len": 8192},
    "tokens": 1.5e13,
    "chip": "H100-SXM",
    "chips": 4096,
}


def test_estimate_json_contract() -> None:
    p = straits("estimate", "--json", stdin=json.dumps(ESTIMATE))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for key in ("flops", "chip_hours", "days", "mfu", "min_chips", "cost_usd"):
        assert key in out
    assert out["chips"] == 4096
    assert out["chip_hours"] == pytest.approx(out["days"] * 24 * 4096)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"tokens": 0}, ("tokens", "greater than")),
        ({"model": {**ESTIMATE["model"], "active_params": 1e12}}, ("model", "must not exceed")),
        ({"chip": "TPU-v9"}, ("chip", "unknown chip")),
    ],
)
def test_estimate_bad_input_exit_2(change: dict[str, Any], words: tuple[str, ...]) -> None:
    one_line_error(straits("estimate", "--json", stdin=json.dumps({**ESTIMATE, **change})), *words)


def test_plan_json_and_exit_codes(example_path: Path) -> None:
    p = straits("plan", str(example_path), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] in ("optimal", "feasible")
    q = straits("plan", str(example_path), "--json", "--regime", "ai-diffusion")
    assert q.returncode == 3
    plan = json.loads(q.stdout)
    assert plan["status"] == "infeasible"
    assert plan["unplaced"][0]["stage"] == "serve-intl"


def test_plan_table_shows_diagnosis(example_path: Path) -> None:
    p = straits("plan", str(example_path))
    text = " ".join(p.stdout.split())
    assert "options lawful and free" in text
    assert "PIPL cross-border (cac-security-assessment)" in text


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("straits: 1\nname: x\n  date: [2025\n", ("line 3",)),
        (
            "straits: 1\nname: x\ndate: 2025-06-01\ntenants: [{id: t, hq: CN}]\n"
            "sites: [{id: s, country: SG, operator_hq: SG, pools: [{chip: H300, count: 1, "
            "usd_per_chip_hour: 1}]}]\n",
            ("sites[0].pools[0].chip", "unknown chip"),
        ),
    ],
)
def test_plan_bad_scenario_exit_2(tmp_path: Path, content: str, words: tuple[str, ...]) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    one_line_error(straits("plan", str(f)), str(f), *words)


def test_demo_tells_both_regimes_and_records_them(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    p = straits("demo", "--db", db, "--report", str(tmp_path / "reports"))
    assert p.returncode == 0, p.stderr
    for regime in ("enacted", "ai-diffusion"):  # the demo ends with a report of each plan
        report = tmp_path / "reports" / f"demo-{regime}.html"
        assert str(report) in p.stdout.replace("\n", "")
        assert "window.PlotlyGeoAssets" in report.read_text()
    assert "enacted" in p.stdout and "ai-diffusion" in p.stdout
    assert "us-diffusion-tier3-hq-compute" in p.stdout
    assert "ledger verifies" in p.stdout
    j = straits("demo", "--json", "--db", db, "--no-report")
    out = json.loads(j.stdout)
    assert out["reports"] == {}
    assert set(out["plans"]) == {"enacted", "ai-diffusion"}
    # the first run records the two regimes' plans and the two drift cases' plans; the second
    # finds the same plans (same content ids) already recorded and appends nothing
    assert out["ledger"]["verify"] == {**out["ledger"]["verify"], "ok": True, "entries": 4}
    assert [e["new"] for e in out["ledger"]["entries"].values()] == [False, False]
    drift = {d["case"]: d for d in out["drift"]}
    h20 = next(d for c, d in drift.items() if "H20" in c)
    assert h20["affected_stages"] == ["assistant-72b/serve-cn"] and h20["blocking"]
    assert "us-ear-2025-h20" in {r["rule"] for c in h20["changes"] for r in c["rules"]}
    resc = next(d for c, d in drift.items() if "rescission" in c)
    moved = {s["stage"]: s for s in resc["replan"]["stages"] if s["moved"]}
    # the stage the rule left unplaced is placed; others may move too, as the figures decide
    assert moved["serve-intl"]["was"] == "unplaced"
    assert all(s["rules_lifted"] for s in moved.values())
    assert "what rule changes did" in p.stdout and "us-ear-2025-h20" in p.stdout
    # the rules that made the difference: each once, with the stages it moved
    tier3 = [g for g in out["rule_differences"] if g["rule"] == "us-diffusion-tier3-hq-compute"]
    assert len(tier3) == 1 and tier3[0]["regime"] == "ai-diffusion"
    assert {m["stage"] for m in tier3[0]["moved"]} == {"pretrain", "serve-intl"}
    for m in tier3[0]["moved"]:
        assert m["placements"]["enacted"] != m["placements"]["ai-diffusion"]
    assert tier3[0]["unmoved"] == ["chat-72b/sft"]
    assert "moved chat-72b/serve-intl: my-johor/H100-SXM under enacted -> unplaced" in p.stdout
    assert straits("demo", "--json", "--no-record").returncode == 0


def test_estimate_human_view_and_sweep() -> None:
    p = straits("estimate", stdin=json.dumps({**ESTIMATE, "country": "SG"}))
    assert p.returncode == 0, p.stderr
    text = " ".join(p.stdout.split())
    for words in ("predicted MFU", "layout", "memory per chip", "tCO2e", "whole-run overheads"):
        assert words in text
    s = straits("estimate", "--sweep", "chips", "--json", stdin=json.dumps(ESTIMATE))
    rows = json.loads(s.stdout)
    sizes = [r["chips"] for r in rows]
    assert sizes == sorted(sizes) and sizes[0] == rows[0]["min_chips"] and 4096 in sizes
    assert all(r["flops"] == rows[0]["flops"] for r in rows)
    bad = straits("estimate", "--sweep", "tokens", stdin=json.dumps(ESTIMATE))
    assert bad.returncode == 2 and "--sweep" in bad.stderr


def test_estimate_serving_from_a_tokens_per_second_target() -> None:
    req = {
        "kind": "serve",
        "model": ESTIMATE["model"],
        "chip": "H100-SXM",
        "days": 30,
        "tokens_per_s": 50000,
    }
    out = json.loads(straits("estimate", "--json", stdin=json.dumps(req)).stdout)
    assert out["chips"] == out["serving"]["replicas"] * out["serving"]["replica_chips"]
    assert out["chip_hours"] == pytest.approx(out["chips"] * 30 * 24)
    one_line_error(
        straits("estimate", stdin=json.dumps({**req, "tokens_per_s": None})),
        "`chips` or `tokens_per_s`",
    )


def test_plan_solver_choice_and_pareto(example_path: Path) -> None:
    g = straits("plan", str(example_path), "--json", "--solver", "greedy")
    assert g.returncode == 0, g.stderr
    assert json.loads(g.stdout)["solver"] == "greedy"
    c = straits("plan", str(example_path), "--json", "--time-limit", "30")
    doc = json.loads(c.stdout)
    assert doc["solver"] == "cpsat" and doc["gap"] is not None
    assert doc["baseline_usd"] >= doc["total_cost_usd"] + doc["penalty_usd"] - 1.0
    p = straits("plan", str(example_path), "--json", "--pareto", "3", "--time-limit", "20")
    assert p.returncode == 0, p.stderr
    points = json.loads(p.stdout)["pareto"]
    assert points and all({"makespan_hours", "cost_usd", "unplaced"} <= set(x) for x in points)
    bad = straits("plan", str(example_path), "--solver", "magic")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_scenario_generate_validate_and_plan(tmp_path: Path) -> None:
    out = tmp_path / "gen.yaml"
    g = straits(
        "scenario", "generate", "--workloads", "3", "--sites", "5", "--seed", "4", "-o", str(out)
    )
    assert g.returncode == 0, g.stderr
    again = straits("scenario", "generate", "--workloads", "3", "--sites", "5", "--seed", "4")
    assert again.stdout == out.read_text()  # same seed, same scenario
    v = straits("scenario", "validate", str(out))
    assert v.returncode == 0 and "valid (" in v.stdout
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]
    plan = straits("plan", str(out), "--json", "--time-limit", "3")
    assert plan.returncode in (0, 3), plan.stderr
    assert json.loads(plan.stdout)["status"] in ("optimal", "feasible", "infeasible")
    broken = tmp_path / "broken.yaml"
    broken.write_text(out.read_text().replace("tenant: t000", "tenant: nobody", 1))
    one_line_error(straits("scenario", "validate", str(broken)), str(broken), "nobody")


def test_plan_empty_scenario_exits_0(tmp_path: Path) -> None:
    f = tmp_path / "empty.yaml"
    f.write_text(
        "straits: 1\nname: empty\ndate: 2025-06-01\ntenants: [{id: t, hq: SG}]\n"
        "sites: [{id: s, country: SG, operator_hq: SG}]\nworkloads: []\n"
    )
    p = straits("plan", str(f))
    assert p.returncode == 0, p.stderr
    assert "no workloads" in p.stdout
