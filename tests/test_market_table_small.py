"""The market table prints no positive figure as 0 (pass atk91): SG's offshore rental in
2023-01 (38,425 chip-hours, JSON `offshore_chip_hours.SG`) read "0.0M" and the offshore share
that month (0.001) "0%", beside the JSON's and the chart's positive values."""

from __future__ import annotations

import pytest

from straits.cli.market_view import _m, _pct


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0.0M"), (38_425.0, "<0.1M"), (49_999.0, "<0.1M"), (50_001.0, "0.1M"), (1.9e6, "1.9M")],
)
def test_chip_hours_in_millions(value: float, text: str) -> None:
    assert _m(value) == text


@pytest.mark.parametrize(
    ("share", "text"),
    [(0.0, "0%"), (0.001, "<1%"), (0.005, "<1%"), (0.0051, "1%"), (0.5176, "52%"), (1.0, "100%")],
)
def test_shares_in_percent(share: float, text: str) -> None:
    assert _pct(share) == text


@pytest.mark.parametrize(
    ("mw", "text"), [(0.0, "0"), (0.056, "<1"), (0.49, "<1"), (0.51, "1"), (1234.4, "1,234")]
)
def test_megawatts(mw: float, text: str) -> None:
    from straits.cli.market_view import _mw

    assert _mw(mw) == text


def test_the_tables_mw_column_prints_no_positive_figure_as_0() -> None:
    """mkt64: the MW column of `straits market`'s table printed 2023-01's 0.056 MW as "0", beside
    "<0.1M" offshore chip-hours in the same row and the JSON's positive `offshore_mw`."""
    from straits.cli.common import console
    from straits.cli.market_view import show
    from straits.market import load_market, simulate

    result = simulate(load_market()[0], firms=30)
    first = result.months[0]
    mw = sum(first.offshore_mw.values())
    assert 0 < mw < 0.5  # the case: positive, rounding to 0
    width = console.width
    console.width = 240
    try:
        with console.capture() as cap:
            show(result, None, "shipped")
    finally:
        console.width = width
    row = next(line for line in cap.get().splitlines() if line.startswith(f"│ {first.month} "))
    cells = [c.strip() for c in row.split("│") if c.strip()]
    countries = list(result.market.supply.countries)
    assert cells[0] == first.month
    assert cells[1 + len(countries)] == "<1"  # month, offshore per country, MW
