"""How well the estimator predicts published training runs it was not fitted on.

The `check` runs of src/straits/estimate/runs.yaml never enter a fitted number
(benchmarks/fit_estimator.py fits on the `fit` runs only). For them this prints each run's
published and predicted chip-hours with the central 80% interval, then: median |error|, the
share within 25%, the median signed error (bias; negative = optimistic), and interval coverage;
and the same for the baseline every estimate is measured against, a constant MFU of 0.40 on the
same FLOPs (its ratio to the estimator). Runs whose cluster size was not published are
estimated on the typical cluster for their size, as `straits estimate` does when a request gives
no `chips`. A figure is compared with what it counts (`scope`): step-time figures with the
estimate before goodput and evaluation. The headline counts every check run; the same figures
follow per collection round and without the runs whose figure is out of the estimator's scope
(distillation), for the record. The `fit` runs and the per-step MFU runs are shown after.

Goals on the `check` runs (issue #16): median |error| <= 12%, bias within +-5%, >= 80% within
25%, interval coverage 70-90%. They are reported here, never asserted in tests.

Run: python benchmarks/estimator_calibration.py
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from straits.catalog import get_chip
from straits.estimate import estimate_training, flops_per_token
from straits.estimate.fitting import published_metric
from straits.estimate.runs import NEAR_REPLICATES, PublishedRun, published_runs, same_run
from straits.estimate.typical import typical_chips

BASELINE_MFU = 0.40
GOALS = {
    "median |error|": (None, 0.12),
    "bias": (-0.05, 0.05),
    "within 25%": (0.80, None),
    "interval coverage": (0.70, 0.90),
}


@dataclass(frozen=True)
class Row:
    run: PublishedRun
    chips: int
    basis: str
    predicted: float
    low: float
    high: float
    baseline: float

    @property
    def error(self) -> float:
        return self.predicted / self.run.value - 1.0

    @property
    def baseline_error(self) -> float:
        return self.baseline / self.run.value - 1.0

    @property
    def inside(self) -> bool:
        return self.low <= self.run.value <= self.high


def row(run: PublishedRun) -> Row:
    chip = get_chip(run.chip)
    basis, chips = "published", run.chips
    if chips is None:
        basis = "typical"
        chips = typical_chips(run.model, run.tokens, chip, software_year=run.year)
    est = estimate_training(run.model, run.tokens, chip, chips, software_year=run.year)
    pred = published_metric(est, run)
    if run.metric == "mfu":
        return Row(run, chips, basis, pred, pred, pred, BASELINE_MFU)
    flops = flops_per_token(run.model) * run.tokens
    baseline = flops / (chip.peak_tflops * 1e12 * BASELINE_MFU) / 3600.0
    return Row(run, chips, basis, pred, pred * est.low_factor, pred * est.high_factor, baseline)


def summary(rows: list[Row], error: Callable[[Row], float] = lambda r: r.error) -> dict[str, float]:
    errs = [error(r) for r in rows]
    return {
        "median |error|": statistics.median(abs(e) for e in errs),
        "bias": statistics.median(errs),
        "within 25%": sum(abs(e) <= 0.25 for e in errs) / len(errs),
        "interval coverage": sum(r.inside for r in rows) / len(rows),
    }


def table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    print(
        f"{'run':22s} {'rd':>2s} {'scope':6s} {'chip':14s} {'chips':>7s} {'basis':9s} "
        f"{'published':>12s} {'predicted':>12s} {'80% interval':>25s} {'error':>8s} {'in':>3s} "
        f"{'MFU 0.40':>9s}"
    )
    for r in rows:
        interval = f"{r.low:,.0f}-{r.high:,.0f}"
        print(
            f"{r.run.id:22s} {r.run.round:2d} {r.run.scope[:6]:6s} {r.run.chip:14s} "
            f"{r.chips:7,d} {r.basis:9s} {r.run.value:12,.0f} {r.predicted:12,.0f} "
            f"{interval:>25s} {r.error:+8.1%} {'yes' if r.inside else 'no':>3s} "
            f"{r.baseline_error:+9.1%}"
        )


def verdict(name: str, value: float) -> str:
    lo, hi = GOALS[name]
    ok = (lo is None or value >= lo) and (hi is None or value <= hi)
    goal = (
        f"{lo:+.0%} to {hi:+.0%}"
        if lo is not None and hi is not None and lo < 0
        else f">= {lo:.0%}"
        if lo is not None and hi is None
        else f"<= {hi:.0%}"
        if hi is not None and lo is None
        else f"{lo:.0%}-{hi:.0%}"
    )
    return f"goal {goal}: {'met' if ok else 'NOT met'}"


def headline(rows: list[Row]) -> None:
    s = summary(rows)
    b = summary(rows, lambda r: r.baseline_error)
    print(f"\n{'on the check runs':22s} {'estimator':>10s} {'MFU 0.40':>10s} {'ratio':>7s}")
    for name in ("median |error|", "bias", "within 25%"):
        # the ratio of sizes: for the bias, of how far each is from zero
        ratio = abs(s[name]) / abs(b[name]) if b[name] else float("nan")
        fmt = "{:>+10.1%}" if name == "bias" else "{:>10.1%}"
        print(
            f"{name:22s} {fmt.format(s[name])} {fmt.format(b[name])} {ratio:7.2f}   "
            f"{verdict(name, s[name])}"
        )
    print(
        f"{'interval coverage':22s} {s['interval coverage']:>10.0%} {'-':>10s} {'':7s}   "
        f"{verdict('interval coverage', s['interval coverage'])}"
    )


def subsets(check: list[Row], runs: tuple[PublishedRun, ...]) -> None:
    print("\nthe same on parts of the check runs (for the record; the goals are on all of them)")
    parts = {
        f"round {n}": [r for r in check if r.run.round == n]
        for n in sorted({r.run.round for r in check})
    }
    parts["in scope (no distillation)"] = [r for r in check if r.run.fittable]
    # the split rule works per (family, metric): one training run's per-step MFU can be a fit
    # run and its chip-hours a check run (Skywork-13B), which is then not independent of the fit
    fitted = [f for f in runs if f.used_for == "fit"]
    parts["no figure of the run fitted"] = [
        r for r in check if not any(same_run(r.run, f) for f in fitted)
    ]
    for name, rows in parts.items():
        if not rows:
            continue
        s = summary(rows)
        print(
            f"  {name:28s} {len(rows):3d} runs: median |error| {s['median |error|']:.1%}, "
            f"bias {s['bias']:+.1%}, within 25% {s['within 25%']:.0%}, "
            f"coverage {s['interval coverage']:.0%}"
        )


def _normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def replicates(rows: dict[str, Row]) -> None:
    """How far apart the estimator's errors on near-replicate runs are, and what that scatter
    alone allows: the median |error| and share within 25% of a model whose only error is it
    (log-normal scatter of standard deviation sigma, estimated from the pairs)."""
    print("\nnear-replicates (same team, chip and model; the spread is the published figures')")
    diffs = []
    for a, b in NEAR_REPLICATES:
        if a not in rows or b not in rows:
            continue
        d = math.log((1.0 + rows[a].error) / (1.0 + rows[b].error))
        diffs.append(d)
        print(
            f"  {a:14s} {rows[a].error:+7.1%}   {b:16s} {rows[b].error:+7.1%}   "
            f"apart by x{math.exp(abs(d)):.2f}"
        )
    if not diffs:
        return
    sigma = math.sqrt(sum(d * d for d in diffs) / len(diffs) / 2.0)
    median = math.exp(0.6745 * sigma) - 1.0
    within = _normal_cdf(math.log(1.25) / sigma) - _normal_cdf(math.log(0.75) / sigma)
    print(
        f"  scatter of one published figure: sigma {sigma:.3f} in log units ({len(diffs)} "
        f"pairs); with no other error a model would reach median |error| {median:.1%} and "
        f"{within:.0%} within 25%"
    )


def given_mfu(runs: tuple[PublishedRun, ...]) -> None:
    """With a measured MFU given: each training run published both as a per-step MFU and as a
    chip-hour figure, predicted from its own published MFU, against the interval for a known
    efficiency (fitted on the pairs whose two entries are both `fit` runs)."""
    print("\nwith the published per-step MFU given (the same run published both ways)")
    for r in runs:
        if r.metric != "chip_hours" or r.chips is None:
            continue
        for m in runs:
            if m.metric == "mfu" and same_run(r, m):
                est = estimate_training(
                    r.model, r.tokens, get_chip(r.chip), r.chips, software_year=r.year, mfu=m.value
                )
                pred = published_metric(est, r)
                lo, hi = pred * est.low_factor, pred * est.high_factor
                print(
                    f"  {r.id:18s} ({r.used_for}) from {m.id} ({m.used_for}, {m.value:.1%}): "
                    f"published {r.value:,.0f}, predicted {pred:,.0f} "
                    f"({pred / r.value - 1.0:+.1%}), 80% {lo:,.0f}-{hi:,.0f} "
                    f"{'inside' if lo <= r.value <= hi else 'outside'}"
                )


def main() -> None:
    start = time.perf_counter()
    runs = published_runs()
    rows = {r.id: row(r) for r in runs}
    seconds = time.perf_counter() - start
    hours = [rows[r.id] for r in runs if r.metric == "chip_hours"]
    check = [x for x in hours if x.run.used_for == "check"]
    fitted = [x for x in hours if x.run.used_for == "fit"]
    table(f"CHECK runs ({len(check)}, never fitted on): whole-run chip-hours", check)
    headline(check)
    subsets(check, runs)
    replicates(rows)
    given_mfu(runs)
    table(f"FIT runs ({len(fitted)}, the parameters were fitted on these)", fitted)
    fs = summary(fitted)
    print(
        f"fit runs: median |error| {fs['median |error|']:.1%}, bias {fs['bias']:+.1%}, "
        f"within 25% {fs['within 25%']:.0%}, interval coverage {fs['interval coverage']:.0%}"
    )
    print("\nper-step MFU runs (published MFU, predicted MFU on the published cluster)")
    for r in runs:
        if r.metric == "mfu":
            x = rows[r.id]
            print(
                f"  {r.id:24s} {r.used_for:5s} {r.chip:14s} {x.chips:7,d} published "
                f"{r.value:.1%} predicted {x.predicted:.1%} ({x.error:+.1%})"
            )
    print(
        f"\n{len(runs)} runs estimated in {seconds:.1f} s "
        f"({seconds / len(runs) * 1000:.0f} ms a run, typical cluster search included; "
        f"wall-clock on a shared machine)"
    )


if __name__ == "__main__":
    main()
