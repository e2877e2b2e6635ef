"""How well the estimator predicts published training runs it was not fitted on.

The `check` runs of src/straits/estimate/runs.yaml never enter a fitted number
(benchmarks/fit_estimator.py fits on the `fit` runs only). For them this prints each run's
published and predicted chip-hours with the central 80% interval, then: median |error|, the
share within 25%, the median signed error (bias; negative = optimistic), and interval coverage;
and the same for the baseline every estimate is measured against, a constant MFU of 0.40 on the
same FLOPs (its ratio to the estimator). Runs whose cluster size was not published are
estimated on the typical cluster for their size, as `straits estimate` does when a request gives
no `chips`. The `fit` runs and the per-step MFU runs are shown after, for the record.

Goals on the `check` runs (issue #16): median |error| <= 12%, bias within +-5%, >= 80% within
25%, interval coverage 70-90%. They are reported here, never asserted in tests.

Run: python benchmarks/estimator_calibration.py
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from straits.catalog import get_chip
from straits.estimate import estimate_training, flops_per_token
from straits.estimate.runs import PublishedRun, published_runs
from straits.estimate.typical import typical_chips

BASELINE_MFU = 0.40
GOALS = {"median |error|": (None, 0.12), "bias": (-0.05, 0.05), "within 25%": (0.80, None),
         "interval coverage": (0.70, 0.90)}


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
    if run.metric == "mfu":
        return Row(run, chips, basis, est.mfu, est.mfu, est.mfu, BASELINE_MFU)
    flops = flops_per_token(run.model) * run.tokens
    baseline = flops / (chip.peak_tflops * 1e12 * BASELINE_MFU) / 3600.0
    return Row(run, chips, basis, est.chip_hours, est.chip_hours_low, est.chip_hours_high,
               baseline)


def summary(rows: list[Row]) -> dict[str, float]:
    errs = [r.error for r in rows]
    return {"median |error|": statistics.median(abs(e) for e in errs),
            "bias": statistics.median(errs),
            "within 25%": sum(abs(e) <= 0.25 for e in errs) / len(errs),
            "interval coverage": sum(r.inside for r in rows) / len(rows)}


def baseline_summary(rows: list[Row]) -> dict[str, float]:
    errs = [r.baseline_error for r in rows]
    return {"median |error|": statistics.median(abs(e) for e in errs),
            "bias": statistics.median(errs),
            "within 25%": sum(abs(e) <= 0.25 for e in errs) / len(errs)}


def table(title: str, rows: list[Row]) -> None:
    print(f"\n{title}")
    print(f"{'run':24s} {'chip':14s} {'chips':>7s} {'basis':9s} {'published':>12s} "
          f"{'predicted':>12s} {'80% interval':>25s} {'error':>8s} {'in':>3s} {'MFU 0.40':>9s}")
    for r in rows:
        interval = f"{r.low:,.0f}-{r.high:,.0f}"
        print(f"{r.run.id:24s} {r.run.chip:14s} {r.chips:7,d} {r.basis:9s} {r.run.value:12,.0f} "
              f"{r.predicted:12,.0f} {interval:>25s} {r.error:+8.1%} "
              f"{'yes' if r.inside else 'no':>3s} {r.baseline_error:+9.1%}")


def verdict(name: str, value: float) -> str:
    lo, hi = GOALS[name]
    ok = (lo is None or value >= lo) and (hi is None or value <= hi)
    goal = (f"{lo:+.0%} to {hi:+.0%}" if lo is not None and hi is not None and lo < 0
            else f">= {lo:.0%}" if lo is not None and hi is None
            else f"<= {hi:.0%}" if hi is not None and lo is None else f"{lo:.0%}-{hi:.0%}")
    return f"goal {goal}: {'met' if ok else 'NOT met'}"


def main() -> None:
    start = time.perf_counter()
    runs = published_runs()
    rows = {r.id: row(r) for r in runs}
    seconds = time.perf_counter() - start
    hours = [rows[r.id] for r in runs if r.metric == "chip_hours"]
    check = [x for x in hours if x.run.used_for == "check"]
    fitted = [x for x in hours if x.run.used_for == "fit"]
    table(f"CHECK runs ({len(check)}, never fitted on): whole-run chip-hours", check)
    s, b = summary(check), baseline_summary(check)
    print(f"\n{'on the check runs':22s} {'estimator':>10s} {'MFU 0.40':>10s} {'ratio':>7s}")
    for name in ("median |error|", "bias", "within 25%"):
        # the ratio of sizes: for the bias, of how far each is from zero
        ratio = abs(s[name]) / abs(b[name]) if b[name] else float("nan")
        fmt = "{:>+10.1%}" if name == "bias" else "{:>10.1%}"
        print(f"{name:22s} {fmt.format(s[name])} {fmt.format(b[name])} {ratio:7.2f}   "
              f"{verdict(name, s[name])}")
    print(f"{'interval coverage':22s} {s['interval coverage']:>10.0%} {'-':>10s} {'':7s}   "
          f"{verdict('interval coverage', s['interval coverage'])}")
    table(f"FIT runs ({len(fitted)}, the parameters were fitted on these)", fitted)
    fs = summary(fitted)
    print(f"fit runs: median |error| {fs['median |error|']:.1%}, bias {fs['bias']:+.1%}, "
          f"within 25% {fs['within 25%']:.0%}, interval coverage {fs['interval coverage']:.0%}")
    print("\nper-step MFU runs (published MFU, predicted MFU on the published cluster)")
    for r in runs:
        if r.metric == "mfu":
            x = rows[r.id]
            print(f"  {r.id:24s} {r.used_for:5s} {r.chip:14s} {x.chips:7,d} published "
                  f"{r.value:.1%} predicted {x.predicted:.1%} ({x.error:+.1%})")
    print(f"\n{len(runs)} runs estimated in {seconds:.1f} s "
          f"({seconds / len(runs) * 1000:.0f} ms a run, typical cluster search included; "
          f"wall-clock on a shared machine)")


if __name__ == "__main__":
    main()
