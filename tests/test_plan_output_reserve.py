"""The plan document's share of the time limit grows with the scenario it carries.

A plan document holds its scenario (``inputs``), and writing it cannot stop: a scenario of
80,000 datasets and 100 workloads took 7 s to write after a 25 s `--time-limit` whose planner
had kept back 0.25 s for output (a share per stage only). The planner now keeps back a share
per entry of the scenario too (``deadline.document_s``). Clocks are fakes."""

from __future__ import annotations

from typing import Any

from straits.loading import parse_scenario
from straits.plan import make_plan
from straits.plan.deadline import Deadline
from straits.plan.reasons import ReasonCode
from straits.simulate.generate import generate_dict


class Still:
    """A clock that never moves: only the reserves decide."""

    def __call__(self) -> float:
        return 100.0


def _padded(datasets: int) -> dict[str, Any]:
    doc = generate_dict(workloads=3, sites=4, seed=1)
    home = doc["sites"][0]["id"]
    doc["datasets"] += [
        {
            "id": f"pad{i}",
            "tokens": 1e6,
            "size_gb": 1,
            "located_at": home,
            "origin": doc["sites"][0]["country"],
            "classes": ["public"],
        }
        for i in range(datasets)
    ]
    return doc


def test_the_document_share_counts_every_entry() -> None:
    from straits.plan.deadline import DOCUMENT_ENTRY_S, document_s

    doc = _padded(10)
    doc["sites"][0]["pools"][0]["availability"] = [
        {"start": "2025-07-01", "end": "2025-08-01", "count": 1},
        {"start": "2025-09-01", "end": "2025-10-01", "count": 2},
    ]
    sc = parse_scenario(doc)
    pools = sum(len(s.pools) for s in sc.sites)
    entries = len(sc.sites) + pools + 2 + len(sc.datasets) + len(sc.tenants) + len(sc.workloads)
    assert document_s(sc) == DOCUMENT_ENTRY_S * entries


def test_a_plan_keeps_back_the_time_to_write_its_scenario() -> None:
    """3 s for a scenario of 30,000 datasets: writing its document needs more than that, so
    the greedy plan stops before its first stage (code ``time-limit``) instead of leaving the
    output to run past the limit; a small scenario plans within the same 3 s."""
    big = parse_scenario(_padded(30_000))
    plan = make_plan(big, solver="greedy", deadline=Deadline(3.0, clock=Still()))
    assert not plan.assignments
    assert all(d.lost_codes.get(ReasonCode.TIME_LIMIT.value) for d in plan.unplaced)
    small = parse_scenario(_padded(0))
    plan = make_plan(small, solver="greedy", deadline=Deadline(3.0, clock=Still()))
    assert plan.assignments
