"""Market files and the simulation as a library, as a hostile pass found them (atk75): keys
that name the same country or chip in two spellings, numbers written as text or booleans,
bad arguments to `simulate`, and a firm count that came out other than asked."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from straits.market import load_market, simulate
from straits.market.firms import scaled_counts
from straits.market.loading import MarketError, shipped_raw, validate


def _refused(raw: dict[str, Any]) -> MarketError:
    with pytest.raises(MarketError) as exc:
        validate(raw, "test")
    return exc.value


def test_a_country_given_twice_in_two_cases_is_refused() -> None:
    raw = copy.deepcopy(shipped_raw())
    countries = raw["supply"]["countries"]
    countries["sg"] = copy.deepcopy(countries["SG"])
    err = _refused(raw)
    assert err.path == "supply.countries"


def test_a_chip_given_twice_in_two_spellings_is_refused() -> None:
    raw = copy.deepcopy(shipped_raw())
    chip = next(iter(raw["installed"]))
    raw["installed"][chip.lower()] = copy.deepcopy(raw["installed"][chip])
    assert _refused(raw).path == "installed"


NOT_NUMBERS = [
    ("demand.initial_readiness.value", "0.05"),
    ("demand.initial_readiness.value", True),
    ("seed", True),
    ("seed", "3"),
]


@pytest.mark.parametrize(("path", "value"), NOT_NUMBERS)
def test_a_number_written_as_text_or_a_boolean_is_refused(path: str, value: object) -> None:
    raw = copy.deepcopy(shipped_raw())
    *parents, last = path.split(".")
    node = raw
    for p in parents:
        node = node[p]
    node[last] = value
    assert _refused(raw).path == path


def test_an_exponent_yaml_reads_as_text_is_named_with_the_number_in_full() -> None:
    """`value: 1.025e3` is text to YAML 1.1 (its exponent has no sign): the error said only
    "got str '1.025e3', not a number" (a hostile-input review)."""
    raw = copy.deepcopy(shipped_raw())
    raw["demand"]["initial_readiness"]["value"] = "0.5e1"
    err = _refused(raw)
    assert err.path == "demand.initial_readiness.value"
    assert "(5)" in str(err) and "signed exponent" in str(err)


@pytest.mark.parametrize(
    ("kw", "path"),
    [
        ({"regime": "bogus"}, "regime"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**64}, "seed"),
        ({"seed": True}, "seed"),
        ({"firms": "x"}, "firms"),
    ],
)
def test_simulate_raises_market_errors_for_bad_arguments(kw: dict[str, Any], path: str) -> None:
    m, _, _ = load_market()
    with pytest.raises(MarketError) as exc:
        simulate(m, **{"firms": 5, **kw})
    assert exc.value.path == path


def test_the_firms_asked_for_are_the_firms_run() -> None:
    """21 firm types, one of 1,000 firms and twenty of one: 21 firms asked, 31 were run."""
    raw = copy.deepcopy(shipped_raw())
    share = {"value": 0.01, "source": "test type", "confidence": "M"}
    raw["firm_types"] = [
        {"id": "cn-big", "hq": "CN", "count": 1000, "share": {**share, "value": 0.5}},
        *({"id": f"cn-small-{i}", "hq": "CN", "count": 1, "share": share} for i in range(20)),
    ]
    m = validate(raw, "test")
    for n in (21, 22, 40, 1021, 5000):
        counts = scaled_counts(m, n)
        assert sum(counts) == n and min(counts) >= 1


# date51: the month pattern read `\d` as any script's digit, so a year with one fullwidth or
# Arabic-Indic digit inside 2000-2100 as text ("20\uff125-06") was read as 2025-06 without a word
MONTHS_IN_OTHER_DIGITS = [
    ("start", "20\uff12\uff13-01"),
    ("end", "20\uff12\uff17-12"),
    ("supply.countries.SG.mw[1].date", "20\uff12\uff14-05"),
    ("supply.countries.SG.mw[1].date", "20\u0662\u0664-05"),
]


@pytest.mark.parametrize(("path", "value"), MONTHS_IN_OTHER_DIGITS)
def test_a_month_in_another_scripts_digits_is_refused(path: str, value: str) -> None:
    raw = copy.deepcopy(shipped_raw())
    *parents, last = path.split(".")
    node: Any = raw
    for p in parents:
        name, _, index = p.partition("[")
        node = node[name][int(index[:-1])] if index else node[name]
    name, _, index = last.partition("[")
    if index:
        node = node[name]
        name = index[:-1]
    node[name] = value
    assert _refused(raw).path == path
