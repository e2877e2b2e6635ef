"""Fit the estimator's parameters on the `fit` runs of runs.yaml and calibrate its interval.

Reads only the runs marked `used_for: fit` (the `check` runs are predicted for the record,
never fitted on), then prints the parameters, the typical run length, every fit run's error
and its leave-one-out error, and the interval. With --write it stores the result in
src/straits/estimate/fitted.yaml, which the estimator loads; with --check it exits 1 when
fitted.yaml differs from what this code fits now (the tests run it that way).

The penalty strength (fitting.STRENGTHS, fixed before any was fitted) is chosen by the fit
runs' own leave-one-out median |error|: a plain run and --write fit every strength of the grid
(about six times the work of one fit) and keep the lowest (a tie keeps the weaker penalty);
--check fits only the strength fitted.yaml names, checks that figure against the grid recorded
there and that the recorded grid chooses it (--check --grid refits the whole grid).

Run: python benchmarks/fit_estimator.py [--write | --check [--grid]]
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from straits.estimate.calibration import FITTED
from straits.estimate.fitting import (
    STRENGTHS,
    Fit,
    Spread,
    document,
    fit,
    given_mfu_spread,
    predicted,
)
from straits.estimate.runs import fit_runs, published_runs

FITTED_YAML = Path(__file__).resolve().parents[1] / "src/straits/estimate/fitted.yaml"
HEADER = """\
# Written by `python benchmarks/fit_estimator.py --write`; do not edit by hand.
# Fitted on the `fit` runs of runs.yaml only (listed under fit.runs). Every run's prediction
# with these parameters is recorded under `runs` (check runs predicted, never fitted on):
# `straits estimate` shows the nearest ones with their errors.
"""


def show_spread(spread: Spread) -> None:
    print("\nwith a measured MFU given (fit runs only):")
    for run_id, v in spread.same_run:
        print(f"  {run_id:24s} predicted from its own published MFU: {math.exp(-v) - 1.0:+7.1%}")
    for a, b, d in spread.replicates:
        print(f"  {a:14s} {b:16s} near-replicates, errors apart by x{math.exp(abs(d)):.2f}")
    low, high = spread.interval
    print(
        f"  sigma {spread.sigma:.3f}: central 80% interval x{math.exp(low):.3f} to "
        f"x{math.exp(high):.3f}"
    )


def show(result: Fit, doc: dict[str, Any], seconds: float) -> None:
    how = "converged" if result.converged else "settled on the best state of a cycle"
    print(
        f"fitted on {len(result.settings)} runs in {seconds:.1f} s ({result.rounds} rounds, {how})"
    )
    print("\nparameters")
    for k, v in doc["parameters"].items():
        lo, hi = FITTED[k]
        edge = "  (at a bound)" if math.isclose(v, lo) or math.isclose(v, hi) else ""
        print(f"  {k:18s} {v:10.4g}   bounds [{lo:g}, {hi:g}]{edge}")
    t = result.typical
    print(
        f"\ntypical run length: days = exp({t.a:.3f}) x chip_hours^{t.b:.3f} "
        f"(fitted on {t.runs} runs with a published cluster size)"
    )
    loo = dict(result.loo)
    print(f"\n{'fit run':24s} {'chips':>7s} {'basis':9s} {'layout':42s} {'error':>8s} {'LOO':>8s}")
    for s in result.settings:
        err = predicted(s, result.calibration) / s.run.value - 1.0
        lo_err = f"{math.exp(-loo[s.run.id]) - 1.0:+8.1%}" if s.run.id in loo else f"{'-':>8s}"
        print(
            f"{s.run.id:24s} {s.chips:7,d} {s.chips_basis:9s} {s.layout.describe():42s} "
            f"{err:+8.1%} {lo_err}"
        )
    errs = [math.exp(-v) - 1.0 for _, v in result.loo]
    low, high = result.interval
    print(
        f"\nleave-one-out over {len(errs)} chip-hour fit runs: median |error| "
        f"{statistics.median(abs(e) for e in errs):.1%}, median error "
        f"{statistics.median(errs):+.1%}, within 25% {sum(abs(e) <= 0.25 for e in errs)}"
    )
    rounds = {s.run.id: s.run.round for s in result.settings}
    for rnd in sorted(set(rounds.values())):
        part = [math.exp(-v) - 1.0 for k, v in result.loo if rounds[k] == rnd]
        if part:
            print(
                f"  round {rnd}: {len(part)} runs, median |error| "
                f"{statistics.median(abs(e) for e in part):.1%}, within 25% "
                f"{sum(abs(e) <= 0.25 for e in part)}"
            )
    if doc["fit"]["out_of_scope"]:
        print(
            f"not fitted (their figure counts what the estimator does not model): "
            f"{', '.join(doc['fit']['out_of_scope'])}"
        )
    print(
        f"central 80% interval: x{math.exp(low):.3f} to x{math.exp(high):.3f} the central estimate"
    )


#: how close a refit must come to the shipped figures (scipy and BLAS builds differ in the last
#: digits of a search; the shipped parameters are rounded to 4 significant digits)
REL_TOL = 2e-3


def differences(shipped: Any, fresh: Any, path: str = "") -> list[str]:
    """Where two fitted documents differ: floats beyond REL_TOL, anything else at all."""
    if isinstance(shipped, dict) and isinstance(fresh, dict):
        out = [f"{path}.{k}: only in one" for k in set(shipped) ^ set(fresh)]
        for k in shipped.keys() & fresh.keys():
            out += differences(shipped[k], fresh[k], f"{path}.{k}")
        return out
    if isinstance(shipped, list) and isinstance(fresh, list):
        if len(shipped) != len(fresh):
            return [f"{path}: {len(shipped)} items shipped, {len(fresh)} fitted"]
        return [
            d
            for i, (a, b) in enumerate(zip(shipped, fresh, strict=True))
            for d in differences(a, b, f"{path}[{i}]")
        ]
    if isinstance(shipped, float) or isinstance(fresh, float):
        if (
            isinstance(shipped, int | float)
            and isinstance(fresh, int | float)
            and math.isclose(shipped, fresh, rel_tol=REL_TOL, abs_tol=1e-4)
        ):
            return []
    elif shipped == fresh:
        return []
    return [f"{path}: shipped {shipped!r}, fitted {fresh!r}"]


Grid = list[dict[str, float]]


def choose(grid: Grid) -> float:
    """The strength with the lowest leave-one-out median |error| (a tie: the weaker one)."""
    best = min(grid, key=lambda g: (g["loo_median_abs_error"], g["strength"]))
    return best["strength"]


def search_grid() -> tuple[Fit, Grid]:
    """Every strength of the grid fitted, with its leave-one-out median |error|."""
    fits = []
    for strength in STRENGTHS:
        r = fit(fit_runs(), strength=strength)
        print(f"  strength {strength:<5g} leave-one-out median |error| {r.loo_median:.2%}")
        fits.append(r)
    grid = [{"strength": r.strength, "loo_median_abs_error": round(r.loo_median, 4)} for r in fits]
    chosen = choose(grid)
    return next(r for r in fits if r.strength == chosen), grid


def shipped_document() -> dict[str, Any]:
    if not FITTED_YAML.exists():
        return {}
    data = yaml.safe_load(FITTED_YAML.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def header(grid: Grid, chosen: float) -> str:
    figures = ", ".join(f"{g['strength']:g}: {g['loo_median_abs_error']:.1%}" for g in grid)
    return HEADER + (
        "# Penalty towards each parameter's prior (fit.penalty), its strength chosen from a grid\n"
        "# fixed before any was fitted, by the fit runs' leave-one-out median |error|:\n"
        f"# {figures}; chosen {chosen:g}.\n"
    )


def main() -> int:
    start = time.perf_counter()
    shipped = shipped_document()
    if "--check" in sys.argv and "--grid" not in sys.argv:
        penalty = shipped.get("fit", {}).get("penalty", {})
        grid = [dict(g) for g in penalty.get("grid", [])]
        result = fit(fit_runs(), strength=float(penalty.get("strength", 0.0)))
        for g in grid:  # the shipped strength's figure is measured again, not trusted
            if g.get("strength") == result.strength:
                g["loo_median_abs_error"] = round(result.loo_median, 4)
    else:
        print("penalty strengths (fit runs' leave-one-out):")
        result, grid = search_grid()
    spread = given_mfu_spread(result, fit_runs())
    doc = document(result, list(published_runs()), spread)
    doc["fit"]["penalty"]["grid"] = grid
    doc["fit"]["penalty"]["chosen_by"] = (
        "the lowest leave-one-out median |error| over the fit runs (a tie: the weaker penalty)"
    )
    show(result, doc, time.perf_counter() - start)
    show_spread(spread)
    problems = []
    if [g.get("strength") for g in grid] != list(STRENGTHS):
        problems.append(
            f"fit.penalty.grid: strengths {[g.get('strength') for g in grid]}, "
            f"the code tries {list(STRENGTHS)}"
        )
    elif choose(grid) != result.strength:
        problems.append(
            f"fit.penalty.strength: {result.strength:g}, the grid chooses {choose(grid):g}"
        )
    text = header(grid, result.strength) + yaml.safe_dump(doc, sort_keys=False, width=100)
    if "--write" in sys.argv:  # atomically: a killed write leaves the old file whole
        tmp = FITTED_YAML.with_suffix(".yaml.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, FITTED_YAML)
        print(f"\nwrote {FITTED_YAML}")
    elif "--check" in sys.argv:
        diff = problems + differences(shipped, yaml.safe_load(text))
        if diff:
            print(f"\n{FITTED_YAML} differs from this fit (run with --write):", file=sys.stderr)
            for d in sorted(diff)[:20]:
                print(f"  {d}", file=sys.stderr)
            return 1
        print(f"\n{FITTED_YAML} matches this fit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
