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
    meanwhile are raised again once the block is done, each once, to the handler it had
    (blocks nest; an ignored signal stays ignored).

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
        if signum not in came:
            came.append(signum)

    previous: dict[int, Any] = {}
    try:
        # inside the `try`: a Ctrl-C between two swaps left those before it noting for good
        for sig in HELD:
            handler = signal.getsignal(sig)
            # None: set from outside Python, so it cannot be put back; SIG_IGN (nohup's
            # SIGHUP) stays ignored, never noted in place of a signal that came after it
            if handler is not None and handler is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, note)
        yield
    finally:
        for held, old in previous.items():
            signal.signal(held, old)
        _give_back(came)


def _give_back(came: list[int]) -> None:
    """Raise each signal that came, in the order they came, to the handler it has again:
    only the first was, and a SIGTERM after a Ctrl-C or an ignored SIGHUP was lost. A
    handler that raises (Ctrl-C's KeyboardInterrupt) is raised once the others had theirs."""
    raised: BaseException | None = None
    for signum in came:
        try:
            signal.raise_signal(signum)
        except BaseException as exc:
            raised = raised or exc
    if raised is not None:
        raise raised
