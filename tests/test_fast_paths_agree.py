"""The greedy plan's fast paths answer as the plain code they replace (opt31's pass).

Each shortcut taken to make the greedy plan cheaper is checked against the computation it
stands for: a timeline's segments updated per booking against the segments rebuilt from every
booking, and its earliest start against a sweep over every segment; the rules' cache keys
against the key read path by path; a memoised extension literal against a fresh parse.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Hashable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from straits.model.request import CheckRequest
from straits.plan.timeline import EPS, INF, Timeline
from straits.rules import ruleset
from straits.rules.cache_key import (
    _ATOMS,
    MISSING,
    KeyPlan,
    _extension,
    _freeze,
    _get,
    _parse_extension,
)
from straits.rules.context import build_request

# --- timelines ----------------------------------------------------------------------------------
times = st.one_of(
    st.integers(0, 60).map(float),
    st.floats(0, 60, allow_nan=False).map(lambda t: round(t, 9)),
)
bookings = st.lists(
    st.tuples(times, st.sampled_from([0.0, 1e-10, 0.5, 1.0, 7.0, 30.0]), st.integers(0, 64)),
    max_size=25,
)
profiles = st.lists(st.tuples(times, st.integers(0, 64)), max_size=4).map(
    lambda steps: sorted({0.0: 64, **dict(steps)}.items())
)


def _rebuilt(tl: Timeline) -> list[tuple[float, float, int]]:
    """The segments a timeline with the same bookings and no memory of its own makes."""
    return Timeline(tl.capacity, list(tl.steps), list(tl.bookings)).segments()


def _earliest_by_sweep(tl: Timeline, chips: int, hours: float, ready: float) -> float | None:
    """The earliest start as the sweep over every segment finds it (the code before opt31)."""
    if chips > tl._peak:
        return None
    run_start: float | None = None
    for seg_start, seg_end, free in tl.segments():
        if seg_end <= ready + EPS:
            continue
        if free >= chips:
            if run_start is None:
                run_start = max(seg_start, ready)
            if seg_end - run_start >= hours - EPS:
                return run_start
        else:
            run_start = None
    return None


@settings(max_examples=300, deadline=None)
@given(profiles, bookings, st.lists(st.tuples(st.integers(1, 64), times, times), max_size=6))
def test_segments_kept_per_booking_equal_those_rebuilt(
    steps: list[tuple[float, int]],
    booked: list[tuple[float, float, int]],
    asks: list[tuple[int, float, float]],
) -> None:
    tl = Timeline(max(n for _, n in steps), steps)
    for k, (start, length, chips) in enumerate(booked):
        if k % 3:
            tl.segments()  # a list to update (else the next read rebuilds it)
        tl.reserve(start, start + length, chips)
        assert tl.segments() == _rebuilt(tl)
        for need, hours, ready in asks:
            assert tl.earliest(need, hours, ready) == _earliest_by_sweep(tl, need, hours, ready)


def test_a_booking_the_update_cannot_take_is_rebuilt() -> None:
    """Before the first segment, reversed or endless: rebuilt from the bookings, as before."""
    for start, end in ((-1.0, 2.0), (3.0, 1.0), (2.0, INF)):
        tl = Timeline(8)
        tl.book(0.0, 1.0, 4)
        tl.segments()
        tl.reserve(start, end, 2)
        assert tl.segments() == _rebuilt(tl)


def test_booking_over_capacity_is_still_refused() -> None:
    tl = Timeline(10, [(0.0, 10), (5.0, 4)])
    tl.book(0.0, 4.0, 6)
    assert tl.earliest(6, 1.0, 0.0) == 4.0
    assert tl.earliest(6, 2.0, 0.0) is None  # 4 chips from hour 5
    with pytest.raises(ValueError, match="exceeds"):
        tl.book(4.5, 6.0, 6)
    assert tl.segments() == _rebuilt(tl)


# --- the rules' cache keys ----------------------------------------------------------------------
def _key_path_by_path(kp: KeyPlan, action: str, ctx: dict[str, Any]) -> Hashable:
    """The key as it was read before opt31: each path through ``_get``."""
    parts: list[Hashable] = [action]
    for path in kp._presence:
        parts.append(_get(ctx, path) is not MISSING)
    for path in kp._exact:
        v = _get(ctx, path)
        parts.append(v if type(v) in _ATOMS else _freeze(v))
    for path, tests in kp._plan:
        v = _get(ctx, path)
        if isinstance(v, dict) and "__extn" in v:
            v = _extension(v["__extn"]["fn"], v["__extn"]["arg"])
        elif v is MISSING or isinstance(v, tuple | dict | list):
            parts.append(_freeze(v))
            continue
        try:
            parts.append((bisect_left(tests, v), bisect_right(tests, v)))
        except TypeError:
            parts.append(_freeze(v))
    return tuple(parts)


requests = st.builds(
    lambda date, action, hq, site, chip, subjects, qty: CheckRequest(
        date=date,
        regime="enacted",
        action=action,
        tenant={"hq": hq, "authorizations": []},
        site={"country": site, "operator_hq": hq},
        chip=chip,
        quantity=qty,
        data={"origin": "CN", "classes": ["personal"], "subjects": subjects},
        weights={"training_ops": 2e26, "open": False, "from_country": "US"},
    ),
    st.dates(dt.date(2021, 6, 1), dt.date(2026, 12, 31)),
    st.sampled_from(["train", "serve", "procure", "transfer-data", "transfer-weights"]),
    st.sampled_from(["CN", "US", "DE", "SG"]),
    st.sampled_from(["CN", "SG", "US", "DE", "MY"]),
    st.sampled_from(["H100-SXM", "H20", "Ascend-910B"]),
    st.integers(0, 3_000_000),
    st.integers(1, 5000),
)


@settings(max_examples=60, deadline=None)
@given(requests)
def test_cache_keys_equal_the_keys_read_path_by_path(req: CheckRequest) -> None:
    rs = ruleset()
    ctx = build_request(req)["context"]
    for part in rs._parts:
        sub = part.context(ctx)
        assert part.key(req.action, sub) == _key_path_by_path(part.keys, req.action, sub)


def test_cache_keys_read_odd_contexts_as_before() -> None:
    """Paths through an entity reference, missing records, lists, values of another type than
    the literals, and paths of three steps."""
    kp = KeyPlan([r.est for r in ruleset().rules])
    kp._presence.append(("data", "origin", "deep"))
    kp._exact.append(("chip", "id", "deep"))
    kp._plan.append((("data", "origin", "deep"), (1, 2)))
    kp._steps = kp._compiled()
    odd: list[dict[str, Any]] = [
        {},
        {"date": "2025-01-01", "chip": [1, 2], "data": {"origin": {"__entity": None}}},
        {"date": {"__extn": {"fn": "datetime", "arg": "not a date"}}, "quantity": "many"},
        {"chip": {"__entity": {"type": "Straits::Chip", "id": "H20"}}, "data": 3},
        {"data": {"origin": {"deep": 1.5}, "classes": {"b": [1], "a": (2,)}}, "regime": None},
    ]
    for ctx in odd:
        assert kp.key("train", ctx) == _key_path_by_path(kp, "train", ctx)


@pytest.mark.parametrize(
    ("fn", "arg"),
    [
        ("datetime", "2025-06-01"),
        ("datetime", "2025-06-01T00:00:00Z"),
        ("decimal", "1.5"),
        ("datetime", "June"),
        ("decimal", "x"),
    ],
)
def test_a_memoised_extension_literal_equals_a_fresh_parse(fn: str, arg: str) -> None:
    fresh = _parse_extension.__wrapped__(fn, arg)
    assert _extension(fn, arg) == fresh
    assert _extension(fn, arg) == fresh  # from the memo
    assert _extension(fn, [arg]) is None  # not a string: no value, and nothing to hash
