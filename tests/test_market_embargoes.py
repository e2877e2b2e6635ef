"""mkt64: the market view honours the embargoes of 15 CFR Part 746 (us-ear, 641d83a). Home firms
headquartered in Iran order no US-origin chip (Ascend only), Russian firms' US-origin orders
stop on 2022-02-24 and what was due after is cancelled, and a Russian operator's pool of
H100s stops growing though Russia's MW grow. Renting abroad is not an export (the pack's
reading), so it is not asserted here."""

from __future__ import annotations

from pathlib import Path

from straits.catalog import get_chip
from straits.market import load_market, simulate
from straits.market.result import MarketResult

SOURCE = "source: test figure, confidence: M"


def _run(tmp_path: Path, text: str) -> MarketResult:
    path = tmp_path / "m.yaml"
    path.write_text("extends: shipped\n" + text)
    return simulate(load_market(path)[0], firms=10)


def _us(units: dict[str, float]) -> float:
    return sum(v for chip, v in units.items() if get_chip(chip).origin == "US")


def _home(hq: str, start: str, end: str) -> str:
    return f"""name: {hq.lower()}-test
start: "{start}"
end: "{end}"
home: {hq}
firm_types:
  - {{id: home-lab, hq: {hq}, count: 5, share: {{value: 1, {SOURCE}}}}}
  - {{id: sea-firm, hq: SG, count: 5, share: {{value: 1, {SOURCE}}}}}
"""


def test_iranian_firms_order_no_us_chip(tmp_path: Path) -> None:
    r = _run(tmp_path, _home("IR", "2024-01", "2024-12"))
    assert sum(_us(x.chips_ordered) for x in r.months) == 0
    assert abs(sum(_us(x.chips_delivered) for x in r.months)) < 1e-6
    assert sum(sum(x.chips_ordered.values()) for x in r.months) > 0  # Ascend: not US-origin


def test_russian_orders_stop_on_the_embargo_and_what_was_due_is_cancelled(
    tmp_path: Path,
) -> None:
    r = _run(tmp_path, _home("RU", "2021-06", "2022-09"))
    before = [x for x in r.months if x.month < "2022-02"]
    after = [x for x in r.months if x.month >= "2022-03"]
    assert sum(_us(x.chips_ordered) for x in before) > 0
    assert sum(_us(x.chips_ordered) for x in after) == 0
    assert abs(sum(_us(x.chips_delivered) for x in after)) < 1e-6  # float residue only
    assert sum(_us(x.chips_cancelled) for x in r.months) > 0


def _ru_pool(start: str, end: str) -> str:
    return f"""name: ru-pool
start: "{start}"
end: "{end}"
supply:
  countries:
    RU:
      mw:
        - {{date: "2021-06", value: 500, {SOURCE}}}
        - {{date: "2023-06", value: 3000, {SOURCE}}}
      ai_rental_share: {{value: 0.3, {SOURCE}}}
  pools:
    - id: sg-sg-h100
      country: SG
      operator_hq: SG
      chip: H100-SXM
      share: {{value: 1, {SOURCE}}}
    - id: my-sg-h100
      country: MY
      operator_hq: SG
      chip: H100-SXM
      share: {{value: 1, {SOURCE}}}
    - id: ru-ru-h100
      country: RU
      operator_hq: RU
      chip: H100-SXM
      share: {{value: 1, {SOURCE}}}
"""


def test_a_russian_operators_h100_pool_stops_growing(tmp_path: Path) -> None:
    r = _run(tmp_path, _ru_pool("2021-06", "2023-06"))
    assert not r.notes  # its first fleet could be bought in 2021-06
    mw = {x.month: x.capacity_mw["RU"] for x in r.months}
    assert mw["2022-02"] > mw["2021-06"]  # it grew before the embargo
    # orders placed from 2022-02-24 are refused, and those due after it cancelled on arrival
    assert mw["2023-06"] == mw["2022-03"]


def test_a_pool_its_operator_may_not_buy_on_the_first_day_is_noted(tmp_path: Path) -> None:
    """A pool starts at the chips its country's MW hold: an H100 pool in Russia from 2023-01,
    rented to home firms from the first month, said nothing of the embargo that bars its
    operator buying any (fails on the old code: no note)."""
    r = _run(tmp_path, _ru_pool("2023-01", "2023-03"))
    assert [n.split(" ", 1)[0] for n in r.notes] == ["supply.pools[ru-ru-h100]"]
    assert r.to_json()["notes"] == r.notes


def _diffusion(start: str, end: str, my_mw: str) -> str:
    """A market under the AI Diffusion rule with no Tier 2 licence obtained (bis-license
    approval uptake 0): an operator's order above the licence-free allowance (26.9M TPP, ~1,699
    H100) is refused, one within it is lawful (us-diffusion-tier2-procure, a shipped rule)."""
    return f"""name: diffusion-pools
start: "{start}"
end: "{end}"
regime: ai-diffusion
uptake:
  bis-license:
    approval: {{value: 0, {SOURCE}}}
supply:
  countries:
    SG:
      mw:
        - {{date: "2024-05", value: 1400, {SOURCE}}}
        - {{date: "2027-12", value: 1800, {SOURCE}}}
      ai_rental_share: {{value: 0.05, {SOURCE}}}
    MY:
      mw:
{my_mw}
      ai_rental_share: {{value: 0.3, {SOURCE}}}
  pools:
    - id: sg-sg-h100
      country: SG
      operator_hq: SG
      chip: H100-SXM
      share: {{value: 1, {SOURCE}}}
    - id: my-sg-h100
      country: MY
      operator_hq: SG
      chip: H100-SXM
      share: {{value: 1, {SOURCE}}}
"""


def _grew(r: MarketResult, country: str) -> bool:
    mw = [x.capacity_mw[country] for x in r.months]
    return mw[-1] > mw[0] * (1 + 1e-9)


def _noted(r: MarketResult) -> list[str]:
    return [n.split(" ", 1)[0] for n in r.notes if n.startswith("supply.pools[")]


def test_a_pool_whose_first_orders_fit_a_quantity_allowance_is_not_noted(
    tmp_path: Path,
) -> None:
    """mkt65: the note asked the pool's whole first fleet (~41,000 H100 in Singapore) as one
    order, above the Diffusion rule's allowance, and said its operator could buy on no day of
    2025-06 and the pool would not grow; the market's own orders (~1,500 a month, within the
    allowance) were lawful and grew it (fails on the old code: the Singapore pool noted). The
    Malaysian pool's first orders (~20,000) exceed the allowance: noted, and it never grows."""
    my = f"""        - {{date: "2025-03", value: 522, {SOURCE}}}
        - {{date: "2025-12", value: 1025, {SOURCE}}}"""
    r = _run(tmp_path, _diffusion("2025-06", "2026-06", my))
    assert _noted(r) == ["supply.pools[my-sg-h100]"]
    assert _grew(r, "SG") and not _grew(r, "MY")
    assert r.to_json()["notes"] == r.notes


def test_a_small_first_fleet_whose_orders_are_refused_is_noted(tmp_path: Path) -> None:
    """mkt65, the other way: a Malaysian pool starting small (~800 H100, within the allowance
    as one order) whose MW then grows fast orders ~100,000 a month, every order refused: it
    never grows, and the note said nothing (fails on the old code: no note)."""
    my = f"""        - {{date: "2025-06", value: 5, {SOURCE}}}
        - {{date: "2026-06", value: 2000, {SOURCE}}}"""
    r = _run(tmp_path, _diffusion("2025-06", "2026-06", my))
    assert _noted(r) == ["supply.pools[my-sg-h100]"]
    assert _grew(r, "SG") and not _grew(r, "MY")


def test_a_pool_that_orders_nothing_in_the_first_month_is_asked_its_smallest_order(
    tmp_path: Path,
) -> None:
    """A pool whose MW stay flat orders nothing in the first month: the note asks the smallest
    order the market places (one chip), which the Russian embargo refuses (noted), and the
    Diffusion rule's allowance admits (not noted)."""
    flat = _ru_pool("2023-01", "2023-03").replace("value: 3000", "value: 500")
    assert _noted(_run(tmp_path, flat)) == ["supply.pools[ru-ru-h100]"]
    my = f"""        - {{date: "2025-01", value: 500, {SOURCE}}}"""
    r = _run(tmp_path, _diffusion("2025-06", "2025-08", my))
    assert _noted(r) == [] and not _grew(r, "MY")


def test_a_note_of_the_compared_regime_is_shown_in_json_table_and_html(
    tmp_path: Path,
) -> None:
    """mkt65: `straits market` under `enacted` compares with `ai-diffusion` (the table's yearly
    columns, the HTML page's charts), but a pool noted under ai-diffusion only (its orders above
    the allowance) was said in none of the JSON, the table or the HTML page (fails on the old
    code: no difference.notes)."""
    from straits.cli.common import console
    from straits.cli.market_view import show
    from straits.market.outputs import document
    from straits.market.report import market_page

    path = tmp_path / "m.yaml"
    my = f"""        - {{date: "2025-03", value: 522, {SOURCE}}}
        - {{date: "2025-12", value: 1025, {SOURCE}}}"""
    path.write_text("extends: shipped\n" + _diffusion("2025-06", "2025-08", my))
    m = load_market(path)[0]
    result = simulate(m, regime="enacted", firms=10)
    other = simulate(m, regime="ai-diffusion", firms=10)
    assert _noted(result) == [] and _noted(other) == ["supply.pools[my-sg-h100]"]
    doc = document(result, other)
    assert "notes" not in doc and doc["difference"]["notes"] == other.notes
    with console.capture() as table:
        show(result, other, "m.yaml")
    assert "note (ai-diffusion): supply.pools[my-sg-h100]" in " ".join(table.get().split())
    assert "supply.pools[my-sg-h100]" in market_page(result, other).render()
    assert "notes" not in document(other, other)["difference"]  # its own: not repeated
