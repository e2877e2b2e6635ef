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
