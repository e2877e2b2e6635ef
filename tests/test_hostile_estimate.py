"""A hostile pass on the estimator and what consumes its interval: extreme but valid requests,
clusters the batch cannot feed, models no cluster holds, and the figures' consistency."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from straits.api import estimate_guidance
from straits.catalog import get_chip
from straits.cli import app
from straits.estimate import estimate_training, typical_chips
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
def test_the_typical_cluster_is_one_the_batch_can_feed(shape: dict, tokens: float) -> None:
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
def test_a_cluster_that_does_not_fit_says_why(request_: dict, note: str, codes: list[str]) -> None:
    req = EstimateRequest(chip="H100-SXM", **request_)
    from straits.api import run_estimate

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
    request_: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from straits.api import estimate_json
    from straits.cli import remote
    from straits.cli.common import money

    answer = estimate_json(EstimateRequest(**request_))

    class Answering:
        def estimate(self, data: dict) -> dict:
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


def _scenario(stage_chips: int | None, model: dict) -> Scenario:
    stage: dict = {"id": "pretrain", "kind": "pretrain", "tokens": 2e13}
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
    model: dict, stage_chips: int | None
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
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "fit_estimator.py"
    spec = importlib.util.spec_from_file_location("fit_estimator_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _edit(doc: dict, path: tuple[str, ...], value: Any) -> dict:
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
