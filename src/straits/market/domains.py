"""What each market parameter may be: the domain its value (or its whole range) must lie in.

A :class:`~straits.market.params.Param` is any finite number; what it means decides what it may
be. A share is between 0 and 1, a growth multiple is not 1e300 (the demand it compounds
overflows to infinity, then NaN, and the simulation crashed converting it to a chip count),
nothing is negative, and what is divided by is positive. The domains are generous (10x and more
beyond anything the shipped file uses); ``--set`` values and sweep ranges are checked the same
way, so every point a sweep samples is one the simulation can run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

#: (path pattern, low, high, whether low itself is allowed, what the parameter is);
#: ``[*]`` matches any list item; the first match wins
DOMAINS: tuple[tuple[str, float, float, bool, str], ...] = (
    ("supply.countries.*.ai_rental_share", 0, 1, True, "a share"),
    ("supply.countries.*.mw[*]", 0, 1e6, True, "megawatts"),
    ("supply.pools[*].share", 0, 1, True, "a share"),
    ("supply.reference_server.kw", 0.1, 1000, True, "kilowatts per server"),
    ("supply.pue", 1, 10, True, "a power usage effectiveness"),
    ("supply.availability", 0, 1, False, "a share"),
    ("home_chips[*].usd_per_chip", 0, 1e7, False, "dollars per chip"),
    ("home_chips[*].supply_per_month[*]", 0, 1e9, True, "chips per month"),
    ("installed.*", 0, 1e9, True, "chips"),
    ("prices.base[*]", 0, 1e4, False, "dollars per chip-hour"),
    ("prices.elasticity", 0, 100, True, "an elasticity"),
    ("prices.reference_utilisation", 0, 10, False, "a utilisation"),
    ("prices.floor", 0, 100, False, "a price multiple"),
    ("prices.cap", 0, 100, False, "a price multiple"),
    ("demand.initial_utilisation", 0, 100, True, "a utilisation"),
    ("demand.offshore_initial_utilisation", 0, 100, True, "a utilisation"),
    ("demand.growth_per_year", 0, 100, True, "a yearly growth multiple"),
    ("demand.offshore_growth_per_year", 0, 100, True, "a yearly growth multiple"),
    ("demand.mix_start.*", 0, 1, True, "a share"),
    ("demand.mix_end.*", 0, 1, True, "a share"),
    ("demand.shift_speed", 0, 1, True, "a share per month"),
    ("demand.initial_readiness", 0, 1, True, "a share"),
    ("demand.wtp_usd_per_h100e_hour", 0, 1e4, False, "dollars per H100-hour"),
    ("demand.domestic_premium", 0, 100, False, "a cost multiple"),
    ("demand.buy_sharpness", 0, 1000, True, "a logit scale"),
    ("demand.amortize_years", 0, 100, False, "years"),
    ("demand.firm_size_sigma", 0, 10, True, "a log-normal spread"),
    ("firm_types[*].share", 0, 1, True, "a share"),
    ("uptake.*.*", 0, 1, True, "a share"),
    ("*", 0, 1e12, True, "a quantity"),
)


def _pattern(glob: str) -> re.Pattern[str]:
    out = re.escape(glob).replace(r"\[\*\]", r"\[[^\]]*\]").replace(r"\*", r"[^.\[\]]+")
    return re.compile(out + "$" if glob != "*" else ".*$")


_COMPILED = tuple((_pattern(g), lo, hi, closed, what) for g, lo, hi, closed, what in DOMAINS)


def domain_of(path: str) -> tuple[float, float, bool, str]:
    """(low, high, whether low is allowed, what it is) of the parameter at ``path``."""
    for pattern, lo, hi, closed, what in _COMPILED:
        if pattern.match(path):
            return lo, hi, closed, what
    raise AssertionError("the last domain matches every path")


def violations(params: Iterator[tuple[str, Mapping[str, Any]]]) -> Iterator[tuple[str, str, str]]:
    """(parameter path, what is wrong, what is expected) for each value outside its domain."""
    for path, node in params:
        lo, hi, closed, what = domain_of(path)
        for key in ("value", "low", "high"):
            v = node.get(key)
            if not isinstance(v, int | float) or isinstance(v, bool):
                continue
            if (v < lo if closed else v <= lo) or v > hi:
                bound = f"{'at least' if closed else 'more than'} {lo:g} and at most {hi:g}"
                where = "" if key == "value" else f" (`{key}`)"
                yield path, f"{v:g}{where} is outside what {what} may be", bound
