"""Dates on the command line, read alike by every command: ``YYYY-MM-DD`` as Click's
``DateTime`` reads it (``typer.Option(..., formats=DATE_FORMATS)``), within the dates Straits
plans for. ``rules list|diff|replay`` read theirs with ``date.fromisoformat``, which also takes
``20250601``, ``2025-W23-1`` and any year, where the other commands refuse them with exit 2."""

from __future__ import annotations

import datetime as dt

#: what a date given on the command line looks like (``strptime``)
DATE_FORMATS = ["%Y-%m-%d"]


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
