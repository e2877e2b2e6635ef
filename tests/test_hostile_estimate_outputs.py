"""A hostile pass (atk28) on what the estimator answers beyond its figures: the sweep chart of a
chip without a price or of sizes that do not fit, and serving requests whose cluster or context
the answer must not silently accept."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from straits.api import estimate_json, run_estimate
from straits.catalog import get_chip
from straits.catalog.tpu_slices import TPU_SLICES
from straits.cli import app
from straits.estimate.memory import USABLE_FRACTION, serving_state_gb
from straits.model.request import EstimateRequest
from straits.model.scenario import ModelSpec
from test_hostile_estimate import _numbers, requests

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"params": 7e9, "layers": 32, "d_model": 4096, "heads": 32, "seq_len": 4096}
#: 122 sequences a step: more than 122 replicas have nothing to run
FED_122 = {**SMALL, "seq_len": 8192, "global_batch_tokens": 1e6}


def _figures(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="figures">(.*?)</script>', html, re.S)
    assert m is not None
    return dict(json.loads(m.group(1)))


def _sweep_chart(request_: dict[str, Any], out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["estimate", "-", "--sweep", "chips", "-o", str(out)], input=json.dumps(request_)
    )
    return result.exit_code, out.read_text("utf-8") if out.exists() else ""


# --- the sweep chart ----------------------------------------------------------------------------
def test_a_sweep_chart_of_a_chip_without_a_price_is_drawn(tmp_path: Path) -> None:
    """B200 has no reference price (cost null): the chart was a TypeError traceback."""
    code, html = _sweep_chart({"model": SMALL, "tokens": 1e12, "chip": "B200"}, tmp_path / "s.html")
    assert code == 0 and html
    names = [t["name"] for t in _figures(html)["sweep"]["data"]]
    assert "cost" not in names and "days" in names
    rows = re.findall(r"<tr><td>([^<]*)</td><td>[^<]*</td><td>([^<]*)</td>", html)
    assert rows and all(cost == "-" for _, cost in rows)


def test_a_sweep_chart_marks_the_sizes_that_do_not_fit(tmp_path: Path) -> None:
    """The table and JSON of a sweep mark a size no layout fits; the chart drew its days and
    cost as those of a cluster that runs."""
    request_ = {"model": FED_122, "tokens": 2e13, "chip": "H100-SXM"}
    rows = json.loads(
        CliRunner()
        .invoke(app, ["estimate", "-", "--sweep", "chips", "--json"], input=json.dumps(request_))
        .output
    )
    misfits = {r["chips"] for r in rows if not r["fits"]}
    assert misfits
    code, html = _sweep_chart(request_, tmp_path / "s.html")
    assert code == 0
    for trace in _figures(html)["sweep"]["data"]:
        if trace["name"] not in ("days", "cost"):
            continue
        symbols = zip(trace["x"], trace["marker"]["symbol"], strict=True)
        crossed = {x for x, s in symbols if s == "x"}
        assert crossed == misfits
        said = {x for x, c in zip(trace["x"], trace["customdata"], strict=True) if c[0]}
        assert said == misfits
    marked = re.findall(r"<tr><td>([\d,]+) \(does not fit\)</td>", html)
    assert {int(m.replace(",", "")) for m in marked} == misfits


# --- serving ------------------------------------------------------------------------------------
GQA_70B = {**SMALL, "params": 7e10, "layers": 80, "d_model": 8192, "heads": 64, "kv_heads": 8}


def kv_gb(model: ModelSpec, tokens: int) -> float:
    """BF16 keys and values of ``tokens`` tokens: 2 x layers x kv_heads x head_dim x 2 bytes."""
    kv_heads = model.kv_heads or model.heads
    return 4.0 * model.layers * kv_heads * (model.d_model / model.heads) * tokens / 1e9


@st.composite
def serving_requests(draw: st.DrawFn) -> EstimateRequest:
    """Any valid serving request: a shape within the shape check, any context and target,
    with or without chips."""
    layers, width = draw(st.integers(1, 200)), draw(st.integers(64, 32_768))
    per = layers * float(width) ** 2
    active = draw(st.floats(max(1.0, 0.05 * per), min(1e15, 1e6 * per)))
    heads = draw(st.integers(1, min(width, 256)))
    model: dict[str, Any] = {"params": active, "layers": layers, "d_model": width, "heads": heads}
    model["kv_heads"] = draw(st.none() | st.integers(1, heads))
    if draw(st.booleans()):
        model.update(params=min(1e15, active * draw(st.floats(1, 100))), active_params=active)
    chips = draw(st.none() | st.integers(1, 10_000_000))
    return EstimateRequest(
        kind="serve",
        model=model,
        chip=draw(st.sampled_from(["H100-SXM", "H20", "B200", "TPU-v4", "Ascend-910C"])),
        days=draw(st.floats(0.001, 3650)),
        chips=chips,
        tokens_per_s=draw(
            st.floats(0.001, 1e12) if chips is None else st.none() | st.floats(0.001, 1e12)
        ),
        prompt_tokens=draw(st.integers(1, 100_000_000)),
        output_tokens=draw(st.integers(1, 100_000_000)),
    )


@given(serving_requests())
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_serving_answer_holds_one_request_and_says_when_it_misses_its_target(
    req: EstimateRequest,
) -> None:
    """A replica holds the weights and the KV cache of at least one request (a 10^8-token
    prompt needs terabytes: it was answered with 4-chip replicas at batch 1); chips given below
    what the target needs say so (`below-target`), never silently."""
    answer = estimate_json(req)
    for path, value in _numbers(answer):
        assert math.isfinite(value) and value >= 0, path
    chip = get_chip(req.chip)
    context = req.prompt_tokens + req.output_tokens
    need_gb = serving_state_gb(req.model) + kv_gb(req.model, context)
    assert answer["min_chips"] * chip.memory_gb * USABLE_FRACTION >= need_gb * (1 - 1e-9)
    codes = [g["code"] for g in answer["guidance"]]
    # a TPU replica larger than the chip's largest slice fits on no count (est49)
    slices = TPU_SLICES.get(req.chip)
    sliceless = slices is not None and slices.at_least(answer["min_chips"]) is None
    assert answer["fits"] == (answer["chips"] >= answer["min_chips"] and not sliceless)
    assert ("fits-nowhere" in codes) == sliceless
    assert ("needs-more-chips" in codes) == (not answer["fits"] and not sliceless)
    sv = answer.get("serving")
    if sv:
        assert sv["replica_chips"] * chip.memory_gb * USABLE_FRACTION >= need_gb * (1 - 1e-9)
        assert sv["batch"] >= 1
        assert sv["decode_step_ms"] > 0 and sv["tokens_per_s_per_replica"] > 0
        target = sv["replicas"] * sv["replica_chips"]
        if req.chips is None:
            assert answer["chips"] == target and codes == (["fits-nowhere"] if sliceless else [])
        below = answer["fits"] and answer["chips"] < target
        assert ("below-target" in codes) == below


def test_a_context_no_replica_of_the_default_size_holds_needs_more_chips() -> None:
    request_ = {"kind": "serve", "model": GQA_70B, "chip": "H100-SXM", "days": 30}
    short = estimate_json(EstimateRequest(**request_, chips=8))
    assert short["fits"] and short["min_chips"] == 4  # its replica: 3 hold it, TP is 4 (est30)
    long = estimate_json(EstimateRequest(**request_, chips=8, prompt_tokens=100_000_000))
    assert not long["fits"] and long["min_chips"] > 400
    assert [g["code"] for g in long["guidance"]] == ["needs-more-chips"]
    sized = estimate_json(EstimateRequest(**request_, tokens_per_s=1000, prompt_tokens=100_000_000))
    assert sized["serving"]["replica_chips"] == long["min_chips"]


def test_chips_below_the_target_are_answered_with_the_chips_it_needs() -> None:
    request_ = {"kind": "serve", "model": GQA_70B, "chip": "H100-SXM", "days": 30}
    sized = estimate_json(EstimateRequest(**request_, tokens_per_s=1e6))
    given_ = estimate_json(EstimateRequest(**request_, tokens_per_s=1e6, chips=4))
    assert given_["fits"] and given_["chips"] == 4
    (hint,) = given_["guidance"]
    assert (hint["code"], hint["chips"], hint["chips_for_target"]) == (
        "below-target",
        4,
        sized["chips"],
    )
    enough = estimate_json(EstimateRequest(**request_, tokens_per_s=1e6, chips=sized["chips"]))
    assert enough["guidance"] == []


# --- booleans are not numbers -------------------------------------------------------------------
def _ranged_types() -> dict[str, Any]:
    """Every number type of ``straits.model.types`` with a documented range (``RANGES``)."""
    from straits.model import types

    return {name: getattr(types, name) for name in types.RANGES if hasattr(types, name)}


def test_every_ranged_number_refuses_a_boolean() -> None:
    """pydantic reads a boolean as 0 or 1: `mfu: true` was a 100% MFU, `chips: yes` (YAML) one
    chip, `tokens: true` one token. Every range refuses it; its bounds still validate."""
    from pydantic import TypeAdapter, ValidationError

    from straits.model.types import RANGES

    ranged = _ranged_types()
    assert len(ranged) >= len(RANGES) - 2  # (a name or two may only register a range)
    for name, kind in ranged.items():
        adapter = TypeAdapter(kind)
        for value in (True, False):
            with pytest.raises(ValidationError):
                adapter.validate_python(value)
        limits = RANGES[name]
        assert adapter.validate_python(limits.hi) == limits.hi, name
        assert adapter.json_schema().get("maximum") == limits.hi, name  # the schema keeps it


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("tokens", "tokens"),
        ("chips", "chips"),
        ("mfu", "mfu"),
        ("usd_per_chip_hour", "usd_per_chip_hour"),
        ("software_year", "software_year"),
        ("heads", "model.heads"),
    ],
)
def test_an_estimate_field_given_a_boolean_is_exit_2_naming_it(field: str, path: str) -> None:
    request_: dict[str, Any] = {"model": dict(SMALL), "tokens": 1e12, "chip": "H100-SXM"}
    if path.startswith("model."):
        request_["model"][field] = True
    else:
        request_[field] = True
    result = CliRunner().invoke(app, ["estimate", "-", "--json"], input=json.dumps(request_))
    assert result.exit_code == 2
    assert f"{path}:" in result.output


# --- figures that round to zero -----------------------------------------------------------------
@given(requests())
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_positive_figure_is_printed_as_zero(req: EstimateRequest) -> None:
    """A step of a 1-token batch on a large cluster took 20 us: `step_seconds` printed 0.0
    (rounded to 4 decimals) beside positive chip-hours."""
    answer = estimate_json(req)
    assert answer["step_seconds"] > 0 and answer["mfu"] > 0
    assert answer["efficiency"]["predicted_mfu"] > 0


def test_a_one_token_step_is_not_zero_seconds() -> None:
    model = {"params": 1e6, "layers": 4, "d_model": 256, "heads": 4, "seq_len": 1}
    req = EstimateRequest(model={**model, "global_batch_tokens": 1.0}, tokens=1e9, chip="H100-SXM")
    est, answer = run_estimate(req), estimate_json(req)
    assert est.step_seconds < 5e-5  # 6 us: 0.0 at 4 decimals
    assert answer["step_seconds"] == pytest.approx(est.step_seconds, rel=1e-2)


def test_an_exported_serving_replica_holds_a_request_as_the_estimator_s_does(
    rules_before_h20: Any,
) -> None:
    """A 2M-token context to the example's 72B model needs 800 GB a replica: the estimator
    sizes its replicas for it; export split the planned chips into 4-chip replicas. The rules
    are those of 2025-04-08 (conftest.H20_BEFORE): the shipped ones refuse the purchase, and
    the serving stage would not be placed."""
    rules = rules_before_h20
    from straits.estimate import min_chips_serving
    from straits.export.base import export_input
    from straits.loading import parse_scenario
    from straits.plan import make_plan

    text = (ROOT / "examples" / "h20-2025.yaml").read_text("utf-8")
    serve = "days: 120, users: [CN],"
    text = text.replace(serve, f"{serve} prompt_tokens: 2000000,")
    sc = parse_scenario(yaml.safe_load(text), source="long-context")
    plan = make_plan(sc, rules=rules, solver="greedy").to_json(details=True)
    jobs = export_input(sc, plan, rules, plan_id="long-context").jobs
    served = [j for j in jobs if j.kind == "serve"]
    assert served
    for job in served:
        model = sc.workload(job.workload).model
        need = min_chips_serving(model, get_chip(job.placement.chip), 2_000_256)
        assert need > 4 and job.replica_chips >= need


@pytest.mark.parametrize(("target", "noted"), [(None, False), (1e3, False), (1e7, True)])
def test_a_plan_says_when_a_serving_stage_s_chips_miss_its_target(
    rules_before_h20: Any, target: float | None, noted: bool
) -> None:
    """The planner places a serving stage that fixes `chips` on those chips, also when it asks
    for more `tokens_per_s` than they serve (88,924 H20s for 10^7): the plan now says so. The
    rules are those of 2025-04-08 (conftest.H20_BEFORE): the shipped ones refuse the purchase."""
    rules = rules_before_h20
    from straits.loading import parse_scenario
    from straits.plan import make_plan

    text = (ROOT / "examples" / "h20-2025.yaml").read_text("utf-8")
    text = text.replace("deadline: 2025-12-31", "deadline: 2026-12-31")
    if target is not None:
        serve = "days: 120, users: [CN],"
        text = text.replace(serve, f"{serve} tokens_per_s: {target:.0f},")
    sc = parse_scenario(yaml.safe_load(text), source="target")
    plan = make_plan(sc, rules=rules, solver="greedy").to_json()
    placed = {(a["workload"], a["stage"]): a["chips"] for a in plan["assignments"]}
    assert placed[("assistant-72b", "serve-cn")] == 2048  # the stage's chips, as before
    said = [n for n in plan["notes"] if n.startswith("assistant-72b/serve-cn:")]
    assert bool(said) == noted


@pytest.mark.parametrize(("chip", "said"), [("A100-SXM-80GB", True), ("H100-SXM", False)])
def test_fp8_on_a_chip_without_fp8_says_it_is_estimated_at_bf16(chip: str, said: bool) -> None:
    """The estimate answered FP8 training on an A100 at BF16 speed without a word."""
    model = {**SMALL, "precision": "fp8"}
    answer = estimate_json(EstimateRequest(model=model, tokens=1e12, chip=chip))
    bf16 = estimate_json(EstimateRequest(model=SMALL, tokens=1e12, chip=chip))
    assert any("FP8" in n for n in answer["notes"]) == said
    assert (answer["step_seconds"] == bf16["step_seconds"]) == said
    assert ("fp8_speedup" in answer["mfu_components"]["factors"]) != said


@pytest.mark.parametrize(("batch", "said"), [(1.0, True), (4095.0, True), (4096.0, False)])
def test_a_batch_of_less_than_one_sequence_says_so(batch: float, said: bool) -> None:
    model = {**SMALL, "global_batch_tokens": batch}
    answer = estimate_json(EstimateRequest(model=model, tokens=1e9, chip="H100-SXM"))
    assert any("less than one 4,096-token sequence" in n for n in answer["notes"]) == said


# --- the report of a plan at risk p90 -----------------------------------------------------------
@pytest.mark.parametrize("risk", ["p50", "p90"])
def test_the_report_says_a_plan_was_budgeted_at_the_high_end(rules: Any, risk: str) -> None:
    """A p90 plan's report read "Total cost $18.39M, up to $18.39M at the estimator's high
    end", as if the total were the central figure; nothing on the page said p90."""
    from straits.loading import load_scenario
    from straits.plan import make_plan
    from straits.report import plan_report

    sc = load_scenario(ROOT / "examples" / "h20-2025.yaml").model_copy(update={"risk": risk})
    plan = make_plan(sc, rules=rules, solver="greedy").to_json(details=True)
    assert plan["risk"] == risk
    html = plan_report(plan, sc, rules, source="risk")
    assert ('data-field="risk"' in html) == (risk == "p90")
    assert ("up to " in html.split('id="summary"')[1].split("</section>")[0]) == (risk == "p50")


#: (request fields beyond the model and chip, the fields the answer says it ignored)
IGNORED = [
    ({"tokens": 1e12}, []),
    ({"tokens": 1e12, "days": 3}, ["days"]),  # no target: 13 days was answered without a word
    ({"tokens": 1e12, "tokens_per_s": 5000, "prompt_tokens": 8}, ["tokens_per_s", "prompt_tokens"]),
    ({"tokens": 1e12, "output_tokens": 256}, ["output_tokens"]),  # set, even to the default
    ({"kind": "serve", "days": 3, "chips": 8}, []),
    ({"kind": "serve", "days": 3, "chips": 8, "tokens": 1e12}, ["tokens"]),
    ({"kind": "serve", "days": 3, "chips": 8, "software_year": 2019}, ["software_year"]),
]


@pytest.mark.parametrize(("extra", "ignored"), IGNORED)
def test_fields_a_kind_does_not_read_are_said_to_be_ignored(
    extra: dict[str, Any], ignored: list[str]
) -> None:
    req = EstimateRequest.model_validate({"model": SMALL, "chip": "H100-SXM", **extra})
    out = estimate_json(req)
    assert out["ignored"] == ignored
    assert sum(f"`{f}`" in n for f in ignored for n in out["notes"]) == len(ignored)
    # and the figures are those of the request without them
    plain = {k: v for k, v in extra.items() if k not in ignored}
    base = estimate_json(
        EstimateRequest.model_validate({"model": SMALL, "chip": "H100-SXM", **plain})
    )
    assert (out["chips"], out["chip_hours"]) == (base["chips"], base["chip_hours"])
