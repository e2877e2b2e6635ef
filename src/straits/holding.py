"""Stop signals held back while a file is put in place (``signals_held``).

A write through a temporary file (``fileio.replace_file``, an export's moves, a market
output, a key) that SIGTERM or SIGHUP stopped half way left the old file as it was but its
``.NAME.*.tmp`` beside it for good: those signals end the process without running Python's
``finally`` blocks. Held back, the signal ends the process once the file is in place.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

#: what a write in place holds back until it is done
HELD = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold back Ctrl-C, SIGTERM and SIGHUP for the ``with`` block; the first that came
    meanwhile is raised again once the block is done, to the handler it had (blocks nest).

    Their Python handlers are swapped for one that only notes the signal (Python runs signal
    handlers in the main thread, whichever thread the kernel gave the signal to). Blocking
    the signals in this thread (``pthread_sigmask``) held nothing in a process with other
    threads (a progress spinner, a database watchdog): the kernel handed the signal to one of
    them and the main thread raised KeyboardInterrupt between two moves all the same. Outside
    the main thread handlers cannot be set, and nothing is held (signals go to the main
    thread there anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def note(signum: int, _frame: object) -> None:
        came.append(signum)

    previous: dict[int, Any] = {}
    for sig in HELD:
        handler = signal.getsignal(sig)
        if handler is not None:  # None: set from outside Python, so it cannot be put back
            previous[sig] = signal.signal(sig, note)
    try:
        yield
    finally:
        for held, old in previous.items():
            signal.signal(held, old)
        if came:
            signal.raise_signal(came[0])
