"""A hostile pass on what `straits estimate` prints and answers (atk37): the table, the JSON
shape, and the refusals of a shell."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from straits.api import estimate_json, run_estimate, sweep_sizes
from straits.cli import app
from straits.model.request import EstimateRequest

SMALL = {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096}


def _rows(output: str) -> dict[str, str]:
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1]:
            rows[cells[1].split(" at ")[0]] = cells[2]
    return rows


def test_a_chip_without_a_price_prints_no_cost_range() -> None:
    """B200 has no reference price: the cost row read '- (80%: - - -)'."""
    request: dict[str, Any] = {"model": SMALL, "tokens": 1e12, "chip": "B200", "chips": 64}
    result = CliRunner().invoke(app, ["estimate", "-"], input=json.dumps(request))
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert rows["cost"] == "-"
    assert "80%" in rows["chip-hours"]  # the figures that exist keep their interval


# --- the JSON answer's shape --------------------------------------------------------------------
COMMON = {
    "kind", "chip", "chips", "min_chips", "fits", "flops", "mfu", "hours", "days", "chip_hours",
    "cost_usd", "chip_hours_low", "chip_hours_high", "days_low", "days_high", "cost_usd_low",
    "cost_usd_high", "interval", "risk", "usd_per_chip_hour", "layout", "global_batch_tokens",
    "step_seconds", "memory_per_chip_gb", "mfu_components", "overheads", "notes", "energy",
    "chips_basis", "ignored", "guidance",
}  # fmt: skip
TRAINING = COMMON | {"software_year", "efficiency", "nearest_runs"}
SERVING = COMMON | {"serving"}
NEAREST = {
    "run", "name", "chip", "chips", "tokens", "published_chip_hours", "predicted_chip_hours",
    "error", "used_for", "fitted", "scope", "source", "confidence",
}  # fmt: skip


@pytest.mark.parametrize(
    ("request_", "keys"),
    [
        ({"model": SMALL, "tokens": 1e12, "chip": "H100-SXM"}, TRAINING),
        ({"model": SMALL, "tokens": 1e12, "chip": "H100-SXM", "chips": 64, "mfu": 0.4}, TRAINING),
        ({"model": SMALL, "tokens": 1e12, "chip": "H100-SXM", "chips": 1}, TRAINING),
        ({"model": SMALL, "chip": "H100-SXM", "kind": "serve", "days": 30, "chips": 8}, SERVING),
        (
            {"model": SMALL, "chip": "H100-SXM", "kind": "serve", "days": 30, "tokens_per_s": 1e4},
            SERVING,
        ),
        ({"model": SMALL, "chip": "B200", "kind": "serve", "days": 1, "chips": 1}, SERVING),
    ],
)
def test_every_answer_of_a_kind_has_the_same_keys(request_: dict[str, Any], keys: set[str]) -> None:
    """A serving estimate that gave `chips` and no target had no `serving` key at all, where
    one sized for `tokens_per_s` had it: the keys of an answer depend on its kind alone."""
    result = CliRunner().invoke(app, ["estimate", "-", "--json"], input=json.dumps(request_))
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == keys
    for row in out.get("nearest_runs", []):
        assert set(row) == NEAREST
    if out["kind"] == "serve":
        assert out["interval"] is None and "efficiency" not in out
        assert (out["serving"] is None) == ("tokens_per_s" not in request_)
    else:
        assert set(out["interval"]) == {"level", "low_factor", "high_factor", "basis"}
        assert set(out["efficiency"]) == {"basis", "mfu", "predicted_mfu"}


# --- --help says what the command does ------------------------------------------------------------
def _help() -> str:
    result = CliRunner().invoke(app, ["estimate", "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    return " ".join(result.output.replace("│", " ").split())


def _run(request_: dict[str, Any], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["estimate", "-", "--json", *args], input=json.dumps(request_))
    return result.exit_code, result.output


def test_the_mfu_range_in_help_is_the_one_accepted() -> None:
    """--help said `mfu` was '0-1' while 0 to 0.01 is refused as a unit slip."""
    found = re.search(
        r"mfu \(a per-step MFU measured on your stack, ([0-9.]+)-([0-9.]+)\)", _help()
    )
    assert found is not None
    lo, hi = float(found.group(1)), float(found.group(2))
    base = {"model": SMALL, "tokens": 1e12, "chip": "H100-SXM", "chips": 64}
    for mfu in (lo, hi):
        assert _run({**base, "mfu": mfu})[0] == 0
    for mfu in (lo * 0.99, hi * 1.01):
        code, output = _run({**base, "mfu": mfu})
        assert code == 2 and "mfu" in output


def test_the_chips_range_in_help_is_the_one_accepted() -> None:
    found = re.search(r"--chips INTEGER RANGE \[(\d+)<=x<=(\d+)\]", _help())
    assert found is not None
    lo, hi = int(found.group(1)), int(found.group(2))
    base = {"model": SMALL, "tokens": 1e12, "chip": "H100-SXM"}
    for n in (lo, hi):
        assert _run(base, "--chips", str(n))[0] == 0
    for n in (lo - 1, hi + 1):
        assert _run(base, "--chips", str(n))[0] == 2


# --- more chips than the batch uses well --------------------------------------------------------
def test_more_chips_than_the_batch_uses_well_are_told_fewer_finish_sooner() -> None:
    """7B on 65,536 H100s took 0.39 days where 32,768 took 0.23 (the default 2M-token batch
    gives 65,536 chips one sequence per replica: PP16 and its bubble) without a word."""
    request_ = {"model": SMALL, "tokens": 1e12, "chip": "H100-SXM", "chips": 65536}
    out = estimate_json(EstimateRequest(**request_))
    (hint,) = [h for h in out["guidance"] if h["code"] == "fewer-chips-faster"]
    sooner = estimate_json(
        EstimateRequest(**{**request_, "chips": hint["chips_that_finish_sooner"]})
    )
    assert hint["chips"] == 65536 and hint["chips_that_finish_sooner"] < 65536
    assert sooner["fits"] and sooner["days"] < out["days"]
    assert hint["days_at_those_chips"] == round(sooner["days"], 1)


@given(
    st.sampled_from(["A100-SXM-80GB", "H100-SXM", "MI300X", "TPU-v4"]),
    st.integers(0, 16),
    st.floats(1e10, 1e13),
    st.sampled_from([1e9, 7e9, 7e10]),
)
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_hint_is_given_exactly_when_a_smaller_size_finishes_sooner(
    chip: str, log2_chips: int, tokens: float, params: float
) -> None:
    layers = {1e9: 16, 7e9: 32, 7e10: 80}[params]
    width = {1e9: 2048, 7e9: 4096, 7e10: 8192}[params]
    model = {"params": params, "layers": layers, "d_model": width, "heads": 32, "seq_len": 4096}
    req = EstimateRequest(model=model, tokens=tokens, chip=chip, chips=1 << log2_chips)
    est = run_estimate(req)
    hints = [h for h in estimate_json(req, est)["guidance"] if h["code"] == "fewer-chips-faster"]
    if not est.fits:
        assert hints == []
        return
    faster = [
        n
        for n in sweep_sizes(est)
        if n < est.chips and (e := run_estimate(req, n)).fits and e.hours < est.hours * 0.99
    ]
    assert bool(hints) == bool(faster)
    if hints:
        assert hints[0]["chips_that_finish_sooner"] in faster


# --- energy and carbon of a small run -----------------------------------------------------------
def test_the_energy_of_a_small_run_is_not_zero() -> None:
    """8.9 H100-hours in France: 6.5 kWh, 0.00036 tCO2e; the JSON said tco2e 0.0 and the table
    '0 MWh ..., 0 tCO2e'."""
    tiny = {"params": 1e9, "layers": 16, "d_model": 2048, "heads": 16, "seq_len": 2048}
    request_ = {"model": tiny, "tokens": 1e9, "chip": "H100-SXM", "chips": 8, "country": "FR"}
    code, output = _run(request_)
    assert code == 0
    energy = json.loads(output)["energy"]
    assert energy["kwh"] > 0 and energy["tco2e"] > 0
    table = CliRunner().invoke(app, ["estimate", "-"], input=json.dumps(request_)).output
    value = _rows(table)["energy"]
    assert not value.startswith("0 MWh") and ", 0 tCO2e" not in value


def test_a_tiny_run_s_mfu_and_step_time_are_not_zero() -> None:
    """A 1-token batch on a 1-parameter model: MFU 0.033%, a 59 us step; the table read '0.0%'
    and '0.00 s' (the JSON already kept them, atk28)."""
    one = {"params": 1, "layers": 1, "d_model": 1, "heads": 1, "seq_len": 1}
    request_ = {"model": one, "tokens": 1, "chip": "H100-SXM"}
    table = CliRunner().invoke(app, ["estimate", "-"], input=json.dumps(request_)).output
    rows = _rows(table)
    assert rows["predicted MFU (per step)"] not in ("0.0%", "0%")
    assert rows["step time"] != "0.00 s"
    sweep = CliRunner().invoke(
        app, ["estimate", "-", "--sweep", "chips"], input=json.dumps(request_)
    )
    assert sweep.exit_code == 0 and "0.0%" not in sweep.output


# --- what the estimate does not honour is said ----------------------------------------------------
@pytest.mark.parametrize("kind", ["train", "serve"])
def test_a_top_k_on_a_dense_model_is_said_to_be_ignored(kind: str) -> None:
    """Mixtral given as {params: 47B, top_k: 2} without active_params was costed as a dense
    47B model, 3.6 times its compute, without a word."""
    shape = {"params": 4.7e10, "layers": 32, "d_model": 4096, "heads": 32}
    extra = {"tokens": 1e12} if kind == "train" else {"kind": "serve", "days": 1, "chips": 8}
    notes = {
        k: estimate_json(EstimateRequest(model=model, chip="H100-SXM", **extra))["notes"]
        for k, model in {
            "dense": shape,
            "top_k": {**shape, "top_k": 2},
            "moe": {**shape, "top_k": 2, "active_params": 1.3e10},
        }.items()
    }
    assert len(notes["top_k"]) == len(notes["dense"]) + 1
    assert any("`top_k" in n and "`active_params`" in n for n in notes["top_k"])
    assert not any("`top_k" in n for n in notes["moe"] + notes["dense"])


SERVE_ONLY = """\
straits: 1
name: serve-only
date: "2025-06-01"
tenants: [{id: t, hq: SG}]
sites:
  - {id: sg, country: SG, operator_hq: SG,
     pools: [{chip: H100-SXM, count: 64, usd_per_chip_hour: 2.0}]}
workloads:
  - id: w
    tenant: t
    model: {params: 7e9, layers: 32, d_model: 4096, heads: 32}
    stages: [{id: serve, kind: serve, days: 30, tokens_per_s: 1000}]
"""


def test_a_small_plan_s_energy_and_carbon_are_not_zero(tmp_path: Path) -> None:
    """One H100 serving for 30 days: 0.39 MWh, 0.18 tCO2e; the plan table said 'energy 0 MWh,
    0 tCO2e' and the stage's carbon 0."""
    path = tmp_path / "serve.yaml"
    path.write_text(SERVE_ONLY, encoding="utf-8")
    table = CliRunner().invoke(app, ["plan", str(path), "--solver", "greedy"])
    assert table.exit_code == 0, table.output
    doc = json.loads(
        CliRunner().invoke(app, ["plan", str(path), "--solver", "greedy", "--json"]).output
    )
    assert 0 < doc["energy_mwh"] < 1 and 0 < doc["tco2e"] < 1
    assert "energy 0 MWh" not in table.output and ", 0 tCO2e" not in table.output
