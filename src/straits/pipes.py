"""Reading a path that may be a pipe: a FIFO nothing writes to must not block a command forever.

``open()`` of a FIFO blocks until a writer opens it, and a read of one blocks until the writer
writes or closes. :func:`read_path` opens without blocking, reads a regular file as usual, and
reads anything else (a process substitution's pipe, ``<(vault read ...)``; a FIFO; a device)
until its end for at most :data:`PIPE_WAIT_S` seconds, then gives up with a ``TimeoutError``
(an ``OSError``: callers already turn those into a one-line input error). ``ledger verify
--file FIFO``, ``ledger verify-receipt FIFO``, ``ledger witness --checkpoint FIFO`` and every
command reading a scenario or request file hung there (the key options already waited so).
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time
from pathlib import Path

#: seconds a file handed over a pipe may take to arrive in full
PIPE_WAIT_S = 30.0


def read_path(path: Path, cap: int, wait: float | None = None) -> bytes:
    """At most ``cap + 1`` bytes of the file at ``path`` (more means it is over ``cap``)."""
    wait = PIPE_WAIT_S if wait is None else wait
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
            with os.fdopen(os.dup(fd), "rb") as f:
                return f.read(cap + 1)
        chunks, size, deadline = [], 0, time.monotonic() + wait
        while size <= cap:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(errno.ETIMEDOUT, f"nothing arrived within {wait:g} s")
            try:
                chunk = os.read(fd, min(1 << 20, cap + 1 - size))
            except BlockingIOError:
                continue
            if not chunk:  # the end (at once for a FIFO whose writer has closed it)
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
