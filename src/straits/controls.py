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
