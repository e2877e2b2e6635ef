"""Turning one month's arrays into a :class:`MonthRecord` (and, on request, usage records)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from straits.market.params import KINDS
from straits.market.result import MonthRecord, Usage

if TYPE_CHECKING:
    from straits.market.simulation import Setup


def record(
    s: Setup,
    month: str,
    t: int,
    hours: float,
    demand: np.ndarray,
    used_own: np.ndarray,
    rent_ch: np.ndarray,
    pool_used: np.ndarray,
    pool_cap: np.ndarray,
    pool_chips: np.ndarray,
    price: np.ndarray,
    unmet: np.ndarray,
    off_work: np.ndarray,
    a_off: np.ndarray,
    a_off_nodata: np.ndarray,
    bought: dict[str, float],
    asked: np.ndarray,
    delivered: dict[str, float],
    cancelled: dict[str, float],
) -> MonthRecord:
    m, f = s.m, s.firms
    pools = m.supply.pools
    countries = list(m.supply.countries)
    home_types = np.array([t_.hq == m.home for t_ in f.types])
    home = f.home
    # rentals by home-headquartered and other firms, per pool
    rent_home = rent_ch[home_types].sum(axis=(0, 1))
    rent_other = rent_ch[~home_types].sum(axis=(0, 1))
    work_home_pool = (rent_ch[home_types] * s.eff_pool[None, :, :]).sum(axis=(0, 1))

    def by_country(values: np.ndarray) -> dict[str, float]:
        out = dict.fromkeys(countries, 0.0)
        for p, pool in enumerate(pools):
            out[pool.country] += float(values[p])
        return out

    used_c = by_country(pool_used)
    cap_c = by_country(pool_cap)
    price_c: dict[str, float | None] = {}
    for c in countries:
        idx = [p for p, pool in enumerate(pools) if pool.country == c]
        w = pool_used[idx] if pool_used[idx].sum() > 0 else pool_cap[idx]
        # a country with nothing to rent this month has no price (`ai_rental_share=0` printed
        # SG at $13.51 an hour, the index price of chips nobody offered)
        price_c[c] = float(np.average(price[idx], weights=w)) if w.sum() > 0 else None
    mw = rent_home / hours * s.mw_chip_pool
    own_home = used_own[home]
    eff_used = (own_home * s.eff[None, :, :]).sum(axis=(0, 1))
    # what data residency keeps at home: home use of kinds whose offshore use the data rules
    # (and only they) forbid, by the share of access the data facts take away
    blocked = np.zeros((len(f.types), len(KINDS)))
    for ti in range(len(f.types)):
        for k in range(len(KINDS)):
            free = a_off_nodata[ti, k].max()
            if free > 0:
                blocked[ti, k] = 1.0 - a_off[ti, k].max() / free
    resid = float((used_own.sum(axis=2) * blocked[f.type_of]).sum())
    return MonthRecord(
        month=month,
        offshore_chip_hours=by_country(rent_home),
        offshore_demand_chip_hours=by_country(asked[home_types].sum(axis=0)),
        home_chip_hours=float(own_home.sum(axis=(0, 1))[~s.domestic].sum()),
        domestic_accelerator_chip_hours=float(own_home.sum(axis=(0, 1))[s.domestic].sum()),
        price_usd_per_chip_hour=price_c,
        utilisation={c: used_c[c] / cap_c[c] if cap_c[c] > 0 else 0.0 for c in countries},
        offshore_mw=by_country(mw),
        offshore_h100e_hours=by_country(work_home_pool),
        foreign_chip_hours=by_country(rent_other),
        capacity_chip_hours=cap_c,
        capacity_mw=by_country(pool_chips * s.mw_chip_pool),
        demand_h100e_hours=float(demand[home].sum()),
        home_h100e_hours=float(eff_used[~s.domestic].sum()),
        domestic_h100e_hours=float(eff_used[s.domestic].sum()),
        offshore_total_h100e_hours=float(off_work[home].sum()),
        unmet_h100e_hours=float(unmet[home].sum()),
        foreign_demand_h100e_hours=float(demand[~home].sum()),
        foreign_unmet_h100e_hours=float(unmet[~home].sum()),
        residency_home_chip_hours=resid,
        chips_ordered=bought,
        chips_delivered=delivered,
        chips_cancelled=cancelled,
    )


def trace_usage(
    s: Setup,
    month: str,
    used_own: np.ndarray,
    rent_ch: np.ndarray,
    a_home: np.ndarray,
    a_off: np.ndarray,
) -> None:
    """Append what each firm type did with each option this month to ``s.usage``."""
    m, f = s.m, s.firms
    for ti, ft in enumerate(f.types):
        idx = f.type_of == ti
        for k, kind in enumerate(KINDS):
            for c, chip in enumerate(s.own_chips):
                ch = float(used_own[idx, k, c].sum())
                if ch > 0 or a_home[ti, k, c] > 0:
                    s.usage.append(
                        Usage(
                            month,
                            ft.id,
                            kind,
                            "own",
                            m.home,
                            ft.hq,
                            chip,
                            ch,
                            float(a_home[ti, k, c]),
                        )
                    )
            for p, pool in enumerate(m.supply.pools):
                ch = float(rent_ch[ti, k, p])
                s.usage.append(
                    Usage(
                        month,
                        ft.id,
                        kind,
                        "rent",
                        pool.country,
                        pool.operator_hq,
                        pool.chip,
                        ch,
                        float(a_off[ti, k, p]),
                    )
                )
