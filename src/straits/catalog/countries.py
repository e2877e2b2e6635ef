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


def close_codes(text: str) -> list[str]:
    """The alpha-2 code ``text`` (not one) may have meant: an alpha-3 code's (``SGP``: SG), a
    country's name's, in any case (``singapore``, ``Korea, Republic of``), or the EU's UK and
    EL (GB and GR), a code written in look-alike letters (a Cyrillic ES and a Latin G: CG).
    Looked up, not searched: a list of 10,000 requests each with another bad country would
    compare each to 750 names (2 ms each)."""
    from straits.errors import latin_alike

    if len(text) > 100:
        return []
    key = latin_alike(text)
    found = _EU_CODES.get(key.upper()) or _names().get(key)
    if found is None and len(key) == 2 and key.isascii() and is_country(key.upper()):
        found = key.upper()
    return [found] if found else []


#: the two codes the EU writes otherwise than ISO 3166-1
_EU_CODES = {"UK": "GB", "EL": "GR"}
#: English names in everyday use that ISO 3166-1 (pycountry) gives no country: its names are
#: ``Russian Federation`` and ``Türkiye``, and it keeps no former names. Suggestions only: a
#: request's country is still its alpha-2 code.
_EVERYDAY_NAMES = {
    "Russia": "RU",
    "Turkey": "TR",
    "Burma": "MM",
    "Britain": "GB",
    "Great Britain": "GB",
    "Macedonia": "MK",
    "Swaziland": "SZ",
    "Ivory Coast": "CI",
    "East Timor": "TL",
}


@cache
def _names() -> dict[str, str]:
    """Every country's alpha-3 code and names (common, official, short), as :func:`close_codes`
    looks them up (``latin_alike``: case-folded, without spaces; keyed case-folded alone,
    ``United States`` and every name of two words or more were never found, rev65c), to its
    alpha-2 code."""
    from straits.errors import latin_alike

    out: dict[str, str] = {}
    for c in pycountry.countries:
        for attr in ("alpha_3", "name", "common_name", "official_name"):
            name = getattr(c, attr, None)
            if name:
                out.setdefault(latin_alike(str(name)), str(c.alpha_2))
    for name, code in _EVERYDAY_NAMES.items():
        out.setdefault(latin_alike(name), code)
    return out
