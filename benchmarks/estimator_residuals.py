"""Where the estimator's leave-one-out errors on the `fit` runs fall, feature by feature.

Reads only the `fit` runs of runs.yaml (as benchmarks/fit_estimator.py does: the `check` runs
are never predicted here). For every chip-hour fit run it takes the leave-one-out residual
r = log(published / predicted), the run predicted with the parameters refitted without it
(positive: the run took longer than the estimate), and tabulates r against what is known about
the run: chip, software year, model size, tokens per parameter, whether the cluster size was
published, dense or MoE, what the figure counts (scope), the confidence mark, sequence length,
whether the global batch was published, the sequences each data-parallel replica processes per
step, the cluster size, the data-parallel width and pipeline degree of the settled layout, and
a published cluster against the typical one. For ordered features it gives Spearman's rank
correlation with r.

The fit is the shipped one: the penalty strength fitted.yaml names (``fit.penalty.strength``;
only that number is read from it, not its runs). A published cluster is compared with the
typical cluster of a run of its *published* chip-hours (typical days over its published days):
the typical cluster of the run's *predicted* chip-hours would be smaller whenever the run took
longer than predicted, so it would track r by construction.

A structured residual (a feature along which r drifts) points at a mechanism the model lacks;
docs/estimator.md quotes this output. Nothing here is fitted: it only reads the fit.

Run: python benchmarks/estimator_residuals.py
"""

from __future__ import annotations

import math
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

from straits.catalog import get_chip
from straits.estimate.calibration import fitted_document
from straits.estimate.fitting import Fit, Setting, fit
from straits.estimate.runs import fit_runs
from straits.estimate.typical import TypicalDays


def _bucket(edges: list[float], labels: list[str]) -> Callable[[float], str]:
    def f(x: float) -> str:
        for edge, label in zip(edges, labels, strict=False):
            if x < edge:
                return label
        return labels[-1]

    return f


def seqs_per_replica(s: Setting) -> float:
    """Sequences each data-parallel replica processes per optimizer step."""
    return s.batch / s.layout.dp / s.run.model.seq_len


#: (name, the feature's value as a group label, the feature as a number for rank correlation)
FEATURES: list[tuple[str, Callable[[Setting], str], Callable[[Setting], float] | None]] = [
    ("chip", lambda s: s.run.chip, None),
    ("chip family", lambda s: get_chip(s.run.chip).family, None),
    ("software year", lambda s: str(s.run.year), lambda s: float(s.run.year)),
    (
        "active parameters",
        lambda s: _bucket([3e9, 1e10, 5e10], ["<3B", "3-10B", "10-50B", ">=50B"])(
            s.run.model.active
        ),
        lambda s: math.log(s.run.model.active),
    ),
    (
        "tokens per parameter",
        lambda s: _bucket([50, 300, 1000], ["<50", "50-300", "300-1000", ">=1000"])(
            s.run.tokens / s.run.model.active
        ),
        lambda s: math.log(s.run.tokens / s.run.model.active),
    ),
    ("cluster size", lambda s: s.chips_basis, None),
    ("dense or MoE", lambda s: "MoE" if s.run.model.is_moe else "dense", None),
    ("scope", lambda s: s.run.scope, None),
    ("confidence", lambda s: s.run.confidence, None),
    ("sequence length", lambda s: str(s.run.model.seq_len), lambda s: float(s.run.model.seq_len)),
    ("global batch", lambda s: "published" if s.run.model.global_batch_tokens else "default", None),
    (
        "sequences per replica",
        lambda s: _bucket([4, 16], ["<4", "4-16", ">=16"])(seqs_per_replica(s)),
        lambda s: math.log(seqs_per_replica(s)),
    ),
    (
        "chips",
        lambda s: _bucket([128, 1024], ["<128", "128-1023", ">=1024"])(s.chips),
        lambda s: math.log(s.chips),
    ),
    (
        "d_model",
        lambda s: _bucket([3072, 6144], ["<3072", "3072-6143", ">=6144"])(s.run.model.d_model),
        lambda s: math.log(s.run.model.d_model),
    ),
    (
        "data-parallel width",
        lambda s: _bucket([128, 512], ["<128", "128-511", ">=512"])(s.layout.dp),
        lambda s: math.log(s.layout.dp),
    ),
    ("pipeline", lambda s: "PP1" if s.layout.pp == 1 else "PP>1", lambda s: float(s.layout.pp)),
]


def relative_cluster(s: Setting, typical: TypicalDays) -> float:
    """A published cluster over the typical cluster of a run of its published chip-hours: the
    typical run length over the run's own days (above 1: more chips than usual, a shorter run)."""
    days = s.run.value / (s.chips * 24.0)
    return typical.days(s.run.value) / days


def shipped_strength() -> float:
    """The penalty strength of the shipped fit (0 when fitted.yaml names none)."""
    penalty = fitted_document().get("fit", {}).get("penalty", {})
    return float(penalty.get("strength", 0.0))


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""

    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        out = [0.0] * len(v)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                out[order[k]] = (i + j) / 2.0
            i = j + 1
        return out

    rx, ry = ranks(x), ranks(y)
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx and syy else 0.0


def show(result: Fit) -> None:
    loo = dict(result.loo)
    rows = [(s, loo[s.run.id]) for s in result.settings if s.run.id in loo]
    print(
        f"{'fit run':22s} {'r':>7s} {'chip':14s} {'year':>4s} {'active':>7s} {'tok/p':>6s} "
        f"{'chips':>6s} {'basis':9s} {'scope':5s} {'conf':4s} {'T':>5s} {'seq/rep':>7s}"
    )
    for s, r in sorted(rows, key=lambda x: x[1]):
        m = s.run.model
        print(
            f"{s.run.id:22s} {r:+7.3f} {s.run.chip:14s} {s.run.year:4d} "
            f"{m.active / 1e9:6.1f}B {s.run.tokens / m.active:6.0f} {s.chips:6,d} "
            f"{s.chips_basis:9s} {s.run.scope:5s} {s.run.confidence:4s} {m.seq_len:5d} "
            f"{seqs_per_replica(s):7.1f}"
        )
    print("\nr = log(published / predicted), leave-one-out; by feature: runs, median r, median |r|")
    typical = result.typical
    relative: tuple[str, Callable[[Setting], str], Callable[[Setting], float] | None] = (
        "published cluster/typ.",
        lambda s: (
            "typical"
            if s.chips_basis == "typical"
            else _bucket([0.75, 1.34], ["<0.75", "0.75-1.33", ">=1.34"])(
                relative_cluster(s, typical)
            )
        ),
        None,
    )
    for name, label, number in [*FEATURES, relative]:
        groups: dict[str, list[float]] = defaultdict(list)
        for s, r in rows:
            groups[label(s)].append(r)
        parts = "  ".join(
            f"{k} {len(v)}: {statistics.median(v):+.2f}/{statistics.median(abs(x) for x in v):.2f}"
            for k, v in sorted(groups.items())
        )
        rho = ""
        if number is not None:
            corr = spearman([number(s) for s, _ in rows], [r for _, r in rows])
            rho = f"  (rank corr. {corr:+.2f})"
        print(f"  {name:22s} {parts}{rho}")
    rs = [r for _, r in rows]
    print(
        f"\n{len(rs)} runs: median |r| {statistics.median(abs(r) for r in rs):.3f}, "
        f"mean |r| {statistics.fmean(abs(r) for r in rs):.3f}, "
        f"sd {statistics.pstdev(rs):.3f}"
    )


def main() -> None:
    start = time.perf_counter()
    strength = shipped_strength()
    result = fit(fit_runs(), strength=strength)
    print(
        f"fitted with leave-one-out (penalty strength {strength:g}, as shipped) in "
        f"{time.perf_counter() - start:.1f} s\n"
    )
    show(result)
    loo = dict(result.loo)
    published = [
        (relative_cluster(s, result.typical), loo[s.run.id])
        for s in result.settings
        if s.run.id in loo and s.chips_basis == "published"
    ]
    corr = spearman([x for x, _ in published], [r for _, r in published])
    print(f"published cluster / typical, {len(published)} runs: rank corr. {corr:+.2f}")


if __name__ == "__main__":
    main()
