"""The database of published runs, the fit/check split, the fitting script, the explanations."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from straits.catalog import get_chip
from straits.errors import CatalogError
from straits.estimate import estimate_training, nearest_runs
from straits.estimate.calibration import DEFAULT, FITTED, fitted_document, fitted_values
from straits.estimate.runs import MAX_ROUND, parse_runs, published_runs, split_rule

ROOT = Path(__file__).resolve().parents[1]
RUNS_YAML = ROOT / "src/straits/estimate/runs.yaml"


def test_the_database_is_large_and_every_run_says_where_its_figure_is_from() -> None:
    runs = published_runs()
    assert sum(r.metric == "chip_hours" for r in runs) >= 40
    assert {get_chip(r.chip).family for r in runs} >= {"ampere", "hopper", "tpu", "davinci"}
    for r in runs:
        assert r.source and r.quote and r.confidence in ("V", "V2", "D", "M")
        assert r.value > 0
        if r.published.days is not None:
            assert r.chips is not None
            assert r.value == pytest.approx(r.chips * r.published.days * 24)
            assert str(r.chips) in r.derived.replace(",", "")


def test_used_for_follows_the_split_rule() -> None:
    runs = published_runs()
    rule = split_rule(runs)
    assert {r.id: r.used_for for r in runs} == rule
    assert {"fit", "check"} <= set(rule.values())
    for rnd in {r.round for r in runs}:  # every round has runs of both kinds
        assert {r.used_for for r in runs if r.round == rnd} == {"fit", "check"}


#: the first fit's split (main at 94c5fef), which later rounds of runs may never change
ROUND_1_FIT = {
    "llama1-7b",
    "llama1-33b",
    "llama2-7b",
    "llama2-34b",
    "llama3.2-1b",
    "llama3-8b",
    "llama3.1-405b",
    "llama3-405b-16k-mfu",
    "llama4-maverick",
    "phi-2",
    "phi-3.5-mini",
    "phi-4-mini",
    "phi-3-medium",
    "pythia-1b",
    "pythia-2.8b",
    "pythia-12b",
    "deepseek-v2",
    "deepseek-v3",
    "tinyllama-1.1b",
    "starcoderbase-15b",
    "opt-175b",
    "glm-130b",
    "palm-540b",
    "glm-130b-mfu",
    "palm-540b-mfu",
}
ROUND_1_CHECK = {
    "llama1-13b",
    "llama1-65b",
    "llama2-13b",
    "llama2-70b",
    "llama3.2-3b",
    "llama3-70b",
    "llama3-405b-8k-mfu",
    "llama4-scout",
    "phi-3-mini",
    "phi-3-mini-june",
    "phi-3.5-moe",
    "phi-4",
    "pythia-1.4b",
    "pythia-6.9b",
    "deepseek-67b",
    "mpt-7b",
    "bloomberggpt-50b",
    "smollm3-3b",
    "bloom-176b",
    "falcon-180b",
    "mtnlg-530b-mfu",
    "pangu-ultra-moe-mfu",
}
#: the second pass's split of its own runs, which the third round may not change either
ROUND_2 = {
    "chameleon-7b": "fit",
    "falcon-7b": "fit",
    "jetmoe-8b": "fit",
    "nemotron4-340b-mfu": "fit",
    "phi-3-small": "fit",
    "stablelm-3b-4e1t": "fit",
    "chameleon-34b": "check",
    "falcon-40b": "check",
    "gpt-neox-20b": "check",
    "granite-3.0-8b": "check",
    "trillion-7b": "check",
}


def test_no_run_of_the_first_round_moved_between_fit_and_check() -> None:
    first = {r.id: r.used_for for r in published_runs() if r.round == 1}
    assert {i for i, u in first.items() if u == "fit"} == ROUND_1_FIT
    assert {i for i, u in first.items() if u == "check"} == ROUND_1_CHECK


def test_no_run_of_the_second_round_moved_between_fit_and_check() -> None:
    assert {r.id: r.used_for for r in published_runs() if r.round == 2} == ROUND_2


def test_the_third_round_has_check_runs_of_its_own() -> None:
    third = [r for r in published_runs() if r.round == 3]
    assert {r.used_for for r in third} == {"fit", "check"}
    assert {r.metric for r in third if r.used_for == "check"} == {"chip_hours", "mfu"}


#: the third pass's split of its own runs, which the fourth round may not change
ROUND_3 = {
    "phi-1": "fit",
    "skywork-13b-mfu": "fit",
    "nemotron4-15b": "fit",
    "skywork-13b": "check",
    "nemotron4-15b-mfu": "check",
}


#: each later round's split of its own runs, set by the rule before any of them was predicted:
#: no later pass may move one. Rounds 5 (est33), 6 (est36), 7 (est37) and 8 (est39): a
#: family's two runs are a group of their own (MobileLLM, SEA-LION: the smaller fit); one run of
#: a family is pooled into `other` and split by compute.
LATER_ROUNDS = {
    3: ROUND_3,
    4: {"falcon-rw-1b": "fit", "falcon2-11b": "check"},
    5: {
        "mobilellm-1b": "fit",
        "mobilellm-1.5b": "check",
        "smollm2-1.7b": "fit",
        "tele-flm-52b": "check",
    },
    6: {"sea-lion-3b": "fit", "sea-lion-7b": "check", "olmo2-1b": "fit", "lucie-7b": "check"},
    7: {"minicpm-2b": "fit", "llada-8b": "check"},
    8: {
        "llmc-gpt2-1558m": "fit",
        "nanochat-d32": "check",
        "starcoderbase-1b": "fit",
        "nemotron3-8b": "check",
    },
    9: {
        "nanochat-d34": "fit",
        "mpt-1b-redpajama": "check",
        "42dot-plm-1.3b": "fit",
        "grin-moe": "check",
        "tucano-1b1": "fit",
        "tucano-2b4": "check",
    },
}


@pytest.mark.parametrize("round_", sorted(LATER_ROUNDS))
def test_no_run_of_a_later_round_moved_between_fit_and_check(round_: int) -> None:
    split = {r.id: r.used_for for r in published_runs() if r.round == round_}
    assert split == LATER_ROUNDS[round_]
    assert "check" in split.values()  # every round has a check run of its own


def test_every_round_is_held() -> None:
    assert max(LATER_ROUNDS) == MAX_ROUND


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["phi", "llama3", "falcon", "new", "other"]),
            st.floats(1e8, 1e12),
            st.sampled_from([1e11, 1e12, 1e13]),
            st.integers(MAX_ROUND + 1, MAX_ROUND + 2),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_adding_runs_in_a_later_round_never_reassigns_an_earlier_run(
    extra: list[tuple[str, float, float, int]],
) -> None:
    runs = list(published_runs())
    base = split_rule(runs)
    added = [
        runs[0].model_copy(
            update={
                "id": f"added-{i}",
                "family": family,
                "round": rnd,
                "tokens": tokens,
                "model": runs[0].model.model_copy(update={"params": params}),
            }
        )
        for i, (family, params, tokens, rnd) in enumerate(extra)
    ]
    after = split_rule(runs + added)
    assert {i: after[i] for i in base} == base
    for rnd in {r.round for r in added}:  # and a later round is split by the same rule
        mine = [r for r in added if r.round == rnd]
        assert split_rule(mine) == {r.id: after[r.id] for r in mine}


def test_check_runs_stay_out_of_every_fitted_number() -> None:
    doc = fitted_document()
    fit_ids = {r.id for r in published_runs() if r.used_for == "fit" and r.fittable}
    assert set(doc["fit"]["runs"]) == fit_ids
    assert set(doc["fit"]["out_of_scope"]) == {
        r.id for r in published_runs() if r.used_for == "fit" and not r.fittable
    }
    assert doc["typical_days"]["runs"] <= len(fit_ids)
    hours = sum(1 for r in published_runs() if r.id in fit_ids and r.metric == "chip_hours")
    assert f"on {hours} fit runs" in doc["interval"]["basis"]
    recorded = doc["runs"]
    assert set(recorded) == {r.id for r in published_runs()}
    assert all(
        "loo_error" not in recorded[r.id]
        for r in published_runs()
        if r.used_for == "check" or not r.fittable
    )


def test_a_figure_is_compared_with_what_it_counts() -> None:
    """A step-time figure (scope `steps`) is compared with the estimate before goodput and
    evaluation; the others with the whole run."""
    recorded = fitted_document()["runs"]
    for r in published_runs():
        if r.metric != "chip_hours":
            continue
        est = estimate_training(
            r.model, r.tokens, get_chip(r.chip), recorded[r.id]["chips"], software_year=r.year
        )
        want = est.overheads["step_chip_hours"] if r.scope == "steps" else est.chip_hours
        assert recorded[r.id]["scope"] == r.scope
        assert recorded[r.id]["predicted"] == pytest.approx(want, rel=1e-5)
        if r.scope == "steps":  # goodput and evaluation are left out, and they cost something
            assert want < est.chip_hours


def test_the_shipped_parameters_are_the_ones_the_estimator_uses() -> None:
    shipped = fitted_document()["parameters"]
    assert set(shipped) == set(FITTED)
    assert fitted_values(DEFAULT) == pytest.approx(shipped)
    for name, value in shipped.items():
        lo, hi = FITTED[name]
        assert lo <= value <= hi
    iv = fitted_document()["interval"]
    assert iv["low"] < 0 < iv["high"]


def test_fitting_script_reproduces_the_shipped_parameters() -> None:
    """benchmarks/fit_estimator.py --check refits on the fit runs and compares every
    parameter, the interval, the typical run length and each run's prediction."""
    p = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/fit_estimator.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr


# --- hostile runs files -------------------------------------------------------------------------
GOOD = yaml.safe_load(RUNS_YAML.read_text(encoding="utf-8"))["runs"][0]


def _doc(*runs: dict[str, Any]) -> str:
    return yaml.safe_dump({"runs": list(runs)})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (_doc(GOOD, GOOD), ("appears twice",)),
        (_doc({k: v for k, v in GOOD.items() if k != "source"}), ("runs[0].source", "missing")),
        (_doc({**GOOD, "chips": None, "published": {"days": 3}}), ("cluster size",)),
        (_doc({**GOOD, "chip": "V100"}), ("not in the catalog",)),
        (_doc({**GOOD, "published": {"mfu": 1.5}}), ("runs[0].published.mfu",)),
        (_doc({**GOOD, "published": {"mfu": 0.4, "chip_hours": 10}}), ("exactly one",)),
        (_doc({**GOOD, "used_for": "both"}), ("runs[0].used_for",)),
        (_doc({**GOOD, "confidence": "high"}), ("runs[0].confidence",)),
        (_doc({**GOOD, "tokens": -1}), ("runs[0].tokens",)),
        (_doc({**GOOD, "extra": 1}), ("runs[0].extra", "unknown field")),
        (_doc({**GOOD, "scope": "ablations"}), ("runs[0].scope",)),
        (_doc({**GOOD, "round": 0}), ("runs[0].round",)),
        (_doc({**GOOD, "round": 99}), ("runs[0].round",)),
        (_doc({**GOOD, "chips": 64, "published": {"mfu": 0.4}, "scope": "steps"}), ("scope",)),
        ("runs: []\n", ("runs",)),
        ("\x00\x01\x02binary", ("not valid YAML",)),
        ("runs:\n- id: x\n  model: {params: [", ("not valid YAML",)),
        ("[" * 5000, ("not valid YAML",)),
        ("just a string", ("RunsFile",)),
    ],
)
def test_a_broken_runs_file_is_named_with_the_field(text: str, words: tuple[str, ...]) -> None:
    with pytest.raises(CatalogError) as err:
        parse_runs(text, "runs.yaml")
    msg = str(err.value)
    assert msg.startswith("runs.yaml")
    assert any(w in msg for w in words), msg


# --- explanations -------------------------------------------------------------------------------
def test_a_published_run_is_its_own_nearest_run() -> None:
    run = next(r for r in published_runs() if r.id == "llama2-70b")
    near = nearest_runs(run.model, run.tokens, get_chip(run.chip))
    assert near[0].run.id == run.id and near[0].distance == 0
    assert [n.distance for n in near] == sorted(n.distance for n in near)
    assert near[0].error is not None and near[0].predicted is not None
    assert near[0].error == pytest.approx(near[0].predicted / run.value - 1, abs=1e-3)


def straits(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}  # tables whole, whatever the caller's terminal
    return subprocess.run(
        [sys.executable, "-m", "straits", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


REQUEST = {
    "model": {
        "params": 8e9,
        "layers": 32,
        "d_model": 4096,
        "heads": 32,
        "kv_heads": 8,
        "seq_len": 8192,
    },
    "tokens": 1.5e13,
    "chip": "H100-SXM",
}


def test_estimate_json_gives_the_interval_the_cluster_basis_and_nearest_runs() -> None:
    p = straits("estimate", "--json", stdin=json.dumps(REQUEST))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    for key in ("chip_hours", "days", "cost_usd"):
        assert out[f"{key}_low"] <= out[key] <= out[f"{key}_high"]
    assert out["chips_basis"] == "typical" and out["chips"] >= out["min_chips"]
    assert len(out["nearest_runs"]) == 3
    assert {"run", "published_chip_hours", "error", "used_for", "source"} <= set(
        out["nearest_runs"][0]
    )
    assert out["software_year"] == 2025
    given = json.loads(
        straits(
            "estimate", "--json", stdin=json.dumps({**REQUEST, "chips": 64, "software_year": 2022})
        ).stdout
    )
    assert given["chips"] == 64 and given["chips_basis"] == "given"
    assert "recompute=full" in given["layout"]


def test_estimate_explains_itself() -> None:
    p = straits("estimate", stdin=json.dumps(REQUEST))
    assert p.returncode == 0, p.stderr
    text = " ".join(p.stdout.split())
    for words in (
        "typical for a run of this size",
        "efficiency factors",
        "80%:",
        "Nearest published runs",
        "llama3-8b",
        "leave-one-out",
    ):
        assert words in text


def test_bad_software_year_is_a_one_line_error() -> None:
    p = straits("estimate", "--json", stdin=json.dumps({**REQUEST, "software_year": 1999}))
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "software_year" in p.stderr


# --- a damaged fitted.yaml ----------------------------------------------------------------------
FITTED_DOC = yaml.safe_load((ROOT / "src/straits/estimate/fitted.yaml").read_text())


def _damaged(**change: Any) -> dict[str, Any]:
    return {**FITTED_DOC, **change}


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (_damaged(parameters={**FITTED_DOC["parameters"], "era_decay": -1.0}), "outside"),
        (_damaged(parameters={"framework_ampere": 0.9}), "exactly"),
        (
            _damaged(parameters={**FITTED_DOC["parameters"], "gemm_width": float("nan")}),
            "parameters",
        ),
        (_damaged(interval={**FITTED_DOC["interval"], "low": 0.3}), "central estimate"),
        (_damaged(interval={**FITTED_DOC["interval"], "level": 1.5}), "interval.level"),
        (_damaged(typical_days={"a": 1.0}), "typical_days"),
        ({k: v for k, v in FITTED_DOC.items() if k != "runs"}, "runs"),
    ],
)
def test_a_damaged_fitted_file_is_refused_with_the_field(doc: dict[str, Any], words: str) -> None:
    from straits.errors import InputError
    from straits.estimate.calibration import FittedFile
    from straits.loading import validate_as

    with pytest.raises(InputError) as err:
        validate_as(FittedFile, doc, source="fitted.yaml")
    assert words in str(err.value)


def test_estimates_refuse_when_the_shipped_parameters_did_not_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import straits.estimate.calibration as calibration
    from straits.estimate import estimate_serving, estimate_training
    from straits.model.scenario import ModelSpec

    monkeypatch.setattr(calibration, "LOAD_ERROR", "fitted.yaml: interval.low: broken")
    model = ModelSpec(params=7e9, layers=32, d_model=4096, heads=32)
    chip = get_chip("H100-SXM")
    with pytest.raises(CatalogError, match=r"interval\.low"):
        estimate_training(model, 1e12, chip, 64)
    with pytest.raises(CatalogError, match=r"interval\.low"):
        estimate_serving(model, chip, 8, 1.0)
    # an explicit calibration (the fitting script's) still works, so the file can be rewritten
    assert estimate_training(model, 1e12, chip, 64, cal=calibration.Calibration()).chip_hours > 0


def test_infinite_tokens_are_a_one_line_error() -> None:
    p = straits("estimate", "--json", stdin=json.dumps({**REQUEST, "tokens": math.inf}))
    assert "Infinity" in json.dumps({**REQUEST, "tokens": math.inf})
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert "tokens" in p.stderr and "finite" in p.stderr
