"""The report's "chips in use per week" heatmap (atk72): each cell is the week's average share
of the pool's chips in use, weighted by time over the week. It read one instant per week, its
middle, so a 256-chip serving stage of 5 hours was drawn as 0% in every week, and a fine-tune's
first and last weeks read 0%."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from straits.loading import load_scenario
from straits.model.scenario import Scenario
from straits.plan import make_plan
from straits.report.figures import plan_figures, utilisation_figure
from straits.report.usage import PoolView, Task, average_share
from straits.report.view import build_view
from straits.rules import RuleSet

T0 = dt.datetime(2025, 1, 6, tzinfo=dt.UTC)
H = dt.timedelta(hours=1)


def _pool(capacity: list[tuple[dt.datetime, int]], use: list[tuple[dt.datetime, int]]) -> PoolView:
    task = Task("w", "s", use[0][0], use[-1][0], max(n for _, n in use), False, 0.0)
    return PoolView("site", "SG", "H100-SXM", 0, tuple(capacity), tuple(use), (), (task,), 0.0)


@pytest.fixture(scope="module")
def demo(rules: RuleSet, example_path: Path) -> tuple[Scenario, dict[str, Any]]:
    sc = load_scenario(example_path)
    return sc, make_plan(sc, rules=rules, solver="greedy").to_json()


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_few_hours_in_a_week_are_their_share_of_it() -> None:
    """Five hours of all the chips in a week are 5/168 of it, wherever in the week they fall
    (the middle of the week, 3.5 days in, is not among them)."""
    week = T0 + 7 * 24 * H
    pool = _pool([(T0, 100), (week + 30 * 24 * H, 100)], [(T0 + H, 100), (T0 + 6 * H, 0)])
    assert average_share(pool, T0, week) == float(f"{5 / 168:.3g}")
    assert average_share(pool, week, week + 7 * 24 * H) == 0.0
    # capacity that changes within the week: only the time with chips counts
    pool = _pool([(T0, 0), (T0 + 84 * H, 10)], [(T0 + 84 * H, 5), (T0 + 168 * H, 0)])
    assert average_share(pool, T0, week) == 0.5
    assert average_share(_pool([(T0, 0)], [(T0, 0), (T0 + H, 0)]), T0, week) is None
    # one chip of 10,000 for an hour is small, not 0
    pool = _pool([(T0, 10_000), (week, 10_000)], [(T0, 1), (T0 + H, 0)])
    assert 0 < average_share(pool, T0, week) < 1e-6  # type: ignore[operator]
    fig = utilisation_figure((pool,))
    assert "average share of chips in use, week of" in fig["data"][0]["hovertemplate"]


def test_a_short_serving_stage_shows_in_its_week(
    demo: tuple[Scenario, dict[str, Any]], rules: RuleSet
) -> None:
    """The shipped plan with its serving stage cut to 5 hours: the week it runs in is more than
    0% on its pool, the time-weighted average a minute-by-minute reading gives."""
    sc, plan = demo
    plan = copy.deepcopy(plan)
    a = next(a for a in plan["assignments"] if a["stage"] == "serve-intl")
    start = _instant(a["start"])
    a["end"] = (start + 5 * H).isoformat().replace("+00:00", "Z")
    view = build_view(plan, sc, rules, source="test")
    hm = plan_figures(view)["utilisation"]["data"][0]
    key = f"{a['site']}/{a['chip']}"
    row = hm["z"][hm["y"].index(key)]
    weeks = [_instant(x) for x in hm["x"]]
    i = max(j for j, w in enumerate(weeks) if w <= start)
    assert weeks[i] <= start and start + 5 * H <= weeks[i] + 7 * 24 * H  # within one week
    assert row[i] > 0, (key, weeks[i], row[i])
    pool = next(p for p in view.pools if p.key == key)

    def level(steps: tuple[tuple[dt.datetime, int], ...], t: dt.datetime) -> int:
        return ([n for at, n in steps if at <= t] or [0])[-1]

    minutes = [weeks[i] + dt.timedelta(minutes=m, seconds=30) for m in range(7 * 24 * 60)]
    shares = [level(pool.use, t) / level(pool.capacity, t) for t in minutes]
    assert abs(row[i] - sum(shares) / len(shares)) < 1e-3 * max(row[i], 1e-3)
    assert "average share of chips in use" in hm["hovertemplate"]
