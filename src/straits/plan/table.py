"""A stage's options as arrays: one row per pool (and per pool the tenant may buy for).

A portfolio has hundreds of pools and thousands of stages. Ranking every option of a stage on
its own cost and finish, and labelling why each one lost, is done on numpy arrays; an
:class:`~straits.plan.options.Option` object is made only for the rows the planner examines.
Estimates depend on the chip and the pool size only, so they are computed once per (chip, size)
and shared by every pool of that shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from straits.catalog import get_chip
from straits.estimate import Estimate
from straits.model.scenario import Scenario, Stage, Workload
from straits.plan.options import MENU_SIZES, Fit, Option, Resource, fit_stage, pool_steps
from straits.plan.transfer import weights_gb

PROBLEMS = ("", "location", "memory", "capacity")


@dataclass
class Index:
    """The scenario's pools and sites as arrays."""

    resources: list[Resource]
    site_ids: list[str]
    site_of: dict[str, int]
    res_site: np.ndarray
    res_class: np.ndarray
    res_chip: np.ndarray
    res_count: np.ndarray
    res_price: np.ndarray
    site_country: np.ndarray
    wan: np.ndarray
    egress_rate: np.ndarray
    chip_ids: list[str]

    @classmethod
    def of(cls, sc: Scenario) -> Index:
        resources = [Resource(site, pool, get_chip(pool.chip),
                              max(c for _, c in pool_steps(sc, pool)))
                     for site in sc.sites for pool in site.pools]
        site_ids = [s.id for s in sc.sites]
        site_of = {s: i for i, s in enumerate(site_ids)}
        classes: dict[tuple[str, str, bool], int] = {}
        # sites in one class look the same to the rules: every site fact the rules read
        site_class = [classes.setdefault((s.country, s.operator_hq, s.dpf_certified),
                                         len(classes))
                      for s in sc.sites]
        chip_ids = sorted({r.chip.id for r in resources})
        chip_of = {c: i for i, c in enumerate(chip_ids)}
        res_site = np.array([site_of[r.site.id] for r in resources], dtype=np.int64)
        return cls(
            resources=resources, site_ids=site_ids, site_of=site_of, res_site=res_site,
            res_class=np.array([site_class[i] for i in res_site], dtype=np.int64),
            res_chip=np.array([chip_of[r.chip.id] for r in resources], dtype=np.int64),
            res_count=np.array([r.count for r in resources], dtype=np.int64),
            res_price=np.array([r.pool.usd_per_chip_hour for r in resources], dtype=float),
            site_country=np.array([s.country for s in sc.sites]),
            wan=np.array([s.wan_gbps for s in sc.sites], dtype=float),
            egress_rate=np.array([s.egress_usd_per_gb for s in sc.sites], dtype=float),
            chip_ids=chip_ids,
        )

    def transfer_hours_from(self, src: int, size_gb: float) -> np.ndarray:
        """Hours to move ``size_gb`` from site ``src`` to every site (0 to itself)."""
        out: np.ndarray = size_gb * 8.0 / np.minimum(self.wan[src], self.wan) / 3600.0
        out[src] = 0.0
        return out

    def egress_from(self, src: int, size_gb: float) -> np.ndarray:
        out = np.full(len(self.site_ids), size_gb * self.egress_rate[src])
        out[src] = 0.0
        return out


@dataclass
class StageTable:
    """Every option of one stage, as rows."""

    workload: Workload
    stage: Stage
    rows: list[tuple[Resource, str | None]]
    fits: list[Fit]
    fit_of: np.ndarray
    problem: np.ndarray
    site: np.ndarray
    cls: np.ndarray
    chip: np.ndarray
    bought: np.ndarray
    price: np.ndarray
    min_hours: np.ndarray
    min_chip_hours: np.ndarray
    _options: dict[int, Option] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def option(self, i: int) -> Option:
        o = self._options.get(i)
        if o is None:
            r, buyer = self.rows[i]
            f = self.fit_of[i]
            problem, detail, need, sizes, hours, chip_hours = (
                ("location", f"stage runs only in {', '.join(self.stage.locations)}", 0, (),
                 0.0, 0.0) if f < 0 else self.fits[f])
            o = Option(workload=self.workload.id, stage=self.stage.id, site=r.site,
                       pool=r.pool, chip=r.chip, min_chips=need, sizes=sizes, problem=problem,
                       detail=detail, buyer=buyer, min_hours=hours, min_chip_hours=chip_hours)
            self._options[i] = o
        return o

    def options(self) -> list[Option]:
        return [self.option(i) for i in range(len(self.rows))]

    def row_of(self, label: str) -> int:
        for i, (r, buyer) in enumerate(self.rows):
            base = f"{r.site.id}/{r.chip.id}"
            if (f"{base} (bought)" if buyer else base) == label:
                return i
        raise KeyError(label)

    @property
    def fastest(self) -> float | None:
        ok = self.problem == 0
        return float(self.min_hours[ok].min()) if ok.any() else None


def build_table(sc: Scenario, ix: Index, w: Workload, stage: Stage,
                menu: int = MENU_SIZES) -> StageTable:
    rows: list[tuple[Resource, str | None]] = [(r, None) for r in ix.resources]
    extra = [i for i, r in enumerate(ix.resources)
             if r.pool.procurable is not None and r.pool.procurable.buyer in (None, w.tenant)]
    rows += [(ix.resources[i], w.tenant) for i in extra]
    base = np.arange(len(ix.resources))
    idx = np.concatenate([base, np.array(extra, dtype=np.int64)])
    counts = np.concatenate([ix.res_count, np.array(
        [ix.resources[i].pool.procurable.max for i in extra  # type: ignore[union-attr]
         ], dtype=np.int64)])
    site = ix.res_site[idx]
    allowed = np.ones(len(rows), dtype=bool)
    if stage.locations:
        allowed = np.isin(ix.site_country[site], list(stage.locations))
    fits: list[Fit] = []
    fit_index: dict[tuple[int, int], int] = {}
    estimates: dict[tuple[str, int | None], Estimate] = {}
    fit_of = np.full(len(rows), -1, dtype=np.int64)
    chip = ix.res_chip[idx]
    for i in range(len(rows)):
        if not allowed[i]:
            continue
        key = (int(chip[i]), int(counts[i]))
        f = fit_index.get(key)
        if f is None:
            f = fit_index[key] = len(fits)
            fits.append(fit_stage(sc, w, stage, rows[i][0].chip, int(counts[i]), estimates,
                                  menu))
        fit_of[i] = f
    codes = {p: k for k, p in enumerate(PROBLEMS)}
    fit_problem = np.array([codes[f[0] or ""] for f in fits] + [0], dtype=np.int64)
    fit_hours = np.array([f[4] for f in fits] + [0.0])
    fit_chip_hours = np.array([f[5] for f in fits] + [0.0])
    problem = np.where(fit_of < 0, codes["location"], fit_problem[fit_of])
    return StageTable(
        workload=w, stage=stage, rows=rows, fits=fits, fit_of=fit_of, problem=problem,
        site=site, cls=ix.res_class[idx], chip=chip,
        bought=np.array([b is not None for _, b in rows]), price=ix.res_price[idx],
        min_hours=fit_hours[fit_of], min_chip_hours=fit_chip_hours[fit_of])


def weights_moves(ix: Index, w: Workload, preds: list[tuple[float, int]]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ready hours, egress USD, longest transfer hours) per site for the weights of
    predecessors that end at (end hour, site index)."""
    n = len(ix.site_ids)
    ready, egress, longest = np.zeros(n), np.zeros(n), np.zeros(n)
    size = weights_gb(w.model)
    for end, src in preds:
        hours = ix.transfer_hours_from(src, size)
        ready = np.maximum(ready, end + hours)
        longest = np.maximum(longest, hours)
        egress += ix.egress_from(src, size)
    return ready, egress, longest
