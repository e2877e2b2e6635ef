"""A hostile pass on the estimator and what consumes its interval: extreme but valid requests,
clusters the batch cannot feed, models no cluster holds, and the figures' consistency."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from straits.api import estimate_guidance
from straits.catalog import get_chip
from straits.estimate import estimate_training, typical_chips
from straits.model.request import EstimateRequest
from straits.model.scenario import ModelSpec

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
    from straits.cli import app, remote
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
