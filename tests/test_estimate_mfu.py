"""A measured efficiency given to the estimator (`mfu` in an estimate request or a training
stage): it replaces the predicted MFU, the estimate says so, and the interval is the one for a
known efficiency."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer_cases import MODEL
from straits.catalog import get_chip
from straits.errors import EstimateError, InputError, ScenarioError
from straits.estimate import estimate_training
from straits.estimate.fitting import given_mfu_spread
from straits.estimate.interval import given_mfu_interval, training_interval
from straits.estimate.runs import fit_runs, published_runs
from straits.loading import parse_scenario, validate_as
from straits.model.request import EstimateRequest
from straits.model.scenario import ModelSpec
from straits.plan import make_plan

SPEC = ModelSpec(**MODEL)
H100 = get_chip("H100-SXM")
TOKENS = 1e12
CHIPS = 256


def est(mfu: float | None = None, **kw: Any) -> Any:
    return estimate_training(SPEC, TOKENS, H100, CHIPS, mfu=mfu, **kw)


def test_a_given_mfu_replaces_the_predicted_one_and_says_so() -> None:
    predicted, measured = est(), est(0.5)
    assert predicted.efficiency_basis == "predicted" and measured.efficiency_basis == "given"
    assert measured.mfu == 0.5 and measured.predicted_mfu == pytest.approx(predicted.mfu)
    js = measured.to_json()
    assert js["efficiency"] == {
        "basis": "given",
        "mfu": 0.5,
        "predicted_mfu": round(predicted.mfu, 4),
    }
    assert js["mfu"] == 0.5 and js["mfu_components"] == {}
    # the layout and memory are still the model's
    assert (measured.layout, measured.memory_gb) == (predicted.layout, predicted.memory_gb)


def test_giving_the_predicted_mfu_reproduces_the_predicted_estimate() -> None:
    p = est()
    m = est(p.mfu)
    assert m.step_seconds == pytest.approx(p.step_seconds, rel=1e-9)
    assert m.chip_hours == pytest.approx(p.chip_hours, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.01, 1.0), st.floats(0.01, 1.0))
def test_step_time_is_inverse_to_the_given_mfu(a: float, b: float) -> None:
    ea, eb = est(a), est(b)
    step = {"a": ea.overheads["step_chip_hours"], "b": eb.overheads["step_chip_hours"]}
    assert step["a"] * a == pytest.approx(step["b"] * b, rel=1e-9)
    if a < b:
        assert ea.chip_hours >= eb.chip_hours


def test_a_given_mfu_takes_the_known_efficiency_interval() -> None:
    measured, predicted = est(0.4), est()
    iv = given_mfu_interval()
    assert measured.interval == iv and predicted.interval == training_interval()
    assert measured.chip_hours_low <= measured.chip_hours <= measured.chip_hours_high
    assert iv.level == predicted.interval.level
    # p90 budgets the given-MFU estimate at its own high end
    p90 = est(0.4, risk="p90")
    assert p90.chip_hours == pytest.approx(measured.chip_hours_high)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1e-300, 0.0099, 1.0001, 2.0, math.nan, math.inf])
def test_an_mfu_outside_0_to_1_is_refused(bad: float) -> None:
    with pytest.raises(EstimateError) as err:
        est(bad)
    assert err.value.path == "mfu"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"mfu": 0}, "mfu"),
        ({"mfu": 1e-9}, "mfu"),
        ({"mfu": 1.5}, "mfu"),
        ({"mfu": "high"}, "mfu"),
        ({"kind": "serve", "days": 30, "chips": 8, "mfu": 0.4}, "mfu"),
    ],
)
def test_an_estimate_request_validates_mfu(extra: dict[str, Any], field: str) -> None:
    data = {"model": MODEL, "tokens": TOKENS, "chip": "H100-SXM", **extra}
    with pytest.raises(InputError) as err:
        validate_as(EstimateRequest, data, source="req.json")
    assert field in str(err.value)


def test_the_mfu_interval_is_derived_from_fit_runs_only() -> None:
    from straits.estimate.fitting import fit

    result = fit(fit_runs(), loo=False)
    spread = given_mfu_spread(result, fit_runs())
    fit_ids = {r.id for r in fit_runs()}
    used = {i for i, _ in spread.same_run} | {x for a, b, _ in spread.replicates for x in (a, b)}
    assert used and used <= fit_ids
    assert spread.sigma > 0 and spread.interval[0] == -spread.interval[1]
    # given every run, check runs would enter it: the caller's choice of runs is what keeps them out
    everything = given_mfu_spread(result, list(published_runs()))
    assert {i for i, _ in everything.same_run} - fit_ids


def _scenario(stage: dict[str, Any]) -> Any:
    return parse_scenario(
        {
            "straits": 1,
            "name": "mfu",
            "date": dt.date(2025, 6, 1),
            "tenants": [{"id": "t", "hq": "SG"}],
            "sites": [
                {
                    "id": "sg",
                    "country": "SG",
                    "operator_hq": "SG",
                    "pools": [{"chip": "H100-SXM", "count": CHIPS, "usd_per_chip_hour": 2.0}],
                }
            ],
            "workloads": [{"id": "w", "tenant": "t", "model": MODEL, "stages": [stage]}],
        }
    )


def test_a_training_stage_mfu_reaches_the_plan() -> None:
    stage = {"id": "pretrain", "kind": "pretrain", "tokens": 2e10, "chips": CHIPS}
    plans = {
        m: make_plan(
            _scenario({**stage, **({"mfu": m} if m else {})}), solver="greedy", time_limit=5
        )
        for m in (None, 0.6)
    }
    (a_pred,), (a_given,) = plans[None].assignments, plans[0.6].assignments
    assert a_given.chip_hours == pytest.approx(
        estimate_training(SPEC, 2e10, H100, CHIPS, mfu=0.6).chip_hours
    )
    assert a_pred.chip_hours == pytest.approx(estimate_training(SPEC, 2e10, H100, CHIPS).chip_hours)


@pytest.mark.parametrize(
    "stage",
    [
        {"id": "s", "kind": "serve", "days": 30, "chips": 8, "mfu": 0.4},
        {"id": "s", "kind": "pretrain", "tokens": 1e10, "mfu": 0},
        {"id": "s", "kind": "pretrain", "tokens": 1e10, "mfu": 1e-300},
        {"id": "s", "kind": "pretrain", "tokens": 1e10, "mfu": 1.2},
    ],
)
def test_a_stage_mfu_is_validated(stage: dict[str, Any]) -> None:
    with pytest.raises(ScenarioError) as err:
        _scenario(stage)
    assert "mfu" in str(err.value)


def _straits(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_estimate_with_mfu(tmp_path: Path) -> None:
    req = {"model": MODEL, "tokens": TOKENS, "chip": "H100-SXM", "chips": CHIPS, "mfu": 0.42}
    ok = _straits("estimate", "--json", stdin=json.dumps(req))
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert out["efficiency"]["basis"] == "given" and out["mfu"] == 0.42
    assert out["chip_hours_low"] <= out["chip_hours"] <= out["chip_hours_high"]
    bad = _straits("estimate", stdin=json.dumps({**req, "mfu": 1.5}))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "mfu" in bad.stderr
