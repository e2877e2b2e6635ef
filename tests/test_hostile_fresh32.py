"""A fresh-eye attack on opt31, mig31 and web31 (fresh32; not the older pass atk32).

* The timeline's earliest start against a reference written here from scratch: bookings as a
  list of intervals, the free chips at an instant summed from them, every candidate start
  scanned (zero-length bookings, bookings at one instant, a pool exactly full, bookings out of
  order, fractional and huge hours).
* A document on standard output that the file system cuts short (``ulimit -f``, a full disk)
  under ``PYTHONUNBUFFERED=1``: exit 0 with a truncated file before.
* A pool of thousands of stages: the lanes of the 40 drawn were found by laying every stage
  of the pool on a lane of its own first.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import straits.report.lanes as lanes_module
from straits.loading import load_scenario
from straits.model.request import CheckRequest
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.plan.timeline import EPS, Timeline
from straits.report.figures import POOL_TASKS, plan_figures
from straits.report.short_stages import axis_seconds, occupied_until
from straits.report.usage import PoolView
from straits.report.view import build_view
from straits.rules import RuleSet


# --- opt31: the timeline against intervals ------------------------------------------------------
def _free_at(
    steps: list[tuple[float, int]], booked: list[tuple[float, float, int]], t: float
) -> int:
    cap = [c for s, c in steps if s <= t][-1]
    return cap - sum(n for s, e, n in booked if s <= t < e)


def _earliest_by_scan(
    steps: list[tuple[float, int]],
    booked: list[tuple[float, float, int]],
    chips: int,
    hours: float,
    ready: float,
) -> float | None:
    """The first start >= ready at which ``chips`` are free at every instant of [start,
    start + hours): a start is ``ready`` or where chips come free (a booking's end, a
    capacity step), and the free chips only change where a booking or a step begins or ends
    (one within :data:`EPS` of the end is past it, as the timeline reads it)."""
    if chips > max(c for _, c in steps):
        return None
    changes = {s for s, _ in steps} | {x for s, e, _ in booked for x in (s, e)}
    for start in sorted({ready} | {c for c in changes if c > ready}):
        # the timeline's tolerance: a change within EPS of the end is past it (1/3 h ticks)
        inside = {start} | {c for c in changes if start < c < start + hours - EPS}
        if all(_free_at(steps, booked, t) >= chips for t in inside):
            return start
    return None


@settings(max_examples=int(os.environ.get("ATK32_EXAMPLES", "400")), deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 16)), max_size=3),
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 10), st.integers(0, 16)), max_size=12),
    st.integers(1, 17),
    st.integers(0, 12),
    st.integers(0, 40),
    st.sampled_from([1.0, 0.25, 1 / 3, 1e9]),
    st.booleans(),
)
def test_the_earliest_start_is_the_one_a_scan_of_the_intervals_finds(
    profile: list[tuple[int, int]],
    asks: list[tuple[int, int, int]],
    chips: int,
    hours: int,
    ready: int,
    tick: float,
    in_order: bool,
) -> None:
    """Held: the same start as the scan on every generated pool (ticks of 1/3 h and 1e9 h,
    zero-length and zero-chip bookings, a pool booked exactly full, bookings out of order)."""
    steps = [(s * tick, c) for s, c in sorted({0: 16, **dict(profile)}.items())]
    tl = Timeline(16, list(steps))
    booked: list[tuple[float, float, int]] = []
    for s, length, n in asks if in_order else sorted(asks, reverse=True):
        start, end = s * tick, (s + length) * tick
        if n and end > start and tl.earliest(n, end - start, start) != start:
            continue  # the pool has not the chips then: not booked
        try:
            tl.book(start, end, n)
        except ValueError:  # an instant on a pool of no chips: refused, not booked
            continue
        booked.append((start, end, n))
        tl.segments()  # a list for the next booking to update
    want = _earliest_by_scan(steps, booked, chips, hours * tick, ready * tick)
    assert tl.earliest(chips, hours * tick, ready * tick) == want


@pytest.mark.parametrize("seed", [7, 8])
def test_cached_decisions_on_each_side_of_every_literal_equal_raw_cedar(
    rules: RuleSet, seed: int
) -> None:
    """Held: the cache keys place a value by where it falls among the literals it is compared
    with; dates the day before, on and after every date literal of the shipped rules (with
    subjects from 999 to 1,001 and more, training compute from 9.99e25 to 1.0000001e26) are
    answered from the cache, in two orders, as Cedar answers each of them alone."""
    literals: set[Any] = set()
    for part in rules._parts:
        for path, tests in part.keys._plan:
            if path == ("date",):
                literals.update(tests)
    days = sorted(
        {
            d + dt.timedelta(days=k)
            for d in literals
            for k in (-1, 0, 1)
            if dt.date(2000, 1, 2) <= d <= dt.date(2100, 12, 30)
        }
    )
    assert len(days) > 30
    rnd = random.Random(seed)
    reqs = [
        CheckRequest(
            date=d,
            regime=rnd.choice(["enacted", "ai-diffusion"]),
            action=rnd.choice(["train", "finetune", "serve", "procure", "transfer-data"]),
            tenant={"hq": rnd.choice(["CN", "SG", "US", "MO"]), "authorizations": []},
            site={
                "country": rnd.choice(["CN", "SG", "MY", "US", "DE", "JP", "KR", "HK"]),
                "operator_hq": rnd.choice(["CN", "SG", "US"]),
            },
            chip=rnd.choice(["H100-SXM", "H20", "A800-SXM", "B200", "Ascend-910B"]),
            quantity=rnd.choice([1, 8, 1000]),
            data={
                "origin": rnd.choice(["CN", "DE", "US"]),
                "classes": rnd.choice([["personal"], ["important"], ["public"]]),
                "subjects": rnd.choice([1, 999, 1000, 1001, 100_000, 1_000_000]),
            },
            weights={
                "training_ops": rnd.choice([9.99e25, 1e26, 1.0000001e26]),
                "open": rnd.choice([False, True]),
                "from_country": "US",
            },
        )
        for d in days
        for _ in range(6)
    ]
    rnd.shuffle(reqs)
    rules.clear_cache()
    cached = [d.to_json() for d in rules.check_many(reqs)]
    rules.clear_cache()
    backwards = [d.to_json() for d in rules.check_many(reqs[::-1])][::-1]
    raw = [d.to_json() for d in rules.check_many(reqs, use_cache=False)]
    assert cached == raw
    assert backwards == raw


# --- mig31: a document on standard output cut short ---------------------------------------------
def _at_most(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _chips(args: list[str], out: Path, env: dict[str, str], limit: int | None) -> Any:
    with out.open("wb") as f:
        return subprocess.run(
            [sys.executable, "-m", "straits", *args],
            stdout=f,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=None if limit is None else lambda: _at_most(limit),
            timeout=300,
        )


@pytest.mark.parametrize("args", [["chips", "--json"], ["chips"]], ids=["document", "table"])
@pytest.mark.parametrize("unbuffered", ["1", None])
def test_stdout_the_file_system_cuts_short_is_exit_1(
    tmp_path: Path, args: list[str], unbuffered: str | None
) -> None:
    """`straits chips --json > f` (a document) or `straits chips > f` (a table) over `ulimit
    -f` (as on a full disk) with PYTHONUNBUFFERED=1: Python's text stream wrote once, the
    file system took all but the last 100 bytes, the rest was dropped, and the command said
    nothing, exit 0. Buffered, the error was raised (held)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    out = tmp_path / "chips.out"
    whole = _chips(args, out, env, None)  # with room: the whole output
    assert whole.returncode == 0, whole.stderr
    size = out.stat().st_size
    if "--json" in args:
        assert isinstance(json.loads(out.read_text(encoding="utf-8")), list | dict)
    p = _chips(args, out, env, size - 100)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert out.stat().st_size == size - 100


# --- web31: the lanes of a pool of thousands of stages ------------------------------------------
@pytest.fixture(scope="module")
def demo(rules: RuleSet, example_path: Path) -> tuple[Scenario, dict[str, Any]]:
    sc = load_scenario(example_path)
    return sc, make_plan(sc, rules=rules, solver="greedy").to_json(details=True)


def _lanes_of_every_stage(pool: PoolView) -> list[int]:
    """Every stage of the pool laid on the first lane free at its start (web31's reading)."""
    ends: list[dt.datetime] = []
    lanes = []
    span = axis_seconds(pool)
    for t in pool.tasks:
        until = occupied_until(t, span)
        free = [i for i, e in enumerate(ends) if e <= t.start]
        if free:
            ends[free[0]] = until
            lanes.append(free[0])
        else:
            ends.append(until)
            lanes.append(len(ends) - 1)
    return lanes


def test_a_pool_of_3000_short_stages_lays_only_the_stages_it_draws(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3,000 one-minute stages one after the other on one pool: each is a mark that keeps its
    lane, so every stage took a lane of its own and each was laid after a scan of every lane
    (100,000 such stages: 19 s of CPU for the report, 12 s of it here), to draw 40 of them."""
    plan = copy.deepcopy(demo[1])
    first = plan["assignments"][0]
    t0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    many = []
    for i in range(3000):
        a = dict(first, chips=1)
        start = t0 + dt.timedelta(minutes=i)
        a["start"] = start.isoformat().replace("+00:00", "Z")
        a["end"] = (start + dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
        many.append(a)
    plan["assignments"] = many
    view = build_view(plan, demo[0], rules, source="test")
    laid: list[int] = []

    def counted(t: Any, span: float) -> dt.datetime:
        laid.append(1)
        return occupied_until(t, span)

    monkeypatch.setattr(lanes_module, "occupied_until", counted)
    figs = plan_figures(view)
    assert len(laid) <= POOL_TASKS * len(view.pools)
    # the lanes drawn are those of the stages laid one by one
    (pool,) = [p for p in view.pools if len(p.tasks) == 3000]
    key = next(k for k, f in figs.items() if k.startswith("pool-") and "3000 stages" in str(f))
    bars = [t for t in figs[key]["data"] if t["type"] == "bar"]
    drawn = [y for t in bars for y in t["y"]]
    assert len(drawn) == POOL_TASKS
    assert lanes_module.lanes_of(pool, POOL_TASKS) == _lanes_of_every_stage(pool)[:POOL_TASKS]


def test_an_export_to_a_directory_the_file_system_takes_no_more_of_is_exit_1(
    tmp_path: Path, example_path: Path
) -> None:
    """`straits export PLAN --to slurm -o DIR` over `ulimit -f` (a full disk): exit 2, bad
    input, "--out: cannot write: [Errno 27] File too large", where an archive, a report or a
    key on a full disk is exit 1 (mig31). Nothing is written either way: the folder's file
    kept, no file of the export in it."""
    scenario = str(example_path)
    folder = tmp_path / "bundle"
    folder.mkdir()
    (folder / "old.txt").write_text("kept")
    args = ["export", scenario, "--to", "slurm", "-o", str(folder)]
    p = subprocess.run(
        [sys.executable, "-m", "straits", *args],
        capture_output=True,
        text=True,
        preexec_fn=lambda: _at_most(1024),
        timeout=300,
    )
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    left = sorted(f.name for f in folder.iterdir() if not f.name.endswith(".lock"))
    assert left == ["old.txt"] and (folder / "old.txt").read_text() == "kept"
