"""A hostile pass on the estimator and what consumes its interval: extreme but valid requests,
clusters the batch cannot feed, models no cluster holds, and the figures' consistency."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import benchmark_scripts
from straits.api import estimate_guidance, estimate_json, run_estimate
from straits.catalog import get_chip
from straits.cli import app
from straits.estimate import at_risk, estimate_training, typical_chips
from straits.estimate.calibration import fitted_document
from straits.loading import parse_scenario
from straits.model.request import EstimateRequest
from straits.model.scenario import ModelSpec, Scenario
from straits.plan import make_plan

H100 = get_chip("H100-SXM")
SMALL = {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096}


# --- the typical cluster fits -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("shape", "tokens"),
    [
        # 122 sequences a step feed at most 122 replicas: 2,264 = 8 x 283 has no layout they feed
        ({**SMALL, "seq_len": 8192, "global_batch_tokens": 1e6}, 2e13),
        # one sequence a step: one replica, at most TP8 x PP32 chips
        ({**SMALL, "global_batch_tokens": 4096}, 1e12),
    ],
)
def test_the_typical_cluster_is_one_the_batch_can_feed(
    shape: dict[str, Any], tokens: float
) -> None:
    model = ModelSpec(**shape)
    n = typical_chips(model, tokens, H100)
    assert estimate_training(model, tokens, H100, n).fits


# --- a cluster that does not fit says why, and what would -------------------------------------
BIG = {"params": 1e15, "layers": 1000, "d_model": 100000, "heads": 1000}


@pytest.mark.parametrize(
    ("request_", "note", "codes"),
    [
        # one chip short of the training state: more chips
        ({"model": SMALL, "tokens": 1e12, "chips": 1}, "does not fit: ", ["needs-more-chips"]),
        # 1e15 parameters, or 1e8-token sequences: no cluster holds them, whatever the count
        ({"model": BIG, "tokens": 1e13}, "does not fit on any cluster", ["fits-nowhere"]),
        (
            {"model": BIG, "tokens": 1e13, "chips": 1},
            "does not fit on any cluster",
            ["fits-nowhere"],
        ),
        (
            {"model": {**SMALL, "seq_len": 100_000_000}, "tokens": 10},
            "does not fit on any cluster",
            ["fits-nowhere"],
        ),
        # 2 chips hold it; ten million are more replicas than the batch feeds
        (
            {"model": SMALL, "tokens": 1e12, "chips": 10_000_000},
            "does not fit: a global batch",
            ["no-layout"],
        ),
        (
            {"model": SMALL, "tokens": 1e12, "chips": 9_999_991},
            "does not fit: a global batch",
            ["no-layout"],
        ),
    ],
)
def test_a_cluster_that_does_not_fit_says_why(
    request_: dict[str, Any], note: str, codes: list[str]
) -> None:
    req = EstimateRequest(chip="H100-SXM", **request_)

    est = run_estimate(req)
    assert not est.fits
    assert next(n for n in est.notes if n.startswith("does not fit")).startswith(note)
    hints = estimate_guidance(req, est)
    assert [h["code"] for h in hints if h["code"] != "long-run"] == codes
    for h in hints:
        for key in ("chips_that_fit", "min_chips"):
            if key in h:  # what the hint offers does fit
                assert run_estimate(req, h[key]).fits


# --- the table of a server's answer -------------------------------------------------------------
@pytest.mark.parametrize(
    "request_",
    [
        {"model": SMALL, "tokens": 1e12, "chip": "H100-SXM"},
        {"model": BIG, "tokens": 1e18, "chip": "H100-SXM", "usd_per_chip_hour": 10_000},
    ],
)
def test_a_server_answer_prints_as_the_local_table(
    request_: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from straits.cli import remote
    from straits.cli.common import money

    answer = estimate_json(EstimateRequest(**request_))

    class Answering:
        def estimate(self, data: dict[str, Any]) -> dict[str, Any]:
            return answer

    monkeypatch.setattr(remote, "client", lambda: Answering())
    result = CliRunner().invoke(
        app, ["--server", "http://straits.invalid", "estimate", "-"], input=json.dumps(request_)
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    for key in ("chip_hours", "days", "cost_usd"):  # never Python's repr of a JSON float
        assert repr(answer[key]) not in out
    for key in ("chip_hours", "chip_hours_low", "chip_hours_high"):
        assert f"{answer[key]:,.0f}" in out
    for key in ("cost_usd", "cost_usd_low", "cost_usd_high"):
        assert money(answer[key]) in out


# --- the planner never places a stage on a cluster that holds no layout --------------------------
FED_122 = {**SMALL, "seq_len": 8192, "global_batch_tokens": 1e6}  # 122 sequences a step


def _scenario(stage_chips: int | None, model: dict[str, Any]) -> Scenario:
    stage: dict[str, Any] = {"id": "pretrain", "kind": "pretrain", "tokens": 2e13}
    if stage_chips is not None:
        stage["chips"] = stage_chips
    pool = {"chip": "H100-SXM", "count": 100_000, "usd_per_chip_hour": 2.0}
    site = {"id": "sg", "country": "SG", "operator_hq": "SG", "pools": [pool]}
    workload = {"id": "w", "tenant": "t", "model": model, "stages": [stage]}
    return parse_scenario(
        {
            **{"straits": 1, "name": "x", "date": "2025-06-01"},
            **{"tenants": [{"id": "t", "hq": "SG"}], "sites": [site], "workloads": [workload]},
        }
    )


@pytest.mark.parametrize(
    ("model", "stage_chips"),
    [
        (FED_122, 2264),  # 8 x 283: no split the batch feeds
        (FED_122, 9999),  # 3^2 x 11 x 101: no tensor-parallel degree divides it
        (BIG, None),  # no cluster of the pool holds 1e15 parameters
    ],
)
def test_a_stage_with_no_layout_is_unplaced_for_memory(
    model: dict[str, Any], stage_chips: int | None
) -> None:
    plan = make_plan(_scenario(stage_chips, model), solver="greedy")
    assert not plan.assignments
    (u,) = plan.unplaced
    assert u.lost_codes == {"memory": 1}


@pytest.mark.parametrize("risk", ["p50", "p90"])
def test_the_planner_places_a_stage_where_it_fits(risk: str) -> None:
    sc = _scenario(None, FED_122)
    sc = sc.model_copy(update={"risk": risk})
    (a,) = make_plan(sc, solver="greedy").assignments
    model = ModelSpec(**FED_122)
    assert estimate_training(model, 2e13, H100, a.chips).fits


# --- the fitting script's --check can fail ------------------------------------------------------
def _fit_script() -> Any:
    return benchmark_scripts.load("fit_estimator")


def _edit(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    at = doc
    for key in path[:-1]:
        at = at[key]
    if value is _DROP:
        del at[path[-1]]
    else:
        at[path[-1]] = value(at[path[-1]]) if callable(value) else value
    return doc


_DROP = object()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("parameters", "era_decay"), lambda v: v * 1.01),
        (("parameters", "gemm_width"), lambda v: v + 10),
        (("interval", "high"), lambda v: v + 0.01),
        (("typical_days", "runs"), lambda v: v + 1),
        (("runs", "falcon2-11b", "used_for"), "fit"),
        (("runs", "llama3-8b", "predicted"), lambda v: v * 1.01),
        (("runs", "llama3-8b"), _DROP),
        (("fit", "runs"), lambda v: v[:-1]),
        (("parameters", "moe_gemm"), math.nan),
    ],
)
def test_the_fit_check_sees_every_kind_of_change(path: tuple[str, ...], value: Any) -> None:
    """`fit_estimator.py --check` compares the shipped file with a refit through
    `differences`: a parameter off by 1%, a run moved between fit and check, a run dropped."""
    fit_script = _fit_script()
    shipped = fitted_document()
    assert fit_script.differences(shipped, copy.deepcopy(shipped)) == []
    assert fit_script.differences(shipped, _edit(shipped, path, value))


def test_the_chips_sweep_marks_the_sizes_that_do_not_fit() -> None:
    request_ = {"model": FED_122, "tokens": 2e13, "chip": "H100-SXM"}
    runner = CliRunner()
    rows = json.loads(
        runner.invoke(
            app, ["estimate", "-", "--sweep", "chips", "--json"], input=json.dumps(request_)
        ).output
    )
    misfits = [f"{r['chips']:,}" for r in rows if not r["fits"]]
    assert misfits  # 32,768 and 65,536: more replicas than 122 sequences feed
    table = runner.invoke(app, ["estimate", "-", "--sweep", "chips"], input=json.dumps(request_))
    marked = [
        line.split("│")[1].split()[0]
        for line in table.output.splitlines()
        if "(does not fit)" in line
    ]
    assert marked == misfits


# --- invariants over the documented ranges ------------------------------------------------------
GPUS = ["A100-SXM-80GB", "A100-SXM-40GB", "A800-SXM", "H100-SXM", "H800-SXM", "H200-SXM", "H20"]
CHIPS = [*GPUS, "B200", "MI300X", "Ascend-910B", "Ascend-910C", "TPU-v4"]


@st.composite
def requests(draw: st.DrawFn) -> EstimateRequest:
    """Any valid training request: every field anywhere in its documented range (shapes kept
    within the shape check), with or without chips, a measured MFU, a price, a batch."""
    layers, width = draw(st.integers(1, 10_000)), draw(st.integers(1, 1_000_000))
    per = layers * float(width) ** 2
    if max(1.0, 0.05 * per) > min(1e15, 1e6 * per):
        layers, width, per = 32, 4096, 32 * 4096.0**2
    active = draw(st.floats(max(1.0, 0.05 * per), min(1e15, 1e6 * per)))
    heads = draw(st.integers(1, min(width, 100_000)))
    model: dict[str, Any] = {"params": active, "layers": layers, "d_model": width, "heads": heads}
    model["seq_len"] = draw(st.integers(1, 100_000_000))
    if draw(st.booleans()):
        model.update(params=min(1e15, active * draw(st.floats(1, 1000))), active_params=active)
        model["top_k"] = draw(st.none() | st.integers(1, 10_000))
    model["kv_heads"] = draw(st.none() | st.integers(1, heads))
    model["global_batch_tokens"] = draw(st.none() | st.floats(1, 1e12))
    model["precision"] = draw(st.sampled_from(["bf16", "fp8"]))
    return EstimateRequest(
        model=model,
        tokens=draw(st.floats(1, 1e18)),
        chip=draw(st.sampled_from(CHIPS)),
        software_year=draw(st.integers(2018, 2035)),
        chips=draw(st.none() | st.integers(1, 10_000_000)),
        mfu=draw(st.none() | st.floats(0.01, 1)),
        usd_per_chip_hour=draw(st.none() | st.floats(0, 10_000)),
    )


def _numbers(x: Any, path: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(x, list):
        for i, v in enumerate(x):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(x, int | float) and not isinstance(x, bool):
        yield path, x


@given(requests())
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_valid_request_answers_finite_ordered_and_consistent(req: EstimateRequest) -> None:
    answer = estimate_json(req)
    for path, value in _numbers(answer):
        assert math.isfinite(value), path
        assert value >= 0 or path.endswith(".error"), path
    assert answer["chip_hours"] > 0
    for key in ("chip_hours", "days", "cost_usd"):
        if answer[key] is not None:
            assert answer[f"{key}_low"] <= answer[key] <= answer[f"{key}_high"], key
    if answer["cost_usd"] is not None:
        want = answer["chip_hours"] * answer["usd_per_chip_hour"]
        assert math.isclose(answer["cost_usd"], want, rel_tol=1e-9)
    hours = answer["days"] * 24 * answer["chips"]
    assert math.isclose(hours, answer["chip_hours"], rel_tol=1e-9)
    est = run_estimate(req)  # planning at p90 budgets the high end, never less
    high = at_risk(est, "p90")
    assert high.chip_hours == pytest.approx(est.chip_hours_high, rel=1e-12)
    assert high.chip_hours >= est.chip_hours and high.hours >= est.hours
    assert (high.chip_hours_low, high.chip_hours_high) == pytest.approx(
        (est.chip_hours_low, est.chip_hours_high), rel=1e-12
    )


@given(requests(), st.floats(1.0, 100.0))
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_more_tokens_at_a_given_batch_never_take_fewer_chip_hours(
    req: EstimateRequest, more: float
) -> None:
    """With the batch and the cluster fixed, chip-hours grow with the tokens. (With the default
    batch they may not: it grows with the tokens on a sqrt(2) grid, and a larger batch wastes
    less of each step, so a run 2% longer crossing a step can cost 0.3% fewer chip-hours.)"""
    batch = req.model.global_batch_tokens or 4e6
    model = req.model.model_copy(update={"global_batch_tokens": batch})
    req = req.model_copy(update={"model": model, "tokens": min(req.tokens or 1.0, 1e16)})
    est = run_estimate(req)
    assert req.tokens is not None
    longer = estimate_training(
        model,
        req.tokens * more,
        get_chip(req.chip),
        est.chips,
        req.usd_per_chip_hour,
        software_year=req.software_year,
        mfu=req.mfu,
    )
    assert longer.chip_hours >= est.chip_hours


# --- the nearest runs ---------------------------------------------------------------------------
LLAMA32_1B = {"params": 1.24e9, "layers": 16, "d_model": 2048, "heads": 32, "seq_len": 8192}


@pytest.mark.parametrize(
    "request_",
    [
        {"model": LLAMA32_1B, "tokens": 9e12, "chip": "H100-SXM"},  # a distillation fit run
        {"model": SMALL, "tokens": 1e18, "chip": "H100-SXM"},
        {"model": {**SMALL, "params": 1.0e9}, "tokens": 1, "chip": "A100-SXM-40GB"},
    ],
)
def test_the_nearest_runs_say_which_were_fitted_on(request_: dict[str, Any]) -> None:
    fitted_ids = set(fitted_document()["fit"]["runs"])
    rows = estimate_json(EstimateRequest(**request_))["nearest_runs"]
    for row in rows:
        assert row["fitted"] == (row["run"] in fitted_ids)
        assert not (row["fitted"] and row["used_for"] == "check")
    table = CliRunner().invoke(app, ["estimate", "-"], input=json.dumps(request_)).output
    lines = [x for x in table.splitlines() if any(f"│ {r['run']} " in x for r in rows)]
    assert len(lines) == len(rows)
    assert not any("e+" in x for x in lines)  # tokens as 15.6T, not 1.56e+13


def test_a_distillation_run_is_shown_as_not_fitted() -> None:
    request_ = {"model": LLAMA32_1B, "tokens": 9e12, "chip": "H100-SXM"}
    rows = estimate_json(EstimateRequest(**request_))["nearest_runs"]
    (row,) = [r for r in rows if r["run"] == "llama3.2-1b"]
    assert (row["used_for"], row["scope"], row["fitted"]) == ("fit", "distillation", False)


def test_the_fit_refuses_a_check_run() -> None:
    """fit_estimator.py passes `fit_runs()`; a caller passing every run would fit on the check
    runs whose errors are the accuracy figures: refused before any search."""
    from straits.estimate.fitting import fit
    from straits.estimate.runs import check_runs, fit_runs

    with pytest.raises(ValueError, match="check runs"):
        fit([*fit_runs(), check_runs()[0]], loo=False)


@pytest.mark.parametrize(
    "request_",
    [
        {"model": SMALL, "tokens": 1, "chip": "H100-SXM"},  # 5e-8 chip-hours
        {"model": BIG, "tokens": 1e18, "chip": "H100-SXM", "usd_per_chip_hour": 10_000},
    ],
)
def test_the_figures_of_a_tiny_or_huge_run_read_as_figures(request_: dict[str, Any]) -> None:
    """Not '0 (80%: 0 - 0)', '0 min' or '$0' for a run of one token; no exponent for 1e18."""
    out = CliRunner().invoke(app, ["estimate", "-"], input=json.dumps(request_)).output
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1]:
            rows[cells[1].split(" at ")[0]] = cells[2]
    for label in ("chip-hours", "wall-clock", "cost"):
        value = rows[label]
        assert "e+" not in value and "e-" not in value
        assert not value.startswith(("0 ", "0 min", "$0 ")), value


# --- the API answers as the CLI -----------------------------------------------------------------
EDGES = [
    {"model": BIG, "tokens": 1e18, "chip": "H100-SXM"},
    {"model": SMALL, "tokens": 1e12, "chip": "H100-SXM", "chips": 10_000_000},
    {"model": SMALL, "tokens": 1, "chip": "TPU-v4", "mfu": 0.01, "software_year": 2018},
    {"model": {**SMALL, "seq_len": 100_000_000}, "tokens": 10, "chip": "Ascend-910B"},
]


def test_the_api_answers_edge_requests_as_the_cli(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from straits.server import create_app
    from straits.store import Store
    from straits.store.tokens import create_token

    store = Store(f"sqlite:///{tmp_path / 'api.db'}")
    try:
        token = create_token(store, "a", "viewer")[0]
        with TestClient(create_app(store), raise_server_exceptions=False) as client:
            for request_ in EDGES:
                r = client.post(
                    "/v1/estimate", json=request_, headers={"Authorization": f"Bearer {token}"}
                )
                assert r.status_code == 200, r.text
                cli = CliRunner().invoke(
                    app, ["estimate", "-", "--json"], input=json.dumps(request_)
                )
                assert r.json() == json.loads(cli.output)
    finally:
        store.close()
