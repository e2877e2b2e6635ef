"""Who an ``unplaced`` neighbourhood frees with the stuck workload: the rivals in its way first.

On the 1,000 x 200 benchmark (seeds 20001 and 20004) the last stages the bound did not rule
out stayed unplaced while the neighbourhoods around them drew their rivals at random from every
pool of every choice (dozens of pools, most with room): the one booking in the way was rarely
among them. Here it is drawn first, whatever the seed.
"""

from __future__ import annotations

import datetime as dt

import pytest

from lns_helpers import search, slot
from optimizer_cases import DAY0, first_come, tokens_for
from straits.loading import parse_scenario
from straits.model.scenario import Scenario
from straits.plan.alone import alone_bound
from straits.plan.cpsat_model import Slot
from straits.plan.lns_pick import own_pools
from straits.plan.objectives import objective

FILLERS = 10


def crowded() -> Scenario:
    """:func:`first_come`, with b allowed in Singapore and Japan, and a Japanese pool of 640
    H100s (dearer than Singapore's 64) that ten runs of its own fill before b is planned: b is
    unplaced; its own optimum is Singapore, all of whose chips it needs, held by a."""
    doc = first_come().model_dump(mode="json", exclude_none=True)
    doc["sites"].append(
        {
            "id": "jp",
            "country": "JP",
            "operator_hq": "JP",
            "pools": [{"chip": "H100-SXM", "count": 64 * FILLERS, "usd_per_chip_hour": 2.5}],
        }
    )
    a, b = doc["workloads"]
    b["stages"][0]["locations"] = ["SG", "JP"]
    fillers = [
        {**a, "id": f"a{i}", "stages": [{**a["stages"][0], "locations": ["JP"]}]}
        for i in range(FILLERS)
    ]
    doc["workloads"] = [a, *fillers, b]
    return parse_scenario(doc)


@pytest.mark.parametrize("seed", range(4))
def test_the_booking_on_the_pool_its_own_optimum_fills_is_freed_first(seed: int) -> None:
    sc = crowded()
    found = search(sc, seed=seed)
    alone = alone_bound(found.pf, objective("cost"))
    assert alone is not None
    pools = own_pools(found.pf, alone)
    assert pools["b"] == {"sg/H100-SXM": 64}
    lns = search(sc, seed=seed, own_pools=pools).lns
    assert lns._unplaced() == "b"
    jp = {k[0] for k in lns.on["jp/H100-SXM"]}
    assert jp == {f"a{i}" for i in range(FILLERS)}  # b's other pool: its rivals too
    lns.stats.size = 2  # room for b and one rival
    assert lns._around("b") == {"b", "a"}
    lns.stats.size = 6
    free = lns._around("b")
    assert "a" in free and len(free) == 6
    before = lns.value
    assert lns._solve(lns._around("b"), 5.0, 30.0)
    assert lns.value.unplaced < before.unplaced  # a moves to Malaysia, b takes Singapore


def test_without_its_own_optimum_the_rivals_are_drawn_at_random() -> None:
    """The same piece without the alone optimum's pools: the rival is one of the eleven, not
    always a (the draw the change replaces, kept for workloads whose optimum is narrow)."""
    drawn = set()
    for seed in range(8):
        lns = search(crowded(), seed=seed).lns
        lns.stats.size = 2
        drawn |= lns._around("b") - {"b"}
    assert len(drawn) > 1


def held_back() -> Scenario:
    """a holds Singapore's 64 H100s for two days (hard, due day 2, Singapore only); ten runs
    fill Japan's 640 for three; x (hard, due day 4) pre-trains for two days and fine-tunes for
    two, in either country."""
    doc = crowded().model_dump(mode="json", exclude_none=True)
    a, *fillers, b = doc["workloads"]
    a = {**a, "deadline_policy": "hard", "stages": [{**a["stages"][0], "locations": ["SG"]}]}
    due = str(DAY0 + dt.timedelta(days=4))
    for f in fillers:
        f["deadline"] = due
        f["stages"][0]["tokens"] = tokens_for(3.0)
    sft = {"id": "sft", "kind": "finetune", "after": ["pretrain"], "tokens": tokens_for(2.0)}
    x = {**b, "id": "x", "deadline": due, "deadline_policy": "hard"}
    x["stages"] = [b["stages"][0], {**sft, "chips": 64, "locations": ["SG", "JP"]}]
    doc["workloads"] = [a, *fillers, x]
    return parse_scenario(doc)


@pytest.mark.parametrize("seed", range(4))
def test_a_stage_left_no_time_frees_the_booking_before_its_predecessor_first(seed: int) -> None:
    """x's pre-training booked in Singapore after a (the greedy plan itself leaves both of
    x's stages out): its fine-tuning cannot end by the deadline after it, so a, booked before
    it there, is its first rival, not one of the ten in Japan."""
    lns = search(held_back(), seed=seed).lns
    key = ("x", "pretrain")
    pre = Slot(slot(lns.pf, key, "sg").choice, lns.on["sg/H100-SXM"][("a", "pretrain")][1])
    lns.sol[key] = pre
    lns._index({key: pre})
    assert lns.sol[("x", "sft")].choice is None
    assert lns._held_back("x")
    lns.stats.size = 3  # x's two stages and one rival
    assert lns._around("x") == {"x", "a"}
    lns.sol[key] = Slot(None, 0)  # with nothing placed there is nothing before it
    lns._index({key: Slot(None, 0)})
    assert not lns._held_back("x")


@pytest.mark.parametrize("seed", range(4))
def test_a_stage_over_budget_frees_the_booking_on_the_cheaper_pool_first(seed: int) -> None:
    """x's pre-training booked in Japan leaves less of its budget than its fine-tuning costs
    anywhere, in Singapore it would leave enough: a, which holds Singapore's 64 chips, is its
    first rival, not one of the ten booked in Japan (whose 640 chips x needs a tenth of)."""
    sc = held_back()
    pre, sft = ("x", "pretrain"), ("x", "sft")
    probe = search(sc).lns
    costs = {}
    for site in ("sg", "jp"):
        idx = slot(probe.pf, pre, site).choice
        assert idx is not None
        costs[site] = probe.pf.stages[pre].choices[idx].cost
    need = min(c.cost for c in probe.pf.stages[sft].choices)
    doc = sc.model_dump(mode="json", exclude_none=True)
    doc["workloads"][-1]["budget_usd"] = (costs["sg"] + costs["jp"]) / 2 + need
    lns = search(parse_scenario(doc), seed=seed).lns
    placed = {pre: slot(lns.pf, pre, "jp"), sft: Slot(None, 0)}
    lns.sol.update(placed)
    lns._index(placed)
    assert not lns._held_back("x")
    assert lns._affordable("x") == {"sg/H100-SXM"}
    lns.stats.size = 3
    assert lns._around("x") == {"x", "a"}
    doc["workloads"][-1]["budget_usd"] = costs["jp"] + need  # enough where it is
    lns = search(parse_scenario(doc), seed=seed).lns
    lns.sol.update(placed)
    lns._index(placed)
    assert lns._affordable("x") == set()
