"""The ``guided`` neighbourhood: the LP bound's answer says which large pools to re-pack."""

from __future__ import annotations

from lns_helpers import search, two_pools
from optimizer_cases import _setup, assert_sound
from straits.model.scenario import Scenario
from straits.plan.alone import alone_bound
from straits.plan.lns import NeighbourhoodSearch
from straits.plan.lp_bound import lp_bound
from straits.plan.objectives import objective
from straits.plan.result import Plan
from straits.plan.retime import Held
from straits.plan.schedule import StageKey
from straits.plan.solution import evaluate, extract

Guide = dict[StageKey, dict[str, float]]


def _search(sc: Scenario, guide: Guide | None) -> tuple[NeighbourhoodSearch, Plan, Held]:
    lns, baseline, held, *_ = search(sc, guide=guide)
    return lns, baseline, held


def test_the_guided_piece_frees_the_costly_run_and_the_runs_on_the_lps_pool() -> None:
    """The run the greedy plan put on the dear pool, which the LP puts on the cheap one: the
    piece frees it with every run as wide booked on either pool, and solving it keeps the
    plan's value or better and a sound plan."""
    sc = two_pools()
    lns, baseline, held = _search(sc, None)
    dear = [k for k, (i, _) in lns.sol.items() if i is not None and lns.regret(k) > 0]
    assert len(dear) == 1 and lns.weights["guided"] == 0.0
    assert lns._pick("guided") == set()  # no answer, no piece
    cheap = next(r for r, b in lns.on.items() if dear[0] not in b)
    lns, baseline, held = _search(sc, {dear[0]: {cheap: 0.9}})
    assert lns.weights["guided"] > max(w for k, w in lns.weights.items() if k != "guided")
    free = lns._pick("guided")
    assert free == {w.id for w in sc.workloads}
    before = lns.value
    lns._solve(free, 1.0, 10.0)
    assert lns.value <= before
    assert evaluate(lns.pf, lns.objective, lns.sol, held=held) == lns.value
    plan = extract(lns.pf, lns.sol, baseline, lns.objective, "feasible", "lns", held)
    assert plan is not None
    assert_sound(sc, plan)


def test_the_lp_bound_fills_the_guide_with_each_stages_shares() -> None:
    """Every stage the LP prices gets its pools' shares, together at most the whole stage."""
    sc = two_pools()
    _, _, plan, pf = _setup(sc)
    alone = alone_bound(pf, objective("cost"))
    assert alone is not None
    guide: Guide = {}
    assert lp_bound(pf, alone, plan_unplaced=len(plan.unplaced), guide=guide) is not None
    assert set(guide) == set(pf.stages)
    assert all(0 < sum(on.values()) <= 1 + 1e-6 for on in guide.values())


def test_the_guided_piece_frees_narrow_runs_that_block_the_lps_pool_before_the_deadline() -> None:
    """A run as wide as its pool cannot start there while any other run does: the piece frees
    the runs of any width booked on the LP's pool before the costly run's deadline (on the
    1,000 x 200 benchmark, 512-chip runs of two years held an 8,192-chip pool the LP wanted
    for three runs), and not the ones booked there after it."""
    sc = two_pools()
    lns, _, _ = _search(sc, None)
    dear = next(k for k, (i, _) in lns.sol.items() if i is not None and lns.regret(k) > 0)
    cheap = next(r for r, b in lns.on.items() if dear not in b)
    lns, _, _ = _search(sc, {dear: {cheap: 0.9}})
    due = lns._due(dear)
    early, late = ("w-early", "pretrain"), ("w-late", "pretrain")
    for key, start in ((early, due - 10), (late, due + 10)):
        lns.on[cheap][key] = (start, start + 100, 1)  # one chip: far narrower than the pool
        lns.stages_of[key[0]] = [key]
    free = lns._pick("guided")
    assert dear[0] in free
    assert "w-early" in free
    assert "w-late" not in free
