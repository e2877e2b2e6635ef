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
from urllib.parse import quote, unquote

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL

from straits.errors import StoreError


class FileGoneError(StoreError):
    """The store's file was removed or replaced: no transaction of this process will succeed
    again (a ``straits worker`` exits on it, status 1, for its supervisor to restart it)."""


class FileGuard:
    """The identity of a store's SQLite file, checked at the start of every transaction."""

    def __init__(self, path: str) -> None:
        from straits.fileio import hold

        self.path = os.path.abspath(path)
        self.identity: tuple[int, int] | None = None
        # no output of this process replaces the file or its journals (`ledger export -o
        # straits.db` replaced the whole log, exit 0)
        hold(self.path, "the database")
        for suffix in ("wal", "shm", "journal"):
            hold(f"{self.path}-{suffix}", f"the database's {suffix} file")

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


#: the query parameters SQLite reads from a URI filename (https://sqlite.org/uri.html)
URI_PARAMETERS = frozenset({"mode", "immutable", "cache", "nolock", "psow", "vfs", "modeof"})
#: the ones Python's sqlite3 driver takes as its own arguments (SQLAlchemy's pysqlite dialect)
DRIVER_PARAMETERS = frozenset(
    {"timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements", "uri"}
)


def uri_target(url: URL) -> URL:
    """``url`` with SQLite's own parameters (``?mode=ro``) handed to SQLite, as a URI filename.
    The driver takes them only with ``uri=true``: without it, it warned on stderr and ignored
    them, so ``sqlite:///straits.db?mode=ro`` opened the file read-write and ``check
    --record`` wrote to it. A parameter neither reads is a ``ValueError`` (it was ignored)."""
    keys = set(url.query)
    unknown = sorted(keys - URI_PARAMETERS - DRIVER_PARAMETERS)
    if unknown:
        raise ValueError(
            f"{unknown[0]!r} is not a parameter SQLite or its driver reads (expected "
            f"{', '.join(sorted(URI_PARAMETERS | DRIVER_PARAMETERS))})"
        )
    if not keys & URI_PARAMETERS or str(url.query.get("uri", "")).lower() in ("true", "1"):
        return url
    path = url.database or ""
    database = path if path.startswith("file:") else f"file:{quote(path)}"
    return url.set(database=database, query={**url.query, "uri": "true"})


def unopened_hint(database: str | None) -> str:
    """Why SQLite could not open a file that is there and readable ("unable to open database
    file"): its folder takes no new file (a read-only mount, a snapshot, a folder of another
    user's), and a log in WAL mode needs ``-shm`` and ``-wal`` files beside it, even to read.
    Empty when that is not the case."""
    path = unquote((database or "").removeprefix("file:").split("?")[0])
    folder = os.path.dirname(os.path.abspath(path))
    room = room_hint(folder) if path else ""
    if room or not path or not os.path.isfile(path) or os.path.exists(path + "-shm"):
        return room
    if os.access(folder, os.W_OK):
        return ""
    return (
        f" ({folder} cannot be written, and SQLite makes {os.path.basename(path)}-shm and -wal "
        "beside a log in WAL mode even to read it: make the folder writable, or open the file "
        "read-only with ?mode=ro&immutable=1, which assumes nothing writes it meanwhile)"
    )


#: free bytes below which a failed open or write names a full disk: SQLite makes a ``-shm`` of
#: 32 KiB and a ``-wal`` beside a log in WAL mode even to read it, and says `disk I/O error`
#: when it cannot (mig31)
LOW_SPACE = 1 << 20


def room_hint(folder: str | None = None) -> str:
    """Why SQLite could not grow a file, which it reports as a `disk I/O error` (a file it may
    not grow, EFBIG; a ``-shm`` it could not make on a full disk): a file size limit on this
    process (``ulimit -f``), or under ``folder`` less than :data:`LOW_SPACE` free. Empty when
    neither is the case."""
    try:
        import resource
    except ImportError:  # pragma: no cover (Windows)
        return ""
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if soft != resource.RLIM_INFINITY:
        return (
            f" (this process may write no file over {soft:,} bytes, `ulimit -f`: SQLite could "
            "not grow the database's files; raise the limit, then run again)"
        )
    try:
        stat = os.statvfs(folder) if folder else None
    except OSError:
        return ""
    free = stat.f_bavail * stat.f_frsize if stat is not None else LOW_SPACE
    if free >= LOW_SPACE:
        return ""
    return (
        f" ({folder} has {free // 1024:,} KiB free: the disk is full; free space, then run again)"
    )
