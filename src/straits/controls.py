"""Characters a terminal acts on, and how Straits shows them instead.

Kept free of imports beyond ``re`` so that the command line's console (which sanitises every
message it prints) costs nothing at start-up. :mod:`straits.model.types` refuses these in input
text; :func:`shown` makes them visible in output.
"""

from __future__ import annotations

import re

#: Unicode's bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069):
#: invisible, they reorder what follows them on screen, so a name or note shows other text
#: than it holds ("Trojan Source", CVE-2021-42574). The marks (U+200E, U+200F, U+061C) only
#: nudge neutral characters and stay allowed: right-to-left text needs them.
BIDI = "\u202a-\u202e\u2066-\u2069"
#: control characters a terminal acts on (ESC starts sequences that clear the screen, retitle
#: the window or set the clipboard), and the bidirectional controls; tab and newline are text
TERMINAL_CONTROL = re.compile(rf"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI}]")
#: every control character, tab and newline included
ANY_CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f{BIDI}]")


def shown(text: str) -> str:
    """``text`` with every character of :data:`TERMINAL_CONTROL` written as its Python escape
    (``\\x1b``, ``\\u202e``): what a person should see, never what the terminal would do."""
    return TERMINAL_CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


#: the longest key a field path shows whole (body63: a body's unknown key of 1 MiB was written
#: three times into its problem)
KEY_SHOWN = 60
#: the longest run without white space an error line shows whole (a value, a path), and the
#: longest line: a 100,000-character ``--param`` was echoed whole in its error (ray62)
WORD_SHOWN, LINE_SHOWN = 200, 2000


def shorten(text: str, limit: int = KEY_SHOWN) -> str:
    """``text`` as it is when it has at most ``limit`` characters, else its first
    ``limit - 3`` and ``...``."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shorten_words(text: str) -> str:
    """An error line with each run of over :data:`WORD_SHOWN` characters without white space
    (a user's value echoed, quoted or not) shortened, and the line itself kept to its
    first and last characters when it is still longer than :data:`LINE_SHOWN` (a value with
    spaces): the field it names comes first and what it expected last. A long run keeps its
    start and its end: a path's file name is its end (a 281-character path kept its first
    197 characters, so which file was missing or bad was not said)."""
    if len(text) <= WORD_SHOWN:
        return text
    text = re.sub(rf"\S{{{WORD_SHOWN + 1},}}", lambda m: _ends(m.group()), text)
    if len(text) <= LINE_SHOWN:
        return text
    half = LINE_SHOWN // 2
    return f"{text[: half - 5]} ... {text[-half:]}"


def _ends(word: str) -> str:
    """``word`` (longer than :data:`WORD_SHOWN`) as its start, ``...`` and its end, in
    :data:`WORD_SHOWN` characters."""
    tail = WORD_SHOWN // 2
    return f"{word[: WORD_SHOWN - tail - 3]}...{word[-tail:]}"
