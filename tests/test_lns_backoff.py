"""The back-off of ``unplaced`` rounds around a stage that several rounds in a row failed to
place (on seed 20001, 60 of 95 rounds went to one stage that was never placed)."""

from __future__ import annotations

import math
import time

import pytest

from lns_helpers import search
from optimizer_cases import first_come
from straits.plan.lns_pick import BACKOFF_AFTER


def test_an_unplaced_stage_that_keeps_failing_is_drawn_less_and_less(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """b (first_come: only Singapore fits it, a booked there first) fails every piece here
    (the solve is stubbed): after BACKOFF_AFTER ``unplaced`` rounds around it, each next one
    comes only after twice as many rounds as the last wait; a round that places it resets."""
    lns = search(first_come(), seed=3).lns
    assert lns._unplaced() == "b"
    monkeypatch.setattr(lns, "_solve", lambda *a, **k: False)
    tries: list[int] = []
    for _ in range(40):
        lns.step(1.0, math.inf, time.monotonic)
        if lns._target == "b":  # this round's piece was around b
            tries.append(lns.stats.rounds)
    assert len(tries) >= BACKOFF_AFTER + 2
    for n in range(BACKOFF_AFTER, len(tries)):  # the wait after the n-th failure
        assert tries[n] - tries[n - 1] > 2 ** (n - BACKOFF_AFTER + 1)
    assert len(tries) < 12  # half the rounds went there before the back-off
    lns._tried_unplaced("b", placed=True)
    assert lns._unplaced() == "b" and "b" not in lns._fails
