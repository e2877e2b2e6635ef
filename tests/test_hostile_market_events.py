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


QUANTITY_RULE = """
@id("team-big-orders")
@title("Team: no orders of 50,000 chips or more")
@citation("Team policy 8")
@confidence("V")
@effect("deny")
@effective_from("2020-01-01")
@reason("too many chips")
permit (principal, action == Straits::Action::"procure", resource)
when { context.date >= datetime("2020-01-01") && context.quantity >= 50000 };
"""


def test_a_rule_on_the_order_size_tells_orders_apart(tmp_path: Path) -> None:
    """The market's memo keyed a purchase by its TPP position only: under a pack testing
    `context.quantity`, an order of 60,000 chips got the answer of an order of 40,000 asked
    before it (both above every TPP threshold of the packs): both allowed, or both denied."""
    from straits.market.rulebook import Actor, Question, Rulebook

    pack = tmp_path / "team"
    pack.mkdir()
    (pack / "pack.yaml").write_text("name: team\ntitle: t\nversion: '1'\n")
    (pack / "orders.cedar").write_text(QUANTITY_RULE)
    actor = Actor("SG")

    def order(n: int) -> Question:
        return Question(actor, "procure", "SG", "SG", "Ascend-910B", quantity=n)

    for sizes in ((40_000, 60_000), (60_000, 40_000)):
        book = Rulebook(ruleset((pack,)), "enacted", {})
        shares = {
            n: v.share
            for n, v in zip(sizes, book.verdicts([order(n) for n in sizes], "2025-06"), strict=True)
        }
        assert shares == {40_000: pytest.approx(1.0), 60_000: 0.0}, sizes
