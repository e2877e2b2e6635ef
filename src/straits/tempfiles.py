"""The temporary files an atomic write makes beside its target, and those a killed writer left.

A write makes ``.NAME.<12 hex digits>.tmp`` beside ``NAME``, holds an exclusive ``flock`` on it
from its creation until it has been renamed over ``NAME`` (or removed), and renames it. SIGTERM
and SIGHUP are held back meanwhile (``holding``), but ``kill -9``, the OOM killer or a power
cut leave the temporary file for good. So each write first removes the temporaries of its own
target that no live writer holds: the kernel drops a process's locks when it dies, so a
temporary whose lock can be taken is one nobody is writing (whatever its pid, host namespace or
age: a process id would be reused, and a live writer in another container would look dead). A
writer whose file was removed between its creation and its lock (by a cleaner that took the
lock first) sees it unlinked and makes another. Only names of exactly that shape are
considered, and only regular files (never a link or a directory) this process may open: for
writing where it may, as NFS and SMB lock only through a descriptor open for writing.

A NAME longer than 237 bytes would make a temporary's name longer than the 255 bytes a file
system allows, and no such target could be written: its temporaries are
``.HEAD.<12 hex>.<16 hex>.tmp``, HEAD the name's first 220 bytes or less (whole characters) and
the 16 hex digits the start of the name's SHA-256, so two long names that share their first 220
bytes have temporaries of their own. Neither shape matches the other's (the 12 digits are
followed by ``.tmp`` in one, by a dot and 16 more in the other), so a write only ever considers
its own target's temporaries."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from pathlib import Path

_HEX = re.compile(r"[0-9a-f]{12}")
_OPEN = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
#: the longest file name, in bytes, most file systems take (ext4, XFS, btrfs, tmpfs, NFS)
NAME_MAX = 255
_DIGEST = 16  # hex digits of a long name's SHA-256 in its temporaries' names
_SHAPE = len("..") + 12 + len(".tmp")  # what a temporary's name adds to NAME


def _bytes(name: str) -> int:
    return len(name.encode("utf-8", "surrogatepass"))  # at least what the file system stores


def _affixes(name: str) -> tuple[str, str]:
    """The temporaries of the target ``name`` are named PREFIX + 12 hex digits + SUFFIX:
    ``.NAME.`` and ``.tmp``, or for a name too long for that, ``.HEAD.`` and ``.<16 hex>.tmp``
    (HEAD the name cut short, the hex digits its SHA-256's first)."""
    if _bytes(name) + _SHAPE <= NAME_MAX:
        return f".{name}.", ".tmp"
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]
    room = NAME_MAX - _SHAPE - 1 - _DIGEST
    head = name[:room]  # no character is less than a byte
    while _bytes(head) > room:
        head = head[:-1]
    return f".{head}.", f".{digest}.tmp"


def _flock(fd: int, wait: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): nothing is locked, and nothing is removed
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def create(path: Path, mode: int) -> tuple[Path, int]:
    """A new temporary file beside ``path`` (``mode``, the umask applied), open for writing
    and locked: (its path, its descriptor). Keep the descriptor open until the file has been
    renamed or removed: closing it releases the lock, and a later write may remove the file."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN
    prefix, suffix = _affixes(path.name)
    while True:
        tmp = path.parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        fd = os.open(tmp, flags, mode)
        try:
            _flock(fd, wait=True)
            if os.fstat(fd).st_nlink:  # not removed by a cleaner before the lock was ours
                return tmp, fd
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)


def clear_stale(path: Path) -> None:
    """Remove the temporaries of ``path`` (``.NAME.<12 hex>.tmp`` beside it, or a long name's
    shape) no live writer holds. Best effort: what cannot be listed, opened or locked is left."""
    prefix, suffix = _affixes(path.name)
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        if not _HEX.fullmatch(name[len(prefix) : len(name) - len(suffix)]):
            continue
        stale = path.parent / name
        fd = _open_to_lock(stale)
        if fd is None:  # a link (O_NOFOLLOW), another user's file, gone already
            continue
        try:
            held = os.fstat(fd)
            if not stat.S_ISREG(held.st_mode) or not _flock(fd, wait=False):
                continue  # not a file, or a live writer's
            now = os.stat(stale, follow_symlinks=False)
            if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                os.unlink(stale)  # under our lock: no writer holds it
        except OSError:
            continue
        finally:
            os.close(fd)


def _open_to_lock(path: Path) -> int | None:
    """``path`` opened for writing where this process may (NFS and SMB emulate ``flock`` with
    a byte-range lock, and an exclusive one needs a descriptor open for writing: opened
    read-only, no temporary was ever removed there), else for reading; None where neither
    opens. Nothing is written through it."""
    for access in (os.O_RDWR, os.O_RDONLY):
        try:
            return os.open(path, access | os.O_NONBLOCK | _OPEN)
        except PermissionError:  # not writable by this user (mode 0444, another user's)
            continue
        except OSError:  # a link (O_NOFOLLOW), a directory, gone already
            return None
    return None
