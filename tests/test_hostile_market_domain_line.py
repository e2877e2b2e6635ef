"""A market parameter outside its domain is named with the file's line, as a field error is."""

from __future__ import annotations

from pathlib import Path

import pytest

from straits.market import load_market
from straits.market.loading import MarketError

CASES = [
    (
        'prices:\n  base:\n    - {date: "2023-01", value: 3, source: "xyz", confidence: M}\n'
        '    - {date: "2023-06", value: -3, source: "xyz", confidence: M}\n',
        "prices.base[2023-06]",
        6,
    ),
    (
        'demand:\n  shift_speed: {value: 3, source: "xyz", confidence: M}\n',
        "demand.shift_speed",
        4,
    ),
    (
        "supply:\n  pools:\n    - {id: a1, country: SG, operator_hq: SG, chip: H100-SXM,\n"
        '       share: {low: 0.4, high: 1.6, source: "xyz", confidence: M}}\n',
        "supply.pools[a1].share",
        6,
    ),
]


@pytest.mark.parametrize(("body", "path", "line"), CASES)
def test_a_value_outside_its_domain_names_its_line(
    tmp_path: Path, body: str, path: str, line: int
) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("extends: shipped\nname: x\n" + body)
    with pytest.raises(MarketError) as err:
        load_market(f)
    assert err.value.path == path
    assert err.value.line == line
    assert err.value.source is not None and err.value.source.endswith("m.yaml")


def test_an_override_outside_its_domain_names_no_line() -> None:
    with pytest.raises(MarketError) as err:
        load_market(None, {"demand.shift_speed": 3.0})
    assert err.value.path == "demand.shift_speed" and err.value.line is None
