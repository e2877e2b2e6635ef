"""Which parameters drive an outcome: Spearman rank correlation, and PRIM scenario discovery.

PRIM (Friedman & Fisher 1999, the method of the EMA Workbench's ``prim``): start from the box
of all runs; repeatedly peel off the ``alpha`` share of runs at the low or high end of one
parameter, whichever peel leaves the highest share of "cases" (runs whose outcome exceeds the
threshold), until fewer than ``min_mass`` of the runs remain. Of that trajectory the box
reported is the densest one still covering at least half of the cases, less the restrictions
whose removal costs at most 0.05 of density in all (peels that only fitted noise). Written
here (about 60 lines) rather than taken from the EMA Workbench, which would bring matplotlib,
seaborn, scikit-learn and statsmodels into the CLI.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from straits.market.loading import RangeParam

#: density a PRIM box may lose, in all, when restrictions that only fitted noise are dropped
DROP_TOLERANCE = 0.05


def spearman(params: list[RangeParam], x: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    """Each parameter's Spearman rank correlation with the metric over the runs where it is
    finite, ranked by magnitude. ``rho`` is None where it cannot be computed (fewer than three
    finite runs, a constant metric, a parameter that did not vary): no correlation measured
    is not a correlation of 0 (it read +0.00). Those rank last."""
    from scipy.stats import rankdata

    ok = np.isfinite(y)
    out = []
    ry = rankdata(y[ok])
    for i, p in enumerate(params):
        rx = rankdata(x[ok, i])
        rho: float | None = None
        if ok.sum() > 2 and rx.std() > 0 and ry.std() > 0:
            value = float(np.corrcoef(rx, ry)[0, 1])
            rho = None if math.isnan(value) else value
        out.append({**p.to_json(), "rho": rho})
    out.sort(key=lambda d: (d["rho"] is None, -abs(d["rho"] or 0.0), d["path"]))
    return out


#: PRIM peels quantiles off a box: fewer runs than this give no box
PRIM_MIN_RUNS = 5


def prim(
    params: list[RangeParam],
    x: np.ndarray,
    y: np.ndarray,
    threshold: float,
    alpha: float = 0.05,
    min_mass: float = 0.05,
    min_coverage: float = 0.5,
) -> dict[str, Any] | None:
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    n = y.size
    cases = y > threshold
    if n < PRIM_MIN_RUNS or not cases.any():
        return None
    inside = np.ones(n, dtype=bool)
    lo = x.min(axis=0).astype(float)
    hi = x.max(axis=0).astype(float)
    trajectory = [(lo.copy(), hi.copy(), inside.copy())]
    while inside.sum() > max(min_mass * n, 2):
        best: tuple[float, int, str, float] | None = None
        for j in range(x.shape[1]):
            col = x[inside, j]
            for side in ("low", "high"):
                cut = float(np.quantile(col, alpha if side == "low" else 1 - alpha))
                keep = inside & ((x[:, j] >= cut) if side == "low" else (x[:, j] <= cut))
                if keep.sum() == inside.sum() or keep.sum() < 1:
                    continue
                density = float(cases[keep].mean())
                if best is None or density > best[0]:
                    best = (density, j, side, cut)
        if best is None or best[0] <= float(cases[inside].mean()):
            break
        _, j, side, cut = best
        if side == "low":
            lo[j] = cut
            inside &= x[:, j] >= cut
        else:
            hi[j] = cut
            inside &= x[:, j] <= cut
        trajectory.append((lo.copy(), hi.copy(), inside.copy()))
    n_cases = int(cases.sum())
    chosen = trajectory[0]
    for box in trajectory:
        cov = float(cases[box[2]].sum() / n_cases)
        if cov >= min_coverage and cases[box[2]].mean() >= cases[chosen[2]].mean():
            chosen = box
    blo, bhi, binside = chosen
    full_lo, full_hi = x.min(axis=0), x.max(axis=0)
    # drop restrictions that do not earn their place: restoring a parameter's full range
    # costs no more than 0.05 of density (small samples make peels that only fit noise)
    blo, bhi = blo.copy(), bhi.copy()
    density = float(cases[binside].mean())
    for j in sorted(
        range(x.shape[1]),
        key=lambda j: (bhi[j] - blo[j]) / max(full_hi[j] - full_lo[j], 1e-12),
        reverse=True,
    ):
        if blo[j] <= full_lo[j] and bhi[j] >= full_hi[j]:
            continue
        trial_lo, trial_hi = blo.copy(), bhi.copy()
        trial_lo[j], trial_hi[j] = full_lo[j], full_hi[j]
        trial = np.all((x >= trial_lo) & (x <= trial_hi), axis=1)
        if cases[trial].mean() >= density - DROP_TOLERANCE:
            blo, bhi, binside = trial_lo, trial_hi, trial
    restricted = [
        {"path": p.path, "low": float(blo[j]), "high": float(bhi[j])}
        for j, p in enumerate(params)
        if blo[j] > full_lo[j] + 1e-12 or bhi[j] < full_hi[j] - 1e-12
    ]
    return {
        "threshold": threshold,
        "base_rate": float(cases.mean()),
        "density": float(cases[binside].mean()),
        "coverage": float(cases[binside].sum() / n_cases),
        "mass": float(binside.mean()),
        "box": restricted,
        "trajectory": len(trajectory),
    }
