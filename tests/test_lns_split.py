"""The ``split`` neighbourhood: the workloads furthest above their LP share, with the runs on
the pools of their own optima."""

from __future__ import annotations

import math
import time

import pytest

from lns_helpers import search, two_pools
from optimizer_cases import _setup
from straits.plan.alone import alone_bound
from straits.plan.lns_pick import own_pools
from straits.plan.lp_bound import MARGIN, lp_bound
from straits.plan.objectives import objective


def _shares() -> tuple[dict[str, float], dict[str, dict[str, int]]]:
    sc = two_pools()
    _, _, plan, pf = _setup(sc)
    alone = alone_bound(pf, objective("cost"))
    assert alone is not None
    shares: dict[str, float] = {}
    bound = lp_bound(pf, alone, plan_unplaced=len(plan.unplaced), shares=shares)
    assert bound is not None
    assert set(shares) == {w.id for w in sc.workloads}
    # the LP's value is its workloads' shares, less the bound's safety margin
    assert bound.value == pytest.approx(sum(shares.values()) * (1 - MARGIN), rel=1e-6)
    return shares, own_pools(pf, alone)


def test_the_split_piece_is_led_by_the_workload_furthest_above_its_lp_share() -> None:
    """The greedy plan puts one of three runs on the dear pool; the LP charges each about its
    own optimum on the cheap one, so that run's workload is furthest above its share: it
    leads the piece, with the runs booked on the cheap pool (its own optimum's)."""
    shares, pools = _shares()
    lns = search(two_pools(), shares=shares, own_pools=pools).lns
    above = {w: lns._own(w, lns.sol) - s for w, s in shares.items()}
    dear = max(above, key=lambda w: above[w])
    assert above[dear] > 0 and sorted(above.values())[-2] <= 0
    assert lns.weights["split"] > 1.0
    free = lns._pick("split")
    assert lns._led == {dear}
    cheap = pools[dear]
    assert free == {dear} | {k[0] for r in cheap for k in lns.on.get(r, {})}
    assert len(free) == 3
    before = lns.value
    lns.step(1.0, math.inf, time.monotonic)  # split is the likeliest kind: whatever is drawn,
    assert lns.value <= before  # the plan is no worse, and the kind is counted
    assert set(lns.stats.to_json()["kinds"]) >= {"split", "guided", "unplaced"}
    # the next split piece is led by the next workload above its share, else the first again
    lns._pick("split")
    assert lns._led == {dear}


def test_without_shares_no_split_piece_is_drawn() -> None:
    lns = search(two_pools()).lns
    assert lns.weights["split"] == 0.0 and lns._pick("split") == set()
