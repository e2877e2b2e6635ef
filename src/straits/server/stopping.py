"""``straits serve``'s uvicorn server, stopped gracefully by ``jobs.STOP_SIGNALS``: the app's
lifespan gives the running plan jobs back to the queue, the attempt not counted.

uvicorn handles SIGTERM (``kill``, a supervisor) and SIGINT (Ctrl-C) only; SIGHUP (the terminal
that started the server closed, an SSH session dropped) killed it at once, as a crash: its
running jobs stayed ``running`` until their lease ran out and were then planned again with the
attempt counted. A terminal closing is no crash, so SIGHUP stops it as SIGTERM does.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import uvicorn

from straits.server.jobs import stop_signals


class Server(uvicorn.Server):
    """uvicorn's server, shut down gracefully (the app's lifespan gives the jobs back) on SIGHUP
    too: uvicorn handles SIGINT and SIGTERM only."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn's own, over stop_signals() (STOP_SIGNALS less one the process was started
        # ignoring, as under nohup): signals can be handled in the main thread only, and
        # after the shutdown each one caught is raised again with its earlier handler (the
        # process ends as that signal would have ended it: 143 for SIGTERM, 129 for SIGHUP)
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        before = {sig: signal.signal(sig, self.handle_exit) for sig in stop_signals()}
        try:
            yield
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)
        for caught in reversed(self._captured_signals):
            signal.raise_signal(caught)
