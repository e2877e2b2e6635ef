"""The market's one fitted parameter: the shipped range is what the fit gives, and the fit
reacts to the figure it is fitted on (benchmarks/fit_market.py prints the whole fit)."""

from __future__ import annotations

from typing import get_args

import pytest

from straits.market.calibration import FIGURES, FITTED, REACHED, bought, figure, fit_one, supplied
from straits.market.loading import shipped_raw, validate, with_values
from straits.market.params import Confidence
from straits.market.simulation import simulate
from straits.rules.engine import ruleset


def _h20_2024(u0: float) -> tuple[float, float]:
    raw = shipped_raw()
    m = validate(with_values(raw, {FITTED: u0}), "market")
    f = figure("h20-2024")
    return bought(simulate(m, rules=ruleset()), f), min(f.units, supplied(m, f))


def _shipped_mid() -> float:
    node = shipped_raw()["demand"]["initial_utilisation"]
    return (float(node["low"]) + float(node["high"])) / 2.0


def test_shipped_midpoint_reaches_the_fitted_figure_and_a_smaller_value_does_not() -> None:
    mid = _shipped_mid()
    got, target = _h20_2024(mid)
    assert got >= target * (1.0 - REACHED)
    short, _ = _h20_2024(mid - 0.02)
    assert short < target * (1.0 - REACHED)


def test_every_figure_has_a_role_a_source_and_a_confidence() -> None:
    assert [f.id for f in FIGURES if f.role == "fit"] == ["h20-2024"]
    assert all(
        f.source and f.confidence in get_args(Confidence) and f.first <= f.last for f in FIGURES
    )


@pytest.mark.slow
def test_fit_moves_with_the_supply_it_is_fitted_to() -> None:
    raw = shipped_raw()
    low, mid = fit_one(raw, "low"), fit_one(raw, "mid")
    # less supply to buy: a smaller utilisation already buys all of it
    assert low.value < mid.value
    assert low.below < low.target * (1.0 - REACHED) <= low.bought
    node = raw["demand"]["initial_utilisation"]
    assert abs((float(node["low"]) + float(node["high"])) / 2.0 - mid.value) <= 0.01
