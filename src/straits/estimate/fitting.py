"""Fitting the estimator's parameters on the ``fit`` runs, and calibrating its interval.

Used by ``benchmarks/fit_estimator.py`` (which prints the result and writes ``fitted.yaml``)
and by the test that holds ``fitted.yaml`` to what this code produces. Nothing here reads a
``check`` run: :func:`fit` takes the runs it may see, and the caller passes the ``fit`` runs.

The procedure:

1. *Typical run length.* log(days) = a + b x log(chip-hours) by least squares on the runs that
   published their cluster size (:mod:`straits.estimate.typical`).
2. *Parameters.* Each run is *settled*: its cluster (published, else the typical size under the
   current parameters) and the fastest layout that fits. Holding those fixed, scipy's
   ``least_squares`` minimises a robust loss (``soft_l1``, scale :data:`F_SCALE`) of
   log(predicted / published) over the runs, within the bounds of
   :data:`~straits.estimate.calibration.FITTED`. Parameters are rounded to
   :data:`SIGNIFICANT` digits, the runs settled again with them, and the search repeated until
   no run's cluster or layout changes (at most :data:`MAX_ROUNDS` rounds).
   *Penalty* (the tenth pass): the loss also holds ``strength x d^2`` for each parameter, d
   its distance from its prior value (:data:`PRIORS`) over the width of its bounds, measured
   in log space for the multiplicative factors and linearly for the rates and the width whose
   default is 0; the strength is chosen from :data:`STRENGTHS` (written down before any was
   fitted) by the fit runs' own leave-one-out median |error| (``fit_estimator.py --write``).
3. *Interval.* Leave-one-out: for each chip-hour run, the parameters are searched again
   without it (settings held) and the run predicted; the 10th and 90th percentiles of
   log(published / predicted) bound the central 80% interval.
4. *Interval with a given MFU* (:func:`given_mfu_spread`). What is left when a user gives the
   per-step MFU they measured: the whole-run overheads the MFU does not see and the scatter of
   a published figure. Measured on ``fit`` runs only: each run published both as a per-step
   MFU and as a chip-hour figure is predicted from its own MFU (a squared log error each), and
   each pair of near-replicate runs gives the scatter of one figure (half the squared
   difference of their log errors). sigma is the root of the mean; the interval is
   exp(+-1.2816 sigma), the 10th and 90th percentiles of a log-normal scatter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from straits.catalog import get_chip
from straits.estimate.calibration import FITTED, Calibration, fitted_values, with_fitted
from straits.estimate.efficiency import predict
from straits.estimate.estimator import Estimate, estimate_training, run_hours
from straits.estimate.layout import Layout
from straits.estimate.runs import NEAR_REPLICATES, PublishedRun, same_run
from straits.estimate.steptime import step_time
from straits.estimate.typical import TypicalDays, fit_typical_days, typical_chips

#: the residual (in log units) beyond which the loss grows linearly, not quadratically: a run
#: off by more than ~20% pulls the parameters no harder than a moderate miss
F_SCALE = 0.1
SIGNIFICANT = 4
MAX_ROUNDS = 8
#: a search that has not converged by then stops (a flat direction: a parameter at a bound)
MAX_EVALUATIONS = 200
LEVEL = 0.8
#: the 90th percentile of a standard normal: a log-normal 80% interval is exp(+-Z80 sigma)
Z80 = 1.2816

#: each fitted parameter's prior value and the space its distance is measured in: the
#: framework factors and ``moe_gemm`` at 1.0 (kernels as fast as a GEMM microbenchmark, expert
#: GEMMs as fast as dense ones: first principles), in log space; the era terms and
#: ``gemm_width`` at 0 (their defaults in :class:`Calibration`: no software-era loss, no width
#: penalty), linearly. The distance is divided by the width of the bounds in the same space.
PRIORS: dict[str, tuple[float, str]] = {
    "framework_ampere": (1.0, "log"),
    "framework_hopper": (1.0, "log"),
    "era_decay": (0.0, "linear"),
    "gemm_width": (0.0, "linear"),
    "moe_gemm": (1.0, "log"),
    "era_overhead": (0.0, "linear"),
}
#: the penalty strengths tried, fixed before any was fitted (0: the unpenalised fit)
STRENGTHS: tuple[float, ...] = (0.0, 0.03, 0.1, 0.3, 1.0, 3.0)


def _distances(x: np.ndarray) -> np.ndarray:
    """Each parameter's distance from its prior, in widths of its bounds."""
    out = []
    for (name, (lo, hi)), v in zip(FITTED.items(), x, strict=True):
        prior, space = PRIORS[name]
        if space == "log":
            out.append(math.log(float(v) / prior) / math.log(hi / lo))
        else:
            out.append((float(v) - prior) / (hi - lo))
    return np.array(out)


def _penalty_residuals(x: np.ndarray, strength: float) -> np.ndarray:
    """Residuals whose soft_l1 loss (scale :data:`F_SCALE`) is exactly ``strength x d^2`` each:
    least_squares applies its robust loss to every residual, so the quadratic penalty is
    passed through the loss's inverse (r ~ sqrt(strength) x d for small d)."""
    d = _distances(x)
    q = strength * d * d
    f = F_SCALE
    return np.asarray(np.sign(d) * f * np.sqrt((1.0 + q / (2.0 * f * f)) ** 2 - 1.0))


@dataclass(frozen=True)
class Setting:
    """What the parameter search holds fixed for one run."""

    run: PublishedRun
    chips: int
    chips_basis: str
    """'published' or 'typical'"""
    layout: Layout
    batch: float


def published_metric(est: Estimate, run: PublishedRun) -> float:
    """The estimate in the terms of the run's published figure: per-step MFU, step-only
    chip-hours (scope ``steps``) or whole-run chip-hours."""
    if run.metric == "mfu":
        return est.mfu
    if run.scope == "steps":
        return float(est.overheads["step_chip_hours"])
    return est.chip_hours


def settle(run: PublishedRun, cal: Calibration, typical: TypicalDays) -> Setting:
    chip = get_chip(run.chip)
    basis = "published"
    chips = run.chips
    if chips is None:
        basis = "typical"
        chips = typical_chips(
            run.model, run.tokens, chip, cal=cal, software_year=run.year, typical=typical
        )
    est = estimate_training(run.model, run.tokens, chip, chips, cal=cal, software_year=run.year)
    eff = predict(run.model, chip, chips, est.batch_tokens, cal, run.year)
    return Setting(run, chips, basis, eff.layout, est.batch_tokens)


def predicted(s: Setting, cal: Calibration) -> float:
    """The run's published metric as the model predicts it, at the held setting."""
    chip = get_chip(s.run.chip)
    step = step_time(s.run.model, chip, s.layout, s.batch, cal, s.run.year)
    if s.run.metric == "mfu":
        return step.mfu
    step_hours, hours = run_hours(step.total, s.run.tokens, s.batch, s.chips, cal, s.run.year)
    return s.chips * (step_hours if s.run.scope == "steps" else hours)


def _log_errors(x: np.ndarray, settings: list[Setting]) -> np.ndarray:
    cal = with_fitted(dict(zip(FITTED, (float(v) for v in x), strict=True)))
    return np.array([math.log(predicted(s, cal) / s.run.value) for s in settings])


def _residuals(x: np.ndarray, settings: list[Setting], strength: float) -> np.ndarray:
    errors = _log_errors(x, settings)
    if strength == 0.0:
        return errors
    return np.concatenate([errors, _penalty_residuals(x, strength)])


def _loss(x: np.ndarray, settings: list[Setting], strength: float = 0.0) -> float:
    """The robust loss ``least_squares`` minimises (soft_l1 at scale :data:`F_SCALE`), the
    penalty included."""
    z = (_log_errors(x, settings) / F_SCALE) ** 2
    data = float(F_SCALE**2 * np.sum(2.0 * (np.sqrt(1.0 + z) - 1.0)))
    return data + float(strength * np.sum(_distances(x) ** 2))


def search(settings: list[Setting], x0: np.ndarray, strength: float = 0.0) -> np.ndarray:
    """The parameters minimising the robust loss over ``settings``."""
    from scipy.optimize import least_squares  # only the fitting script needs scipy

    lo = np.array([b[0] for b in FITTED.values()])
    hi = np.array([b[1] for b in FITTED.values()])
    res = least_squares(
        _residuals,
        np.clip(x0, lo, hi),
        bounds=(lo, hi),
        loss="soft_l1",
        f_scale=F_SCALE,
        args=(settings, strength),
        x_scale="jac",
        ftol=1e-10,
        xtol=1e-10,
        gtol=1e-10,
        max_nfev=MAX_EVALUATIONS,
    )
    return np.asarray(res.x, dtype=float)


def rounded(x: np.ndarray) -> dict[str, float]:
    return {k: float(f"{v:.{SIGNIFICANT}g}") for k, v in zip(FITTED, x, strict=True)}


@dataclass(frozen=True)
class Fit:
    calibration: Calibration
    typical: TypicalDays
    settings: tuple[Setting, ...]
    rounds: int
    converged: bool
    loo: tuple[tuple[str, float], ...]
    """(run id, log(published / predicted)) with the run left out of the search"""
    strength: float = 0.0
    """the penalty strength the parameters were searched with"""

    @property
    def loo_median(self) -> float:
        """The median |error| of the leave-one-out predictions (what chooses the strength)."""
        return float(np.median([abs(math.exp(-v) - 1.0) for _, v in self.loo]))

    @property
    def interval(self) -> tuple[float, float]:
        r = np.array([v for _, v in self.loo])
        tail = (1.0 - LEVEL) / 2.0
        return float(np.quantile(r, tail)), float(np.quantile(r, 1.0 - tail))


def fit(runs: list[PublishedRun], *, loo: bool = True, strength: float = 0.0) -> Fit:
    """Fit on ``runs`` (the caller passes the ``fit`` runs and nothing else); runs whose figure
    counts something the estimator does not model (:attr:`PublishedRun.fittable`) are left
    out. A ``check`` run among them is refused: its error would no longer be held out.
    ``strength`` weighs the pull of each parameter towards its prior (:data:`PRIORS`), in the
    search and in every leave-one-out search."""
    held_out = [r.id for r in runs if r.used_for != "fit"]
    if held_out:
        raise ValueError(f"fit() takes only `fit` runs; given check runs: {', '.join(held_out)}")
    runs = [r for r in runs if r.fittable]
    points = [
        (r.value, r.value / r.chips / 24.0)
        for r in runs
        if r.metric == "chip_hours" and r.chips is not None
    ]
    typical = fit_typical_days(points)
    cal = Calibration()
    x = np.array([fitted_values(cal)[k] for k in FITTED])
    settings = [settle(r, cal, typical) for r in runs]
    seen: list[tuple[Any, np.ndarray, Calibration, list[Setting], float]] = []
    converged = False
    rounds = 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        x = search(settings, x, strength)
        cal = with_fitted(rounded(x))
        key = [(s.chips, s.layout) for s in settings]
        seen.append((key, x, cal, settings, _loss(x, settings, strength)))
        again = [settle(r, cal, typical) for r in runs]
        again_key = [(s.chips, s.layout) for s in again]
        if again_key == key:
            converged = True
            settings = again
            break
        if any(k == again_key for k, *_ in seen):
            # the settings cycle: keep the state of the cycle with the lowest loss
            start = next(i for i, (k, *_) in enumerate(seen) if k == again_key)
            _, x, cal, settings, _ = min(seen[start:], key=lambda s: s[4])
            break
        settings = again
    left_out: list[tuple[str, float]] = []
    if loo:
        for i, s in enumerate(settings):
            if s.run.metric != "chip_hours":
                continue
            xi = search(settings[:i] + settings[i + 1 :], x, strength)
            pred = predicted(s, with_fitted(dict(zip(FITTED, xi, strict=True))))
            left_out.append((s.run.id, math.log(s.run.value / pred)))
    return Fit(cal, typical, tuple(settings), rounds, converged, tuple(left_out), strength)


@dataclass(frozen=True)
class Spread:
    """The scatter left when the efficiency is known (see the module's step 4)."""

    sigma: float
    same_run: tuple[tuple[str, float], ...]
    """(chip-hour run id, log(published / predicted from its own published MFU))"""
    replicates: tuple[tuple[str, str, float], ...]
    """(run, run, difference of their log errors)"""

    @property
    def interval(self) -> tuple[float, float]:
        return -Z80 * self.sigma, Z80 * self.sigma


def given_mfu_spread(result: Fit, runs: list[PublishedRun]) -> Spread:
    """The scatter of log(published / estimated with a known MFU), from ``runs`` alone (the
    caller passes the ``fit`` runs), with the fitted parameters of ``result``."""
    cal = result.calibration
    runs = [r for r in runs if r.fittable]
    by_id = {r.id: r for r in runs}
    pairs: list[tuple[str, float]] = []
    for r in runs:
        if r.metric != "chip_hours" or r.chips is None:
            continue
        for m in runs:
            if m.metric == "mfu" and same_run(r, m):
                est = estimate_training(
                    r.model,
                    r.tokens,
                    get_chip(r.chip),
                    r.chips,
                    cal=cal,
                    software_year=r.year,
                    mfu=m.value,
                )
                pairs.append((r.id, math.log(r.value / published_metric(est, r))))
    reps: list[tuple[str, str, float]] = []
    for a, b in NEAR_REPLICATES:
        if a in by_id and b in by_id:
            ea, eb = (math.log(_estimated(by_id[k], result) / by_id[k].value) for k in (a, b))
            reps.append((a, b, ea - eb))
    squares = [v * v for _, v in pairs] + [d * d / 2.0 for *_, d in reps]
    sigma = math.sqrt(sum(squares) / len(squares)) if squares else 0.0
    return Spread(sigma, tuple(pairs), tuple(reps))


def _estimated(r: PublishedRun, result: Fit) -> float:
    chip, cal = get_chip(r.chip), result.calibration
    chips = (
        r.chips
        if r.chips is not None
        else typical_chips(
            r.model, r.tokens, chip, cal=cal, software_year=r.year, typical=result.typical
        )
    )
    est = estimate_training(r.model, r.tokens, chip, chips, cal=cal, software_year=r.year)
    return published_metric(est, r)


def document(
    result: Fit, all_runs: list[PublishedRun], spread: Spread | None = None
) -> dict[str, Any]:
    """``fitted.yaml``: the parameters, the typical run length, the interval, and every run's
    prediction with the shipped parameters (check runs included: predicted, never fitted)."""
    low, high = result.interval
    loo = dict(result.loo)
    fit_ids = [s.run.id for s in result.settings]
    runs: dict[str, Any] = {}
    for r in all_runs:
        chip = get_chip(r.chip)
        basis = "published"
        chips = r.chips
        if chips is None:
            basis = "typical"
            chips = typical_chips(
                r.model,
                r.tokens,
                chip,
                cal=result.calibration,
                software_year=r.year,
                typical=result.typical,
            )
        est = estimate_training(
            r.model, r.tokens, chip, chips, cal=result.calibration, software_year=r.year
        )
        pred = published_metric(est, r)
        row: dict[str, Any] = {
            "used_for": r.used_for,
            "metric": r.metric,
            "scope": r.scope,
            "chips": chips,
            "chips_basis": basis,
            "layout": est.layout,
            "published": r.value,
            "predicted": float(f"{pred:.6g}"),
            "error": round(pred / r.value - 1.0, 4),
        }
        if r.id in loo:
            row["loo_error"] = round(math.exp(-loo[r.id]) - 1.0, 4)
        runs[r.id] = row
    return {
        "parameters": fitted_values(result.calibration),
        "fit": {
            "runs": fit_ids,
            "out_of_scope": [r.id for r in all_runs if r.used_for == "fit" and not r.fittable],
            "loss": "soft_l1",
            "f_scale": F_SCALE,
            "penalty": {
                "strength": result.strength,
                "priors": {k: {"value": v, "space": sp} for k, (v, sp) in PRIORS.items()},
            },
            "rounds": result.rounds,
            "converged": result.converged,
        },
        "typical_days": result.typical.to_json(),
        "interval": {
            "low": round(low, 4),
            "high": round(high, 4),
            "level": LEVEL,
            "basis": f"leave-one-out on {len(result.loo)} fit runs (chip-hours): "
            f"10th and 90th percentiles of log(published / predicted)",
        },
        **(
            {}
            if spread is None
            else {
                "interval_given_mfu": {
                    "low": round(spread.interval[0], 4),
                    "high": round(spread.interval[1], 4),
                    "level": LEVEL,
                    "sigma": round(spread.sigma, 4),
                    "basis": "a measured MFU given: log-normal scatter of sigma "
                    f"{spread.sigma:.3f} "
                    f"from fit runs ({len(spread.same_run)} published both as per-step MFU "
                    f"and chip-hours, {len(spread.replicates)} near-replicate pairs)",
                }
            }
        ),
        "runs": runs,
    }
