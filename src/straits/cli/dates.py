"""Dates on the command line, read alike by every command (plan, impact, rules
list|diff|replay): ``YYYY-MM-DD`` in ASCII digits, a day of the calendar, by :class:`IsoDate`
(``click_type=iso_date()``), and within the dates Straits plans for (:func:`check_date`).
``rules list|diff|replay`` once read theirs with ``date.fromisoformat``, which also takes
``20250601``, ``2025-W23-1`` and any year."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import click

#: what a date given on the command line looks like (``strptime``)
DATE_FORMATS = ["%Y-%m-%d"]
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")  # 2025-6-1 too, as before


class IsoDate(click.DateTime):
    """Click's DateTime of :data:`DATE_FORMATS` (same help) that reads ASCII digits only:
    ``strptime`` reads its ``\\d`` as any script's digit, so ``--date`` in Arabic-Indic or
    fullwidth digits was read as a date (cli30)."""

    def get_metavar(self, param: Any) -> str:
        return "YYYY-MM-DD"  # as the docs and the errors write it; click showed [%Y-%m-%d]

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and not _ISO_DATE.fullmatch(value):
            self.fail(
                f"{value[:40]!r} is not a date written YYYY-MM-DD in ASCII digits", param, ctx
            )
        if isinstance(value, str):  # 2025-02-30 was said not to match '%Y-%m-%d' (user64)
            year, month, day = (int(part) for part in value.split("-"))
            try:
                dt.date(year, month, day)
            except ValueError as exc:
                self.fail(f"{value!r} is no day of the calendar ({exc})", param, ctx)
        return super().convert(value, param, ctx)


def iso_date() -> IsoDate:
    """The parameter type of every date on the command line."""
    return IsoDate(DATE_FORMATS)


def check_date(day: dt.datetime | dt.date, path: str = "--date") -> dt.date:
    """The date of ``day``, refused (exit 2, naming ``path``) outside the dates Straits plans
    for: 0001-01-01 was read as the plan's own date without a word, 9999-12-31 was refused only
    after each plan was re-planned."""
    from straits.errors import InputError
    from straits.limits import MAX_DATE, MIN_DATE

    if isinstance(day, dt.datetime):
        day = day.date()
    if not MIN_DATE <= day <= MAX_DATE:
        raise InputError(
            f"{day.isoformat()} is outside the dates Straits plans for",
            path=path,
            expected=f"a date from {MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}",
        )
    return day
