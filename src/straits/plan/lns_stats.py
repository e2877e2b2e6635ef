"""What the neighbourhood search (:mod:`straits.plan.lns`) did, per kind of neighbourhood, as
the plan's ``search.neighbourhoods`` reports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: the kinds of neighbourhood (a new one goes last: a kind of weight 0 there leaves the draws
#: among the others as they were)
KINDS = ("unplaced", "regret", "window", "slice", "guided", "split")
#: stages per neighbourhood at the start
START_SIZE = 24


@dataclass
class KindStats:
    rounds: int = 0
    improved: int = 0


@dataclass
class LnsStats:
    rounds: int = 0
    improved: int = 0
    adopted: int = 0
    """solutions taken over from the whole-portfolio search"""
    no_solution: int = 0
    """pieces for which CP-SAT found nothing in time"""
    settled: int = 0
    """solves that improved the plan while settling a piece that placed a stage"""
    by_kind: dict[str, KindStats] = field(default_factory=lambda: {k: KindStats() for k in KINDS})
    size: int = START_SIZE

    def to_json(self) -> dict[str, Any]:
        return {
            "rounds": self.rounds,
            "improved": self.improved,
            "adopted": self.adopted,
            "no_solution": self.no_solution,
            "settled": self.settled,
            "size": self.size,
            "kinds": {
                k: {"rounds": v.rounds, "improved": v.improved} for k, v in self.by_kind.items()
            },
        }
