"""The witness's state file: read only when it is a regular file of the expected shape, written
atomically and durably, and held under a lock for the whole of a witness run.

The state is what makes a witness worth having: the checkpoints it accepted before, against
which a split view is caught. So:

* two runs on one state file (an overlapping cron job, two operators) take turns: each holds an
  exclusive ``flock`` on ``.NAME.lock`` beside the file from reading the state to writing it.
  Without it both read the same state and the last to write won, so each could accept, trust on
  first use, one of two different trees signed for one size: a split view neither reported and
  whose evidence was then lost;
* it is written through :func:`straits.fileio.write_output` (a temporary file, fsynced, renamed
  over the old one, the directory fsynced): a crash or a full disk leaves the old state whole;
* it is read without blocking and only when it is a regular file (a FIFO hung the witness, and
  ``/dev/zero`` was read until memory ran out), at most :data:`MAX_STATE_BYTES`, and its shape
  is checked before use (a state without ``logs``, or with a list or a number where an entry
  belongs, was a KeyError, AttributeError or TypeError traceback).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from straits.errors import InputError
from straits.fileio import lock_within

STATE_FORMAT = "straits-witness/1"
OPTION = "--state"
#: the largest state file read (about 30,000 checkpoints of 500 bytes)
MAX_STATE_BYTES = 16 * 1024 * 1024
#: checkpoints kept per log as evidence (about 300 KB of a state file): the first one accepted
#: (trusted on first use), the latest and the largest before it.
KEEP_SEEN = 500
#: roots kept per log of the checkpoints whose signed notes were compacted away (``roots``:
#: size -> root, about 800 KB): a fork at such a size is still a split view. Past this, the
#: smallest are dropped and ``forgotten_upto`` bounds the sizes forgotten whole, where a fork
#: can no longer be proven to be a split view (``unprovable-after-compaction``).
KEEP_ROOTS = 10_000
#: seconds a run waits for another run on the same state file to finish
LOCK_WAIT_S = 30.0
_ROOT = re.compile(r"[0-9a-f]{64}")
#: a size as a key of ``roots``: as ``str(int)`` writes it, within a Merkle tree's 63 bits
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_TEXT_FIELDS = ("note", "source", "seen_at")


def empty_state() -> dict[str, Any]:
    return {"format": STATE_FORMAT, "logs": {}}


@contextlib.contextmanager
def locked(path: Path, wait: float | None = None) -> Iterator[None]:
    """Hold the exclusive lock of the state file ``path`` (on ``.NAME.lock`` beside it,
    created 0600 and left there: the state itself is replaced on every write, so a lock on it
    would be on a file the next run no longer opens)."""
    from straits.fileio import output_path

    if str(path) == "-":
        raise InputError(
            "a witness state cannot be standard output",
            path=OPTION,
            expected="a file the witness keeps from run to run",
        )
    output_path(path, option=OPTION, stdout=False)  # a directory, link, FIFO, device: refused
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(f".{path.name}.lock")
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(lock, flags, 0o600)
    except OSError as exc:
        raise InputError(
            f"cannot lock the witness state: {lock}: {exc.strerror or exc}",
            source=str(path),
            path=OPTION,
            expected="a state file in a directory this user may write",
        ) from None
    try:
        wait = LOCK_WAIT_S if wait is None else wait
        if not lock_within(fd, wait):
            raise InputError(
                f"another witness run has held the state's lock ({lock}) for "
                f"{wait:g} s; nothing was recorded",
                source=str(path),
                path=OPTION,
                expected="one witness run at a time on a state file",
            )
        yield
    finally:
        os.close(fd)  # closing releases the lock


def read_state(path: Path) -> dict[str, Any]:
    """The state in ``path`` (an empty one when there is no file), checked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return empty_state()
    except OSError as exc:
        reason = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror or str(exc)
        raise _bad(path, f"cannot read the witness state: {reason}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _bad(path, "the witness state is not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(os.dup(fd), "rb") as f:
            raw = f.read(MAX_STATE_BYTES + 1)
    except OSError as exc:
        raise _bad(path, f"cannot read the witness state: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_STATE_BYTES:
        raise _bad(path, f"the witness state is over {MAX_STATE_BYTES:,} bytes")
    try:
        state = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad(path, f"cannot read the witness state: {exc}") from None
    check_state(state, str(path))
    upgrade(state)
    return state  # type: ignore[no-any-return]


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace the state file whole (see :mod:`straits.fileio`), compacted first
    (:func:`compact`). A state :func:`read_state` would refuse (over
    :data:`MAX_STATE_BYTES`) is not written: ``InputError`` naming ``--state``, and the old
    state is left as it was (the witness wrote it, then refused it on every later run)."""
    from straits.fileio import write_output

    compact(state)
    text = json.dumps(state, indent=1, sort_keys=True) + "\n"
    size = len(text.encode("utf-8"))
    if size > MAX_STATE_BYTES:
        raise InputError(
            f"the witness state would be {size:,} bytes, over the {MAX_STATE_BYTES:,} bytes a "
            f"witness reads back ({len(state['logs']):,} logs); nothing was recorded, the "
            "state is as it was",
            source=str(path),
            path=OPTION,
            expected="a state file per group of logs (fewer logs in each)",
        )
    write_output(path, text, option=OPTION)


def compact(state: dict[str, Any]) -> None:
    """Keep at most :data:`KEEP_SEEN` checkpoints a log: the first (smallest) one, the
    latest, and the largest sizes below it (``seen`` is kept sorted by size). A state grew by
    one checkpoint each accepted run until it was over the size it is read back at. The roots
    of those dropped are kept in ``roots`` (at most :data:`KEEP_ROOTS`, the largest sizes);
    ``forgotten_upto`` is the largest size dropped from both (fix90)."""
    for log in state["logs"].values():
        seen: list[dict[str, Any]] = log["seen"]
        roots: dict[str, str] = log.setdefault("roots", {})
        if len(seen) > KEEP_SEEN:
            seen.sort(key=lambda x: x["size"])
            latest = log.get("latest")
            kept = [seen[0], *seen[len(seen) - (KEEP_SEEN - 1) :]]
            if latest is not None and not any(x["size"] == latest["size"] for x in kept):
                kept = [seen[0], *seen[len(seen) - (KEEP_SEEN - 2) :], latest]
                kept.sort(key=lambda x: x["size"])
            sizes = {x["size"] for x in kept}
            top = latest["size"] if latest is not None else 0  # below it: proven (atk93)
            roots.update(
                {
                    str(x["size"]): x["root"]
                    for x in seen
                    if x["size"] not in sizes and x["size"] < top
                }
            )
            log["seen"] = kept
        if len(roots) > KEEP_ROOTS:
            dropped = sorted(int(n) for n in roots)[: len(roots) - KEEP_ROOTS]
            for n in dropped:
                del roots[str(n)]
            log["forgotten_upto"] = max(dropped[-1], log.get("forgotten_upto", 0))


def upgrade(state: dict[str, Any]) -> None:
    """A log an older version compacted (no ``roots``, :data:`KEEP_SEEN` checkpoints) may
    have dropped any size below its latest, keeping nothing of it: say so
    (``forgotten_upto``), so a fork there is not called more than can be proven."""
    for log in state["logs"].values():
        if "roots" in log:
            continue
        log["roots"] = {}
        latest = log.get("latest")
        if len(log["seen"]) == KEEP_SEEN and latest is not None:
            log["forgotten_upto"] = latest["size"]


def check_state(state: Any, source: str) -> None:
    """``InputError`` naming the first field of ``state`` that a witness never writes."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise _bad(source, "not a witness state file")
    logs = state.get("logs")
    if not isinstance(logs, dict):
        raise _bad(source, "not an object", "logs")
    for origin, log in logs.items():
        where = f"logs[{origin!r}]"
        if not isinstance(log, dict):
            raise _bad(source, "not an object", where)
        seen = log.get("seen")
        if not isinstance(seen, list):
            raise _bad(source, "not a list", f"{where}.seen")
        roots: dict[int, str] = {}
        for i, item in enumerate(seen):
            _check_item(item, source, f"{where}.seen[{i}]")
            if roots.setdefault(item["size"], item["root"]) != item["root"]:
                raise _bad(source, "two roots for one size", f"{where}.seen[{i}]")
        latest = log.get("latest")
        if latest is not None:
            _check_item(latest, source, f"{where}.latest")
            if roots.get(latest["size"]) != latest["root"]:
                raise _bad(source, "the latest checkpoint is not among those seen", where)
        _check_roots(log, source, where, roots, latest["size"] if latest is not None else 0)


def _check_roots(
    log: dict[str, Any], source: str, where: str, seen: dict[int, str], latest: int
) -> None:
    """``roots`` (size -> root hex) and ``forgotten_upto`` (a count), both optional: a state
    older versions wrote has neither. As the witness writes them (atk93): sizes in decimal
    without leading zeros (``07`` was never looked up), below the latest size (a root kept
    above it answered a fork of that size ``seen``), agreeing with the notes ``seen`` holds
    (``seen`` is the sizes' roots), and nothing forgotten beyond the latest size."""
    roots = log.get("roots", {})
    if not isinstance(roots, dict):
        raise _bad(source, "not an object", f"{where}.roots")
    for size, root in roots.items():
        if not _SIZE.fullmatch(size):
            raise _bad(source, f"a key that is not a count: {size[:20]!r}", f"{where}.roots")
        if not isinstance(root, str) or not _ROOT.fullmatch(root):
            raise _bad(source, "not a SHA-256 hash in hex", f"{where}.roots[{size!r}]")
        if int(size) >= latest:
            raise _bad(
                source, f"a root kept at or above the latest size {latest}", f"{where}.roots"
            )
        if seen.get(int(size), root) != root:
            raise _bad(source, "two roots for one size", f"{where}.roots[{size!r}]")
    upto = log.get("forgotten_upto", 0)
    if not isinstance(upto, int) or isinstance(upto, bool) or upto < 0:
        raise _bad(source, "not a count", f"{where}.forgotten_upto")
    if upto > latest:
        raise _bad(source, f"beyond the latest size {latest}", f"{where}.forgotten_upto")


def _check_item(item: Any, source: str, where: str) -> None:
    if not isinstance(item, dict):
        raise _bad(source, "not an object", where)
    size = item.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _bad(source, "not a count", f"{where}.size")
    root = item.get("root")
    if not isinstance(root, str) or not _ROOT.fullmatch(root):
        raise _bad(source, "not a SHA-256 hash in hex", f"{where}.root")
    for name in _TEXT_FIELDS:
        if not isinstance(item.get(name), str):
            raise _bad(source, "not text", f"{where}.{name}")


def _bad(source: str | Path, what: str, field: str | None = None) -> InputError:
    return InputError(
        what + (f" at {field}" if field else ""),
        source=str(source),
        path=OPTION,
        expected=f"a {STATE_FORMAT} file this command wrote (restore it from a copy)",
    )
