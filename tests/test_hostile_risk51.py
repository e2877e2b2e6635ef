"""risk51: a plan's risk (`--risk`, the scenario's `risk`) through every shell that shows it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from straits.cli import app


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def docs(example_path: Path) -> dict[str, dict[str, Any]]:
    """The example's greedy plan at p50 and at p90, as `plan --json` prints them."""
    out = {}
    for risk in ("p50", "p90"):
        r = _invoke("plan", str(example_path), "--solver", "greedy", "--risk", risk, "--json")
        assert r.exit_code == 0, r.output
        out[risk] = json.loads(r.stdout)
    return out


def _as_new(doc: dict[str, Any], tmp_path: Path, **edits: Any) -> Path:
    """``doc`` edited as a new plan (its `id` and `digest` deleted, as the error asks)."""
    new = {k: v for k, v in doc.items() if k not in ("id", "digest")}
    new.update(edits)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(new))
    return path


SHELLS = [
    ("show", ["plan", "{doc}", "--show"]),
    ("report", ["report", "{doc}", "-o", "{tmp}/r.html"]),
    ("export", ["export", "{doc}", "--to", "slurm", "-o", "{tmp}/ex"]),
]


@pytest.mark.parametrize(("made", "said"), [("p50", "p90"), ("p90", "p50")])
@pytest.mark.parametrize(("shell", "argv"), SHELLS, ids=[s for s, _ in SHELLS])
def test_a_plan_edited_to_another_risk_is_refused(
    docs: dict[str, dict[str, Any]],
    tmp_path: Path,
    made: str,
    said: str,
    shell: str,
    argv: list[str],
) -> None:
    """A p50 plan edited to say `risk: p90` (its id and digest deleted) was shown as "training
    at p90 (the estimates' high end)" over its central figures, and a p90 plan edited to p50
    carried the recorded p90 plan's id; the risk is its scenario's, as the date and regime."""
    path = _as_new(docs[made], tmp_path, risk=said)
    r = _invoke(*(a.format(doc=path, tmp=tmp_path) for a in argv))
    assert r.exit_code == 2, r.output
    assert f"{path}: risk: " in r.output
    # as printed (only id and digest gone) it is read
    ok = _as_new(docs[made], tmp_path)
    assert _invoke(*(a.format(doc=ok, tmp=tmp_path) for a in argv)).exit_code == 0


# --- the cost / time frontier --------------------------------------------------------------------
def _small_scenario(tmp_path: Path, risk: str) -> Path:
    """One pre-train of ~2 days on 64 H100s, two sites at two prices (a frontier of its own)."""
    from optimizer_cases import DAY0, MODEL

    sites = [
        {
            "id": sid,
            "country": "SG",
            "operator_hq": "SG",
            "pools": [{"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": price}],
        }
        for sid, price in (("a", 2.0), ("b", 3.0))
    ]
    doc = {
        "straits": 1,
        "name": "risk51",
        "date": DAY0,
        "risk": risk,
        "tenants": [{"id": "t", "hq": "SG"}],
        "sites": sites,
        "workloads": [
            {
                "id": "w",
                "tenant": "t",
                "model": MODEL,
                "stages": [{"id": "pretrain", "kind": "pretrain", "tokens": 2e10, "chips": 64}],
            }
        ],
    }
    path = tmp_path / f"{risk}.json"
    path.write_text(json.dumps(doc, default=str))
    return path


@pytest.mark.parametrize("risk", ["p50", "p90"])
def test_the_frontier_says_the_risk_its_plans_were_made_at(tmp_path: Path, risk: str) -> None:
    """`plan --pareto N --risk p90` printed its high-end makespans and costs as `{"pareto":
    [...]}` and under the same title as a p50 frontier, and the chart (`-o F.html`, `report
    --pareto`) said nothing either: a reader took them for central figures."""
    path = _small_scenario(tmp_path, "p50")
    base = ["plan", str(path), "--pareto", "2", "--time-limit", "20", "--risk", risk]
    r = _invoke(*base, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["risk"] == risk
    table = _invoke(*base)
    assert table.exit_code == 0, table.output
    assert ("training at p90" in table.stdout) == (risk == "p90")
    chart = tmp_path / "front.html"
    assert _invoke(*base, "-o", str(chart)).exit_code == 0
    assert ("training at p90" in chart.read_text()) == (risk == "p90")
    report = tmp_path / "report.html"
    own = _small_scenario(tmp_path, risk)  # `report` reads the scenario's own `risk`
    assert _invoke("report", str(own), "--pareto", "2", "-o", str(report)).exit_code == 0
    assert ("training at p90" in report.read_text()) == (risk == "p90")


# --- re-checks and impact ------------------------------------------------------------------------
@pytest.mark.parametrize("risk", ["p50", "p90"])
def test_a_recheck_and_an_impact_say_the_risk_the_plan_was_made_at(
    docs: dict[str, dict[str, Any]], tmp_path: Path, risk: str
) -> None:
    """`plan P --recheck` and `impact --plan P` of a p90 plan compared its high-end costs
    (`cost_was`, `cost_now`, the re-plan's totals) and said nothing of the risk."""
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(docs[risk]))
    date = docs[risk]["date"]
    runs = {
        "recheck": ["plan", str(path), "--recheck", "--date", date],
        "impact": ["impact", "--date", date, "--plan", str(path), "--no-replan"],
    }
    for name, argv in runs.items():
        r = _invoke("-q", *argv, "--json")  # -q: no note on the output
        assert r.exit_code == 0, (name, r.output)
        got = json.loads(r.stdout)
        impact = got["plans"][0] if "plans" in got else got
        assert impact["plan_risk"] == risk, name
        table = _invoke(*argv)
        assert table.exit_code == 0, (name, table.output)
        assert ("training at p90" in table.stdout) == (risk == "p90"), name


# --- exports -------------------------------------------------------------------------------------
@pytest.mark.parametrize("risk", ["p50", "p90"])
def test_the_exports_say_the_risk_the_plan_was_made_at(
    docs: dict[str, dict[str, Any]], tmp_path: Path, risk: str
) -> None:
    """A p90 plan's Slurm and SkyPilot files gave its high-end hours as "3642.44 h planned +
    25%", as a p50 plan's central ones, and its Kubernetes objects did not say the risk."""
    import yaml

    path = tmp_path / "plan.json"
    path.write_text(json.dumps(docs[risk]))
    out = tmp_path / "ex"
    r = _invoke("export", str(path), "--to", "all", "-o", str(out))
    assert r.exit_code == 0, r.output
    high = "(p90: the estimate's high end)"
    sbatch = (out / "slurm" / "johor" / "chat-72b-pretrain.sbatch").read_text()
    assert (f"h planned {high} + 25%" in sbatch) == (risk == "p90")
    pipeline = (out / "skypilot" / "chat-72b.pipeline.yaml").read_text()
    assert (high in pipeline) == (risk == "p90")
    stages = 0
    for f in (out / "kubernetes").rglob("chat-72b-*.yaml"):
        for obj in yaml.safe_load_all(f.read_text()):
            notes = (obj or {}).get("metadata", {}).get("annotations", {})
            if "straits.dev/plan-id" in notes:
                assert notes["straits.dev/risk"] == risk, f
                stages += 1
    assert stages >= 3


# --- the interval over the whole catalog (held; hypothesis) --------------------------------------
def _catalog_ids() -> list[str]:
    from straits.catalog import catalog

    return sorted(c.id for c in catalog())


@st.composite
def _any_request(draw: st.DrawFn) -> Any:
    """Any valid training or serving request on any chip of the catalog (Cloud TPUs too)."""
    from test_hostile_estimate import requests

    req = draw(requests()).model_copy(update={"chip": draw(st.sampled_from(_catalog_ids()))})
    if not draw(st.booleans()):
        return req
    serve: dict[str, Any] = {"kind": "serve", "days": draw(st.floats(0.001, 3650)), "mfu": None}
    if draw(st.booleans()):
        serve["tokens_per_s"] = draw(st.floats(0.001, 1e12))
    else:
        serve["chips"] = draw(st.integers(1, 10_000_000))
    serve["prompt_tokens"] = draw(st.integers(1, 100_000_000))
    serve["output_tokens"] = draw(st.integers(1, 100_000_000))
    return type(req).model_validate({**req.model_dump(exclude={"mfu"}), **serve})


@given(_any_request())
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_low_central_high_hold_on_every_chip_at_both_risks(req: Any) -> None:
    """low <= central <= high for chip-hours, days and cost, in `estimate --json` and at p90
    exactly (not within a tolerance), on every chip of the catalog, training and serving."""
    from straits.api import estimate_json, run_estimate
    from straits.errors import StraitsError
    from straits.estimate import at_risk

    try:
        answer = estimate_json(req)
    except StraitsError:
        return  # refused on a field (a shape no chip holds), not an interval
    for risk in ("p50", "p90"):
        j = answer if risk == "p50" else at_risk(run_estimate(req), risk).to_json()
        for key in ("chip_hours", "days", "cost_usd"):
            if j[key] is not None:
                assert j[f"{key}_low"] <= j[key] <= j[f"{key}_high"], (risk, key)
        if req.kind == "serve":
            assert j["interval"] is None and j["chip_hours_low"] == j["chip_hours_high"]
