"""The fit's penalty towards each parameter's prior (the tenth pass): its loss is exactly
strength x d^2 per parameter, it vanishes at strength 0 and at the priors, and the fitting
script's --check refuses a shipped strength its recorded grid does not choose."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import benchmark_scripts
from straits.estimate.calibration import FITTED, fitted_document
from straits.estimate.fitting import (
    F_SCALE,
    PRIORS,
    STRENGTHS,
    _distances,
    _penalty_residuals,
)


def _soft_l1(r: np.ndarray) -> np.ndarray:
    return np.asarray(2.0 * F_SCALE**2 * (np.sqrt(1.0 + (r / F_SCALE) ** 2) - 1.0))


def _priors() -> np.ndarray:
    return np.array([PRIORS[k][0] for k in FITTED])


def test_every_fitted_parameter_has_a_prior_inside_its_bounds() -> None:
    assert set(PRIORS) == set(FITTED)
    for name, (value, space) in PRIORS.items():
        lo, hi = FITTED[name]
        assert lo <= value <= hi
        assert space in ("log", "linear")
        if space == "log":
            assert value > 0 and lo > 0


@pytest.mark.parametrize("strength", [0.03, 0.3, 3.0])
def test_the_penalty_costs_strength_times_the_squared_distance(strength: float) -> None:
    """least_squares applies soft_l1 to every residual: the penalty's residuals are passed
    through its inverse, so the loss they add is the quadratic penalty itself."""
    x = np.array([FITTED[k][0] + 0.7 * (FITTED[k][1] - FITTED[k][0]) for k in FITTED])
    d = _distances(x)
    loss = _soft_l1(_penalty_residuals(x, strength))
    assert np.allclose(loss, strength * d * d, rtol=1e-9, atol=1e-15)
    assert np.all(np.sign(_penalty_residuals(x, strength)) == np.sign(d))


def test_the_penalty_vanishes_at_the_priors_and_at_strength_zero() -> None:
    assert np.allclose(_penalty_residuals(_priors(), 3.0), 0.0)
    x = np.array([FITTED[k][1] for k in FITTED])
    assert np.allclose(_penalty_residuals(x, 0.0), 0.0)
    # a distance is in widths of the bounds: a bound is at most one width from the prior
    assert np.all(np.abs(_distances(x)) <= 1.0 + 1e-12)


def _fit_script() -> Any:
    return benchmark_scripts.load("fit_estimator")


def test_the_shipped_strength_is_the_one_its_grid_chooses() -> None:
    """fitted.yaml records every strength of the grid with its leave-one-out figure and the
    strength it was fitted with; the rule (lowest figure, a tie to the weaker penalty) picks
    that strength from that grid."""
    penalty = fitted_document()["fit"]["penalty"]
    grid = penalty["grid"]
    assert [g["strength"] for g in grid] == list(STRENGTHS)
    assert _fit_script().choose(grid) == penalty["strength"]


def test_the_choice_takes_the_lowest_figure_and_a_tie_to_the_weaker_penalty() -> None:
    choose = _fit_script().choose
    assert (
        choose(
            [
                {"strength": 0.0, "loo_median_abs_error": 0.2},
                {"strength": 1.0, "loo_median_abs_error": 0.1},
            ]
        )
        == 1.0
    )
    tie = [
        {"strength": 3.0, "loo_median_abs_error": 0.1},
        {"strength": 0.3, "loo_median_abs_error": 0.1},
    ]
    assert choose(tie) == 0.3
    assert math.isfinite(choose(tie))
