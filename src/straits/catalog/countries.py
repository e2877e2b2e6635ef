"""ISO 3166-1 alpha-2 country codes (validated with pycountry)."""

from __future__ import annotations

from functools import cache

import pycountry


@cache
def is_country(code: str) -> bool:
    return pycountry.countries.get(alpha_2=code) is not None


def country_name(code: str) -> str:
    c = pycountry.countries.get(alpha_2=code)
    return str(c.name) if c is not None else code
