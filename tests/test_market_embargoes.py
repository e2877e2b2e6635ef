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
