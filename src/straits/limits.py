"""Caps on what Straits reads: bytes, nesting, YAML aliases and dates.

Every file, stdin and request body is read through these, so hostile input (a 50 MB file,
``/dev/zero``, a YAML alias bomb, JSON nested a million levels deep, a date in year 9999) is
refused with a one-line error naming what was too big and the cap, before any of it is parsed
into models or reaches arithmetic. The numeric ranges of each field live with the field types
(``straits.model.types``); docs/robustness.md lists them all.
"""

from __future__ import annotations

import datetime as dt
import os
import re

#: a whole number and a decimal number as Straits reads them from text (the command line, the
#: environment, ``market --set``): ASCII digits with a sign, a decimal point and an exponent
#: where they make sense. Python's int() and float() also read ``1_0`` (10), any script's
#: digits, ``nan`` and ``inf`` (cli30).
WHOLE_TEXT = re.compile(r"[+-]?[0-9]+")
DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

#: seconds a plan job's lease may be set to (``STRAITS_PLAN_LEASE_S``, ``straits worker
#: --lease``): a worker renews its leases once a second at most, so a shorter one runs out
#: under a live worker
LEASE_RANGE_S = (2.0, 3600.0)
#: files and stdin above this many bytes are refused (``STRAITS_MAX_INPUT_BYTES``); the largest
#: shipped example is a few KiB and a generated 2,000-workload portfolio about 1.5 MiB
DEFAULT_MAX_INPUT_BYTES = 16 * 1024 * 1024
#: objects and lists nested deeper than this are refused (a scenario needs 7 levels, a
#: SkyPilot request about 10)
MAX_DEPTH = 64
#: YAML aliases may add at most this many nodes to a document once expanded (a billion-laughs
#: document adds 10^9; anchors for repeated pool definitions add a few hundred)
MAX_ALIAS_NODES = 100_000
#: requests in one ``straits check`` list (a file or stdin): 10,000 take about 10 s and 300 MB;
#: 100,000 small ones fit under the byte cap and took 32 s and 1 GiB before this cap. The API
#: allows fewer per call (``Settings.max_check_requests``, 1,000); split bigger batches
MAX_CHECK_REQUESTS = 10_000
#: requests in one list that ``check --record`` writes as one ledger entry: each adds about
#: 2.7 KB (request, decision, reasons), so 1,000 keep an entry, its export line and its receipt
#: near 2.7 MB, well under the input cap that ``ledger verify --file`` and ``verify-receipt``
#: read them with (10,000 made a 27 MB entry whose receipt could not be verified); the API's
#: cap per call is the same
MAX_RECORDED_CHECK_REQUESTS = 1_000
#: every date in a scenario or request lies in this window (inclusive), and every time in a
#: plan (``make_plan`` refuses a plan with a stage ending later), so date arithmetic never
#: leaves the calendar
MIN_DATE = dt.date(2000, 1, 1)
MAX_DATE = dt.date(2100, 12, 31)


def as_utc(t: dt.datetime) -> dt.datetime:
    """``t`` in UTC (a time with no zone is taken as UTC), or a ValueError where it has none
    there: a time given with an offset that moves it before year 1 or past year 9999
    (``0001-01-01T00:00:00+01:00``, ``9999-12-31T23:59:59-01:00``), for which
    ``astimezone`` raised OverflowError, a 500 on the API and a traceback in the CLI. Every
    time a user gives is put in UTC through this."""
    if t.tzinfo is None:
        return t.replace(tzinfo=dt.UTC)
    try:
        return t.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{t.isoformat()} is before year 1 or after year 9999 in UTC") from None


#: the largest input cap ``STRAITS_MAX_INPUT_BYTES`` may set (inputs are read into memory)
MAX_MAX_INPUT_BYTES = 1 << 40


def max_input_bytes() -> int:
    """The cap on files and stdin: ``$STRAITS_MAX_INPUT_BYTES`` or 16 MiB."""
    return int(
        env_number(
            "STRAITS_MAX_INPUT_BYTES",
            DEFAULT_MAX_INPUT_BYTES,
            1,
            MAX_MAX_INPUT_BYTES,
            integer=True,
            unit="bytes",
        )
    )


def env_number(
    name: str, default: float, lo: float, hi: float, *, integer: bool = False, unit: str = ""
) -> float:
    """A number an operator sets in the environment: unset or empty is ``default``; anything
    else must be a finite number (whole if ``integer``) between ``lo`` and ``hi``, or an
    InputError naming the variable (exit 2). Garbage used to be ignored silently (a cap set
    as ``64M`` stayed 16 MiB), 100,000 digits raised a ValueError traceback, and ``inf``
    seconds an OverflowError deep in the socket library."""
    from straits.errors import InputError

    value = os.environ.get(name, "").strip()
    if not value:
        return default
    kind = "a whole number" if integer else "a number"
    expected = f"{kind} from {lo:,g} to {hi:,g}" + (f" {unit}" if unit else "")
    number: float | None = None
    # longer is no number in range (and int() of 5,000 digits raises); int() and float() read
    # any script's digits (STRAITS_MAX_INPUT_BYTES=١٦ capped files at 16 bytes, atk29) and
    # ``1_6`` as 16 (cli30)
    if len(value) <= 40 and (WHOLE_TEXT if integer else DECIMAL_TEXT).fullmatch(value):
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            number = None
    if number is None or number != number or not lo <= number <= hi:
        raise InputError(f"{value[:40]!r} is not {expected}", path=name, expected=expected)
    return number


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n:,} bytes"
