"""A stage's options as arrays: one row per pool (and per pool the tenant may buy for).

A portfolio has hundreds of pools and thousands of stages. Ranking every option of a stage on
its own cost and finish, and labelling why each one lost, is done on numpy arrays; an
:class:`~straits.plan.options.Option` object is made only for the rows the planner examines.
Estimates depend on the chip and the pool size only, so they are computed once per (chip, size)
and shared by every pool of that shape, and by every stage of the same
:class:`~straits.plan.options.FitSpec` (:func:`table_fits`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from straits.catalog import get_chip
from straits.estimate import Estimate
from straits.estimate.energy import energy
from straits.model.scenario import Scenario, Stage, Workload
from straits.plan.options import MENU_SIZES, Fit, FitSpec, Option, Resource, fit_spec, pool_steps
from straits.plan.reasons import ReasonCode
from straits.plan.transfer import weights_gb

#: a row's problem as a small integer in the table's arrays (0: none)
PROBLEMS: tuple[ReasonCode | None, ...] = (
    None,
    ReasonCode.LOCATION,
    ReasonCode.MEMORY,
    ReasonCode.CAPACITY,
)
_PROBLEM_INDEX = {p: k for k, p in enumerate(PROBLEMS)}


class Row(NamedTuple):
    """One option of a stage before it is examined: a pool, rented or bought by ``buyer``."""

    resource: Resource
    buyer: str | None


def _highest(known: np.ndarray, otherwise: float) -> float:
    """The highest known figure, ``otherwise`` when none is known (an unknown stood in for by
    0 made a scenario of chips with no power figure a plan of 0 MWh)."""
    return float(np.nanmax(known)) if (~np.isnan(known)).any() else otherwise


def _catalog_worst(kind: str) -> tuple[float, float]:
    """(kWh per chip-hour of the catalog's most power-hungry chip at the default PUE, the
    grid table's highest gCO2/kWh): what stands in where a scenario knows no figure at all."""
    from straits.catalog import catalog
    from straits.estimate.energy import DEFAULT_PUE, POWER_SHARE, grid_table

    watts = max((c.tdp_watts for c in catalog() if c.tdp_watts is not None), default=0.0)
    grams = max((g.gco2_per_kwh for g in grid_table().values()), default=0.0)
    return watts * POWER_SHARE.get(kind, 0.8) * DEFAULT_PUE / 1000.0, grams


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
    res_kwh: dict[str, np.ndarray]
    """estimate kind ('train', 'serve') -> kWh per chip-hour of each pool (NaN: chip power
    unknown)"""
    res_gco2: np.ndarray
    """grams of CO2e per kWh at each pool's site (NaN: unknown grid)"""
    res_index: dict[tuple[str, str], int] = field(default_factory=dict)
    """(site id, chip id) -> the pool's index"""
    _buyable: dict[str, list[int]] = field(default_factory=dict)
    _rates: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _rows: dict[str, tuple[list[Row], np.ndarray, np.ndarray]] = field(default_factory=dict)

    def rows_for(self, tenant: str) -> tuple[list[Row], np.ndarray, np.ndarray]:
        """The rows of any stage of ``tenant``'s (every pool, then those it may buy), each
        row's pool index and its largest chip count. Shared: callers must not mutate them."""
        hit = self._rows.get(tenant)
        if hit is None:
            extra = self.buyable(tenant)
            rows = [Row(r, None) for r in self.resources] + [
                Row(self.resources[i], tenant) for i in extra
            ]
            idx = np.concatenate([np.arange(len(self.resources)), np.array(extra, dtype=np.int64)])
            counts = np.concatenate(
                [self.res_count, np.array([self._buyable_max(i) for i in extra], dtype=np.int64)]
            )
            hit = self._rows[tenant] = (rows, idx, counts)
        return hit

    def rates(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(MWh, tCO2e) per chip-hour of each pool for an estimate ``kind``. Where a chip's
        power or a grid's intensity is unknown, the highest known figure stands in for it
        (conservative: an unknown never looks cleaner than a known one; where none is known,
        the catalog's highest, :func:`_catalog_worst`)."""
        hit = self._rates.get(kind)
        if hit is None:
            kwh = self.res_kwh[kind]
            worst_kwh, worst_g = _catalog_worst(kind)
            kwh = np.where(np.isnan(kwh), _highest(kwh, worst_kwh), kwh)
            g = self.res_gco2
            g = np.where(np.isnan(g), _highest(g, worst_g), g)
            hit = self._rates[kind] = (kwh / 1000.0, kwh * g / 1e6)
        return hit

    def energy_of(self, o: Option, est: Estimate) -> tuple[float, float]:
        """(MWh, tCO2e) of ``est`` on option ``o``, by :meth:`rates`."""
        i = self.res_index[(o.site.id, o.chip.id)]
        mwh, t = self.rates(est.kind)
        return est.chip_hours * float(mwh[i]), est.chip_hours * float(t[i])

    @classmethod
    def of(cls, sc: Scenario) -> Index:
        resources = [
            Resource(site, pool, get_chip(pool.chip), max(c for _, c in pool_steps(sc, pool)))
            for site in sc.sites
            for pool in site.pools
        ]
        site_ids = [s.id for s in sc.sites]
        site_of = {s: i for i, s in enumerate(site_ids)}
        classes: dict[tuple[str, str, bool], int] = {}
        # sites in one class look the same to the rules: every site fact the rules read
        site_class = [
            classes.setdefault((s.country, s.operator_hq, s.dpf_certified), len(classes))
            for s in sc.sites
        ]
        chip_ids = sorted({r.chip.id for r in resources})
        chip_of = {c: i for i, c in enumerate(chip_ids)}
        res_site = np.array([site_of[r.site.id] for r in resources], dtype=np.int64)
        kwh: dict[str, np.ndarray] = {}
        gco2 = np.full(len(resources), np.nan)
        for kind in ("train", "serve"):
            col = np.full(len(resources), np.nan)
            for i, r in enumerate(resources):
                e = energy(
                    r.chip,
                    1.0,
                    kind,
                    pue=r.site.pue,
                    gco2_per_kwh=r.site.grid_gco2_per_kwh,
                    country=r.site.country,
                )
                if e is not None:
                    col[i] = e.kwh
                    if e.gco2_per_kwh is not None:
                        gco2[i] = e.gco2_per_kwh
            kwh[kind] = col
        return cls(
            resources=resources,
            site_ids=site_ids,
            site_of=site_of,
            res_site=res_site,
            res_class=np.array([site_class[i] for i in res_site], dtype=np.int64),
            res_chip=np.array([chip_of[r.chip.id] for r in resources], dtype=np.int64),
            res_count=np.array([r.count for r in resources], dtype=np.int64),
            res_price=np.array([r.pool.usd_per_chip_hour for r in resources], dtype=float),
            site_country=np.array([s.country for s in sc.sites]),
            wan=np.array([s.wan_gbps for s in sc.sites], dtype=float),
            egress_rate=np.array([s.egress_usd_per_gb for s in sc.sites], dtype=float),
            chip_ids=chip_ids,
            res_kwh=kwh,
            res_gco2=gco2,
            res_index={(r.site.id, r.chip.id): i for i, r in enumerate(resources)},
        )

    def _buyable_max(self, i: int) -> int:
        """How many chips pool ``i`` sells at most (one of :meth:`buyable`'s pools)."""
        procurable = self.resources[i].pool.procurable
        assert procurable is not None
        return procurable.max

    def buyable(self, tenant: str) -> list[int]:
        """Pools whose chips ``tenant`` may buy."""
        hit = self._buyable.get(tenant)
        if hit is None:
            hit = self._buyable[tenant] = [
                i
                for i, r in enumerate(self.resources)
                if r.pool.procurable is not None and r.pool.procurable.buyer in (None, tenant)
            ]
        return hit

    def rows_of(self, tenant: str) -> int:
        """How many options a stage of ``tenant``'s has (every pool, and those it may buy)."""
        return len(self.resources) + len(self.buyable(tenant))

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
    rows: list[Row]
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
    mwh_rate: np.ndarray
    """MWh per chip-hour of each row"""
    tco2e_rate: np.ndarray
    """tCO2e per chip-hour of each row"""
    _options: dict[int, Option] = field(default_factory=dict)
    _labels: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def option(self, i: int) -> Option:
        o = self._options.get(i)
        if o is None:
            r, buyer = self.rows[i]
            f = int(self.fit_of[i])
            fit = self.fit(i) if f >= 0 else None
            o = Option(
                workload=self.workload.id,
                stage=self.stage.id,
                site=r.site,
                pool=r.pool,
                chip=r.chip,
                min_chips=fit.min_chips if fit else 0,
                sizes=fit.sizes if fit else (),
                problem=fit.problem if fit else ReasonCode.LOCATION,
                detail=fit.detail if fit else self.location_note,
                buyer=buyer,
                min_hours=fit.min_hours if fit else 0.0,
                min_chip_hours=fit.min_chip_hours if fit else 0.0,
            )
            self._options[i] = o
        return o

    def fit(self, i: int) -> Fit | None:
        """How the stage fits row ``i``'s chips (None: the stage may not run there)."""
        f = int(self.fit_of[i])
        return self.fits[f] if f >= 0 else None

    def problem_of(self, i: int) -> ReasonCode | None:
        return PROBLEMS[int(self.problem[i])]

    @property
    def location_note(self) -> str:
        return f"stage runs only in {', '.join(self.stage.locations)}"

    def options(self) -> list[Option]:
        return [self.option(i) for i in range(len(self.rows))]

    def row_of(self, label: str) -> int:
        """The row of the option people call ``label`` ('site/chip' or 'site/chip (bought)')."""
        if self._labels is None:
            self._labels = {}
            for i, (r, buyer) in enumerate(self.rows):
                base = f"{r.site.id}/{r.chip.id}"
                self._labels[f"{base} (bought)" if buyer else base] = i
        return self._labels[label]

    @property
    def fastest(self) -> float | None:
        ok = self.problem == 0
        return float(self.min_hours[ok].min()) if ok.any() else None


FitMemo = dict[FitSpec, tuple[dict[tuple[str, int], Fit], dict[tuple[str, int | None], Estimate]]]
"""a stage's :class:`FitSpec` -> its fits by (chip, pool size), and the estimates they share"""


def table_fits(
    sc: Scenario,
    ix: Index,
    w: Workload,
    stage: Stage,
    menu: int = MENU_SIZES,
    memo: FitMemo | None = None,
) -> tuple[list[Fit], np.ndarray]:
    """Estimate ``stage`` once per distinct (chip, pool size) among the pools it may use: the
    fits, and each row's fit (-1: the stage may not run there). With ``memo``, a fit another
    stage of the same :class:`FitSpec` has already computed (the same model, tokens and chip
    count on the same chip and pool size) is that stage's: half the fits of a generated
    portfolio of 1,000 workloads recur so."""
    rows, idx, counts = ix.rows_for(w.tenant)
    site = ix.res_site[idx]
    allowed = np.ones(len(rows), dtype=bool)
    if stage.locations:
        allowed = np.isin(ix.site_country[site], list(stage.locations))
    spec = FitSpec.of(sc, w, stage, menu)
    memo = {} if memo is None else memo
    known, estimates = memo.setdefault(spec, ({}, {}))
    fit_of = np.full(len(rows), -1, dtype=np.int64)
    at = np.flatnonzero(allowed)
    # one fit per distinct (chip, count), numbered in the order the rows first use them
    key = ix.res_chip[idx][at] * (int(counts.max(initial=0)) + 1) + counts[at]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    fit_of[at] = rank[inverse.reshape(-1)]
    fits = []
    for i in at[first[order]]:
        chip, count = rows[i].resource.chip, int(counts[i])
        fit = known.get((chip.id, count))
        if fit is None:
            fit = known[(chip.id, count)] = fit_spec(spec, chip, count, estimates)
        fits.append(fit)
    return fits, fit_of


def build_table(
    sc: Scenario,
    ix: Index,
    w: Workload,
    stage: Stage,
    menu: int = MENU_SIZES,
    memo: FitMemo | None = None,
) -> StageTable:
    """Every option of ``stage`` as rows (``memo``: :func:`table_fits`)."""
    rows, idx, _ = ix.rows_for(w.tenant)
    fits, fit_of = table_fits(sc, ix, w, stage, menu, memo)
    fit_problem = np.array([_PROBLEM_INDEX[f.problem] for f in fits] + [0], dtype=np.int64)
    fit_hours = np.array([f.min_hours for f in fits] + [0.0])
    fit_chip_hours = np.array([f.min_chip_hours for f in fits] + [0.0])
    problem = np.where(fit_of < 0, _PROBLEM_INDEX[ReasonCode.LOCATION], fit_problem[fit_of])
    mwh, tco2e = ix.rates("serve" if stage.kind == "serve" else "train")
    return StageTable(
        workload=w,
        stage=stage,
        rows=rows,
        fits=fits,
        fit_of=fit_of,
        problem=problem,
        site=ix.res_site[idx],
        cls=ix.res_class[idx],
        chip=ix.res_chip[idx],
        bought=np.array([r.buyer is not None for r in rows]),
        price=ix.res_price[idx],
        min_hours=fit_hours[fit_of],
        min_chip_hours=fit_chip_hours[fit_of],
        mwh_rate=mwh[idx],
        tco2e_rate=tco2e[idx],
    )


def weights_moves(
    ix: Index, w: Workload, preds: list[tuple[float, int]]
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
