"""A SQLite store keeps to the file it opened.

A process holds its SQLite connections open. When the database file is removed, or another
file renamed over it (a backup restored with ``mv``, a clean-up script), those connections go
on reading and writing the old file, which no other process can see any more: ``straits
serve`` acknowledged every check it recorded after ``rm straits.db`` (200 with an entry
number) into a file that was gone, while a new connection created an empty database at the
path and answered ``no such table``. So once the store has opened (and migrated) its file:

* every transaction first checks that the path still names that file (its device and inode;
  one ``stat``): when it does not, the transaction is refused with a :class:`StoreError` (exit
  1 on the CLI, 503 on the API, ``/readyz`` 503) saying to restart, and nothing is written;
* new connections open the file with ``mode=rw``, so a path whose file is gone is an error, not
  a new empty database.

Restart the process to use the file now at the path (it is then opened, and migrated, as any
database).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, event

from straits.errors import StoreError


class FileGoneError(StoreError):
    """The store's file was removed or replaced: no transaction of this process will succeed
    again (a ``straits worker`` exits on it, status 1, for its supervisor to restart it)."""


class FileGuard:
    """The identity of a store's SQLite file, checked at the start of every transaction."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.identity: tuple[int, int] | None = None

    def install(self, engine: Engine) -> None:
        """Listen on ``engine`` (before any other ``begin`` listener, so that a refused
        transaction never starts)."""

        @event.listens_for(engine, "do_connect")
        def _connect(
            _dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]
        ) -> None:
            if self.identity is not None:  # the file exists and is the store's: never create it
                cargs[:1] = [f"file:{quote(self.path)}?mode=rw"]
                cparams["uri"] = True

        @event.listens_for(engine, "begin")
        def _begin(_conn: Any) -> None:
            self.check()

    def pin(self) -> None:
        """Remember the file now at the path as the store's (after it was opened)."""
        st = os.stat(self.path)
        self.identity = (st.st_dev, st.st_ino)

    def check(self) -> None:
        if self.identity is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise FileGoneError(
                f"the database file {self.path} was removed while this process had it open; "
                "nothing more is read or written (restart to open a database at that path)"
            ) from None
        except OSError as exc:
            raise StoreError(
                f"cannot check the database file {self.path}: {exc.strerror or exc}"
            ) from None
        if (st.st_dev, st.st_ino) != self.identity:
            raise FileGoneError(
                f"the database file {self.path} was replaced by another file while this "
                "process had it open; nothing more is read or written (restart to open the "
                "file now at that path)"
            )
