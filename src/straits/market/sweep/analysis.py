"""Which parameters drive an outcome: Spearman rank correlation, and PRIM scenario discovery.

PRIM (Friedman & Fisher 1999, the method of the EMA Workbench's ``prim``): start from the box
of all runs; repeatedly peel off the ``alpha`` share of runs at the low or high end of one
parameter, whichever peel leaves the highest share of "cases" (runs whose outcome exceeds the
threshold), until fewer than ``min_mass`` of the runs remain. Of that trajectory the box
reported is the densest one still covering at least half of the cases. Written here (about 50
lines) rather than taken from the EMA Workbench, which would bring matplotlib, seaborn,
scikit-learn and statsmodels into the CLI.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from straits.market.loading import RangeParam


def spearman(params: list[RangeParam], x: np.ndarray, y: np.ndarray) -> list[dict[str, Any]]:
    from scipy.stats import rankdata

    ok = np.isfinite(y)
    out = []
    ry = rankdata(y[ok])
    for i, p in enumerate(params):
        rx = rankdata(x[ok, i])
        rho = float(np.corrcoef(rx, ry)[0, 1]) if ok.sum() > 2 and rx.std() > 0 \
            and ry.std() > 0 else 0.0
        out.append({**p.to_json(), "rho": 0.0 if math.isnan(rho) else rho})
    out.sort(key=lambda d: (-abs(d["rho"]), d["path"]))
    return out


def prim(params: list[RangeParam], x: np.ndarray, y: np.ndarray, threshold: float,
         alpha: float = 0.05, min_mass: float = 0.05, min_coverage: float = 0.5
         ) -> dict[str, Any] | None:
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    n = y.size
    cases = y > threshold
    if n < 5 or not cases.any():
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
    restricted = [{"path": p.path, "low": float(blo[j]), "high": float(bhi[j])}
                  for j, p in enumerate(params)
                  if blo[j] > full_lo[j] + 1e-12 or bhi[j] < full_hi[j] - 1e-12]
    return {"threshold": threshold, "base_rate": float(cases.mean()),
            "density": float(cases[binside].mean()),
            "coverage": float(cases[binside].sum() / n_cases),
            "mass": float(binside.mean()), "box": restricted,
            "trajectory": len(trajectory)}
