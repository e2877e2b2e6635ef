"""Small portfolios for the neighbourhood search's tests, and a search from their greedy plan."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from optimizer_cases import DAY0, _setup, scenario, tokens_for
from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan.cpsat_model import Slot, build
from straits.plan.lns import NeighbourhoodSearch
from straits.plan.objectives import Objective, objective
from straits.plan.portfolio import Portfolio
from straits.plan.result import Plan
from straits.plan.retime import Held, retime
from straits.plan.schedule import StageKey
from straits.plan.solution import Solution


def with_pool(sc: Scenario, site: str, country: str, usd_per_chip_hour: float) -> Scenario:
    """``sc`` with one more site: 64 H100-SXM at ``usd_per_chip_hour``, run by a company of
    ``country``."""
    doc = sc.model_dump(mode="json", exclude_none=True)
    doc["sites"].append(
        {
            "id": site,
            "country": country,
            "operator_hq": country,
            "pools": [{"chip": "H100-SXM", "count": 64, "usd_per_chip_hour": usd_per_chip_hour}],
        }
    )
    return parse_scenario(doc)


def two_pools() -> Scenario:
    """Three five-day runs on 64 chips due on day 12 (hard); a pool of 64 chips at $2 an hour
    and one at $6: two fit the cheap pool one after the other, the third cannot."""
    base = scenario(
        workloads=3, tokens=tokens_for(5.0), deadline=DAY0 + dt.timedelta(days=12)
    ).model_dump(mode="json", exclude_none=True)
    base["workloads"] = [{**w, "deadline_policy": "hard"} for w in base["workloads"]]
    return with_pool(parse_scenario(base), "sg2", "SG", 6.0)


class Searched(NamedTuple):
    """A search from the greedy plan, retimed to the model's ticks."""

    lns: NeighbourhoodSearch
    baseline: Plan
    held: Held
    pf: Portfolio
    goal: Objective
    start: Solution


def search(
    sc: Scenario,
    *,
    seed: int = 0,
    guide: dict[StageKey, dict[str, float]] | None = None,
    shares: dict[str, float] | None = None,
    own_pools: dict[str, dict[str, int]] | None = None,
) -> Searched:
    """A :class:`NeighbourhoodSearch` under the cost objective from ``sc``'s greedy plan."""
    _, greedy, baseline, pf = _setup(sc)
    goal = objective("cost")
    horizon = build(pf, goal).horizon
    start, held = retime(pf, greedy.state, horizon)
    lns = NeighbourhoodSearch(
        pf,
        goal,
        horizon,
        start,
        seed=seed,
        held=held,
        guide=guide,
        shares=shares,
        own_pools=own_pools,
    )
    return Searched(lns, baseline, held, pf, goal, start)


def slot(pf: Portfolio, key: StageKey, site: str) -> Slot:
    """``key``'s choice at ``site``, at its release."""
    idx = next(
        i for i, c in enumerate(pf.stages[key].choices) if c.option.key.startswith(f"{site}/")
    )
    return Slot(idx, pf.stages[key].choices[idx].release)
