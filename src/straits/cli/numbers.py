"""The parameter types of the command line's numbers: ASCII decimal digits only.

Click reads an integer or float option with Python's ``int()`` and ``float()``, which take
``1_0`` as 10, any script's digits (Arabic-Indic or fullwidth) as numbers, blanks around, and
``nan``, ``inf`` or ``1e309`` as floats (cli30). The server's query numbers
(``server/query.py``) and the ``STRAITS_*`` settings (``limits.env_number``) take ASCII
digits only; these types make every numeric option and argument of the CLI do the same: a
whole number is ``[+-]?[0-9]+``, a float ``[+-]?`` digits with an optional decimal point and
an optional ``e`` exponent, finite. Anything else is a usage error naming the option (exit 2).

Every numeric parameter is declared with ``click_type=whole(lo, hi)`` or
``click_type=finite_float(lo, hi)``; ``tests/test_hostile_cli_cli30.py`` walks the command
tree and fails for one that is not.
"""

from __future__ import annotations

import math
import re
from typing import Any

import click

from straits.limits import DECIMAL_TEXT, WHOLE_TEXT

#: the longest number written on a command line: longer is no number any option takes (and
#: the error shows at most this much of it)
MAX_NUMBER_CHARS = 40


def _written(value: Any, pattern: re.Pattern[str]) -> bool:
    """Whether a value from the command line (or an environment variable) is written as the
    pattern says; a value that is already a number (a default) is."""
    if not isinstance(value, str):
        return True
    return len(value) <= MAX_NUMBER_CHARS and pattern.fullmatch(value) is not None


class WholeRange(click.IntRange):
    """click's IntRange (same name, same help) that reads ASCII decimal digits only."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not _written(value, WHOLE_TEXT):
            self.fail(
                f"{str(value)[:MAX_NUMBER_CHARS]!r} is not a whole number "
                "(expected ASCII decimal digits, e.g. 10)",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange that reads ASCII decimal numbers only and refuses NaN and the
    infinities (click lets NaN through any range: it compares false with both bounds)."""

    name = "float"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not _written(value, DECIMAL_TEXT):
            self.fail(
                f"{str(value)[:MAX_NUMBER_CHARS]!r} is not a number "
                "(expected ASCII decimal digits, e.g. 2.5)",
                param,
                ctx,
            )
        v = super().convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return v

    def _describe_range(self) -> str:
        if self.min is None and self.max is None:  # click would print "x<=None"
            return "finite"
        return str(super()._describe_range())


def whole(lo: int | None = None, hi: int | None = None) -> WholeRange:
    """An integer option's parameter type, from ``lo`` to ``hi`` (None: unbounded)."""
    return WholeRange(min=lo, max=hi)


def finite_float(lo: float | None = None, hi: float | None = None) -> FiniteFloatRange:
    """A float option's parameter type, finite, from ``lo`` to ``hi`` (None: unbounded)."""
    return FiniteFloatRange(min=lo, max=hi)
