"""The market's rule events lie within its months (found by the hostile pass atk40)."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.market import load_market, simulate
from straits.rules import ruleset

NOTE = """
@id("team-note")
@title("Team: a note from the first of the month")
@citation("Team policy 7")
@confidence("V")
@effect("note")
@effective_from("{day}")
@reason("a note")
permit (principal, action, resource)
when {{ context.date >= datetime("{day}") }};
"""


@pytest.mark.parametrize(
    ("end", "day"),
    [("2025-06", "2025-07-01"), ("2025-02", "2025-03-03"), ("2024-02", "2024-03-02")],
)
def test_no_event_after_the_last_month(tmp_path: Path, end: str, day: str) -> None:
    """The events ran to the last month's first day + 30: a market ending in June (or
    February) listed a rule change of 1 July (or 1-3 March) that it never simulated."""
    pack = tmp_path / "team"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: team\ntitle: t\nversion: '1'\n")
    (pack / "note.cedar").write_text(NOTE.format(day=day))
    f = tmp_path / "m.yaml"
    f.write_text(f"extends: shipped\nstart: '{end}'\nend: '{end}'\n")
    market, _, _ = load_market(f)
    out = simulate(market, regime="enacted", firms=5, rules=ruleset((pack,))).to_json()
    assert [m["month"] for m in out["months"]] == [end]
    assert all(e["date"][:7] == end for e in out["events"]), out["events"]
