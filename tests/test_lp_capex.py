"""The LP bound counts bought chips' capex: a plan that runs on bought chips buys at least as
many as its widest run there, at each chip's amortized share (:func:`lp_bound._capex_rows`)."""

from __future__ import annotations

import math

import numpy as np

from optimizer_cases import _setup, scenario
from straits.plan.alone import alone_bound
from straits.plan.lp_bound import _Choice, _undominated, lp_bound
from straits.plan.lp_rows import Use
from straits.plan.objectives import objective
from straits.plan.options import capex_share


def test_a_plan_on_bought_chips_pays_at_least_their_capex_in_the_lp_bound() -> None:
    """One pool of chips that can only be bought: the workload alone (no capex) is below the
    plan by the chips' price; the LP is above it by at least the fewest chips any choice takes,
    at each chip's share, and still no higher than the plan."""
    pool = {
        "chip": "H100-SXM",
        "count": 0,
        "usd_per_chip_hour": 2.0,
        "procurable": {"max": 64, "usd_per_chip": 30000, "lead_days": 3},
    }
    sc = scenario(pool=pool)
    cand, _, plan, pf = _setup(sc, "cost")
    assert plan.assignments and all(a.bought for a in plan.assignments)
    value = objective("cost").plan_value(plan, sc, cand.energy_of)
    alone = alone_bound(pf, objective("cost"))
    assert alone is not None
    lp = lp_bound(pf, alone, plan_unplaced=len(plan.unplaced))
    assert lp is not None
    o = next(c.option for st in pf.stages.values() for c in st.choices)
    assert o.pool.procurable is not None
    # a chip's amortized price, in whole dollars (the model's units round it)
    per_chip = math.floor(o.pool.procurable.usd_per_chip * capex_share(sc, o.pool))
    fewest = min(c.est.chips for st in pf.stages.values() for c in st.choices)
    assert lp.unplaced == alone.bound.unplaced == len(plan.unplaced) == 0
    assert lp.value >= (alone.bound.value + fewest * per_chip) * (1 - 1e-5)
    assert lp.value <= value + 1e-6


def _choice(res: str, value: float) -> _Choice:
    return _Choice(res, Use(None, 0, 8, 0.0, 10.0, 100.0), value, 0.0, 0.0)


def test_a_choice_on_bought_chips_dominates_none_but_can_be_dominated() -> None:
    """Its value leaves out the chips' price, so a cheaper choice on bought chips does not
    drop a rented one; a rented one no dearer drops it."""
    rented = _choice("sg/H100", 10.0)
    bought_cheap = _choice("sg/H100+bought", 5.0)
    bought_dear = _choice("sg/H100+bought", 12.0)
    none: dict[str, np.ndarray] = {}
    kept = _undominated([bought_cheap, rented], none, frozenset({"sg/H100+bought"}))
    assert sorted(kept) == sorted([rented, bought_cheap])
    kept = _undominated([bought_dear, rented], none, frozenset({"sg/H100+bought"}))
    assert kept == [rented]
    # without the bought pools named, the cheap one drops the rented one (as before)
    assert _undominated([bought_cheap, rented], none) == [bought_cheap]
