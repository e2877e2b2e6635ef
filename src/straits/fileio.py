"""Output files: written whole or not at all, never over something that is not a file.

Every command that writes a file (``-o``/``--output``) goes through :func:`write_output`:

* ``-`` (or no ``-o``) means standard output;
* an existing directory means a file of the command's default name inside it;
* an existing regular file is replaced atomically (a temporary file beside it, fsynced, renamed
  over it), keeping its permission bits, so a reader never sees half a file and a failure or a
  ``kill -9`` leaves the old file as it was;
* a new file gets the permissions the umask allows (``0666 & ~umask``, like ``>`` in a shell;
  ``0777 & ~umask`` for executables);
* anything else at the path (a symbolic link, a FIFO, a device node such as ``/dev/full``, a
  socket) is refused with a one-line error (exit 2): Straits never replaces it, and never writes
  through it. Write to standard output with ``-`` and redirect instead;
* a file system that takes no more (a full disk, a quota, ``ulimit -f``) is exit 1, as for
  standard output, with nothing written (:data:`FULL`).

The check and the rename are not one atomic step: something created at the path in between is
replaced by the rename (which never follows a link), not written through.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import select
import stat
import sys
from pathlib import Path

from straits import tempfiles
from straits.errors import InputError, OutputError
from straits.holding import signals_held

STDOUT = "-"

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


#: files this run reads and keeps (the database, the log's keys), with what each is: an output
#: never replaces one (see :func:`hold`)
_HELD: list[tuple[Path, str, bool]] = []


def hold(path: str | Path, what: str, *, key: bool = False) -> None:
    """Mark ``path`` as a file this run keeps (``what`` says which, for the error): an output
    path that is it (the same path, a hard link or a link to it) is refused. ``ledger
    checkpoint -o ledger.key`` replaced the log's signing key (the only copy: the database
    never holds it) and ``ledger export -o straits.db`` the whole database, exit 0. ``key``:
    a key file, which ``ledger keygen --force`` (and only it) may replace."""
    p = Path(path)
    if all(q != p for q, _, _ in _HELD):
        _HELD.append((p, what, key))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one is missing: the same file when the paths resolve alike
        try:
            return os.path.realpath(a) == os.path.realpath(b)
        except (OSError, ValueError):
            return False


def _refuse_held(path: Path, option: str, keys: bool) -> Path:
    for held, what, key in _HELD:
        if not (key and keys) and _same_file(held, path):
            raise InputError(
                f"{path} is {what}: writing it would replace it",
                path=option,
                expected="another file name",
            )
    return path


def output_dir(target: str | Path, option: str = "-o") -> Path:
    """The directory ``target`` that files are written into (created later when missing):
    raises :class:`InputError` naming ``option`` when something else is there (a file, a
    device, a FIFO, a dangling link), instead of an OS error half-way through."""
    path = Path(target)
    try:
        st = path.stat()  # a link to a directory is a directory to write into
    except FileNotFoundError:
        if path.is_symlink():
            raise InputError(
                f"{path} is a symbolic link to nothing",
                path=option,
                expected="a directory (created when missing)",
            ) from None
        return path
    except OSError as exc:
        raise InputError(f"cannot use {path}: {exc.strerror or exc}", path=option) from None
    if not stat.S_ISDIR(st.st_mode):
        kind = "a file" if stat.S_ISREG(st.st_mode) else _kind(st.st_mode)
        raise InputError(
            f"{path} is {kind}, not a directory",
            path=option,
            expected="a directory (created when missing), an archive "
            "FILE.tar.gz / .tgz / .zip / .tar, or '-' for stdout",
        )
    return path


def probe(path: str | Path) -> os.stat_result | OSError | None:
    """What is at ``path`` (links followed): its stat, None when nothing is there, or the
    OSError that says why it cannot be looked at. ``Path.exists()``, ``is_dir()`` and
    ``is_file()`` raise some of those (a name over 255 bytes: ENAMETOOLONG), which was a
    traceback on ``plan``, ``impact --plan``, ``--rules``, ``--head``, ``--pubkey`` and
    ``scenario generate -o`` given such a name (cli30)."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL byte
        return None
    except OSError as exc:
        return exc


def is_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory (or a link to one); False where it cannot be looked at."""
    st = probe(path)
    return isinstance(st, os.stat_result) and stat.S_ISDIR(st.st_mode)


def is_file(path: str | Path) -> bool:
    """Whether ``path`` is a regular file (or a link to one); False where it cannot be looked
    at."""
    st = probe(path)
    return isinstance(st, os.stat_result) and stat.S_ISREG(st.st_mode)


def output_path(
    target: str | Path | None,
    *,
    default_name: str | None = None,
    option: str = "-o",
    replaces_keys: bool = False,
    stdout: bool = True,
) -> Path | None:
    """Where ``target`` writes: None for standard output (``-`` or no target), else the file
    path (inside ``target`` when it is a directory). Raises :class:`InputError` naming
    ``option`` when the path holds something other than a regular file, or a file this run
    keeps (:func:`hold`; ``replaces_keys``: but for key files, for ``keygen``). ``stdout``
    False: the caller refuses ``-`` (a witness's state), so no refusal offers it."""
    or_stdout = " (or '-' for standard output)" if stdout else ""
    if target is None or str(target) == STDOUT:
        return None
    if isinstance(target, str) and not target.strip():
        # Path("") is the current directory: an unset shell variable must not write there
        raise InputError(
            "an empty path",
            path=option,
            expected="a file or directory name, or '-' for standard output",
        )
    path = Path(target)
    if str(target).endswith(("/", os.sep)) and not (default_name and is_dir(path)):
        # Path("new/") is Path("new"): `-o new/` wrote a file named new, and `-o plan.yaml/`
        # replaced plan.yaml, where a trailing slash names a directory (cp refuses so too)
        raise InputError(
            f"{target}: no such directory (a trailing '/' names one)"
            if default_name
            else f"{target}: a trailing '/' names a directory, and {option} writes a file",
            path=option,
            expected="an existing directory, or a file name without the '/'"
            if default_name
            else "a file name without the trailing '/'",
        )
    for _ in range(2):  # the path itself, then the default name inside a directory
        try:
            st = path.lstat()
        except FileNotFoundError:
            return _writable_beside(_refuse_held(path, option, replaces_keys), option)
        except OSError as exc:
            raise InputError(f"cannot use {path}: {exc.strerror or exc}", path=option) from None
        if stat.S_ISREG(st.st_mode):
            return _writable_beside(_refuse_held(path, option, replaces_keys), option)
        if stat.S_ISDIR(st.st_mode) and default_name and path == Path(target):
            path = path / default_name
            continue
        if stat.S_ISDIR(st.st_mode):
            raise InputError(
                f"{path} is a directory",
                path=option,
                expected=f"a file name{or_stdout}",
            )
        raise InputError(
            f"{path} is {_kind(st.st_mode)}; Straits only replaces regular files",
            path=option,
            expected="a regular file's path"
            + (", or '-' to write to standard output and redirect it" if stdout else ""),
        )
    raise AssertionError("unreachable")  # pragma: no cover


def _writable_beside(path: Path, option: str) -> Path:
    """``path``, after checking that the file can be created there: its nearest existing
    parent is a directory this process may write into (missing ones are created on write).
    Refused before the work, not after it (a long simulation then "permission denied")."""
    parent = path.absolute().parent
    while True:
        try:
            st = parent.stat()
            break
        except FileNotFoundError:
            if parent.is_symlink():  # creating the directory would fail after the work
                raise InputError(
                    f"cannot write {path}: {parent} is a symbolic link to nothing",
                    path=option,
                    expected="a path inside a directory",
                ) from None
            if parent.parent == parent:
                break  # pragma: no cover - the root exists
            parent = parent.parent
        except OSError as exc:
            raise InputError(
                f"cannot use {path}: {exc.strerror or exc}",
                path=option,
                expected="a writable location",
            ) from None
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(
            f"cannot write {path}: {parent} is not a directory",
            path=option,
            expected="a path inside a directory",
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(
            f"cannot write {path}: permission denied in {parent}",
            path=option,
            expected="a writable location",
        )
    return path


def refuse_input_as_output(
    source: str | Path | None, target: str | Path | None, option: str
) -> None:
    """Raise :class:`InputError` naming ``option`` when ``target`` is the file ``source`` is read
    from (the same path, a hard link or a link to it): the output replaced the input, so
    ``straits market m.json -o m.json`` left the results where the market file was."""
    if source is None or target is None or STDOUT in (str(source), str(target)):
        return
    try:
        same = os.path.samefile(source, target)
    except (OSError, ValueError):  # either is missing or unreadable: not the same file
        return
    if same:
        raise InputError(
            f"{target} is the input file {source}: writing it would replace the input",
            path=option,
            expected="another file name",
        )


def write_output(
    target: str | Path | None,
    data: str | bytes,
    *,
    default_name: str | None = None,
    executable: bool = False,
    option: str = "-o",
) -> Path | None:
    """Write ``data`` to ``target`` (see the module's rules); returns the file written, or
    None when it went to standard output."""
    path = output_path(target, default_name=default_name, option=option)
    if path is None:
        write_stdout(data)
        return None
    try:
        replace_file(path, data.encode("utf-8") if isinstance(data, str) else data, executable)
    except OSError as exc:
        if exc.errno in FULL:
            raise full_error(path, exc) from None
        raise InputError(
            f"cannot write {path}: {exc.strerror or exc}",
            path=option,
            expected="a writable location",
        ) from None
    return path


#: a file system that takes no more: a full disk, a quota, a file size limit (``ulimit -f``,
#: where Python ignores SIGXFSZ and the write fails with EFBIG), a failing device
FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def full_error(path: Path, exc: OSError) -> OutputError:
    """The error for an output file the file system took no more of: exit 1, as for standard
    output (:func:`stdout_failed`), not 2: nothing in the command line was wrong, and the same
    command works once there is room. The temporary file is gone, ``path`` as it was."""
    return OutputError(
        f"cannot write {path}: {exc.strerror or exc} (the file system takes no more: a full "
        f"disk, a quota or a file size limit); nothing was written, {path.name} is as it was"
    )


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to the file ``path`` through a temporary file beside it (the rules of
    :func:`write_output`; ``path`` must not be a directory)."""
    write_output(path, text)


def write_stdout(data: str | bytes) -> None:
    """Write to standard output; a closed pipe (``| head``) ends the command quietly. The
    process's own standard output is written through its file descriptor, every byte or an
    error: under ``PYTHONUNBUFFERED=1`` (``python -u``, as container images set it) Python's
    text stream wrote once to the file and dropped what a short write left (``plan --json >
    f`` under ``ulimit -f`` or on a full disk: a truncated file, exit 0)."""
    try:
        fd = _stdout_fd()
        if fd is not None:
            sys.stdout.flush()
            if isinstance(data, str):
                data = data.encode(sys.stdout.encoding, sys.stdout.errors or "strict")
            write_fully(fd, data)
            return
        if isinstance(data, bytes):
            sys.stdout.flush()
            buffer = getattr(sys.stdout, "buffer", None)
            if buffer is None:  # closed (cli.output.ClosedStdout): its write fails, saying so
                sys.stdout.write("\0")
                raise BrokenPipeError(errno.EBADF, "standard output takes no bytes")
            buffer.write(data)
        else:
            sys.stdout.write(data)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush is quiet
        raise SystemExit(1) from None
    except OSError as exc:  # a full disk, /dev/full: said in one line (exit 1)
        raise stdout_failed(exc) from None


def write_fully(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``: ``os.write`` may take less (a file size limit, a full
    disk), and the next write then says why (an OSError). A non-blocking ``fd`` (a pipe its
    parent set ``O_NONBLOCK`` on) with no room yet is waited on until its reader takes some:
    it was exit 1, "Resource temporarily unavailable", on a slow reader (brk32)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            poll = select.poll()
            poll.register(fd, select.POLLOUT)
            poll.poll()  # room, or the reader gone: the next write says which


def direct_fd(stream: object) -> int | None:
    """The file descriptor ``stream`` is to be written through with :func:`write_fully`: an
    unbuffered one (:func:`unbuffered_fd`), or any whose descriptor is non-blocking, where the
    buffered stream raised ``BlockingIOError`` on a slow reader and what it held was lost."""
    fd = unbuffered_fd(stream)
    if fd is not None:
        return fd
    raw = getattr(getattr(stream, "buffer", None), "raw", None)
    if not isinstance(raw, io.FileIO) or raw.closed:
        return None
    try:
        return None if os.get_blocking(raw.fileno()) else raw.fileno()
    except OSError:
        return None


def unbuffered_fd(stream: object) -> int | None:
    """The file descriptor under a text stream whose binary layer is unbuffered
    (``PYTHONUNBUFFERED=1``): such a stream writes each text once and drops what a short
    write leaves, so :class:`~straits.cli.output.GuardedStdout` writes through it here."""
    raw = getattr(stream, "buffer", None)
    if not isinstance(raw, io.FileIO) or raw.closed:
        return None
    return raw.fileno()


def _stdout_fd() -> int | None:
    """The file descriptor under ``sys.stdout`` where it is a file's stream, else None (a
    captured or replaced standard output, or a closed one: written through ``sys.stdout``)."""
    buffer = getattr(sys.stdout, "buffer", None)
    raw = buffer if isinstance(buffer, io.FileIO) else getattr(buffer, "raw", None)
    if not isinstance(raw, io.FileIO) or raw.closed:
        return None
    return raw.fileno()


def stdout_failed(exc: OSError) -> Exception:
    """The error for standard output that took no more (a full disk, ``/dev/full``); what is
    still buffered for it goes to /dev/null, so the interpreter's last flush is quiet."""
    from straits.errors import OutputError

    with contextlib.suppress(OSError):  # /dev/null is always there
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    return OutputError(
        f"cannot write standard output: {exc.strerror or exc}; what was printed is incomplete"
    )


def replace_file(path: Path, data: bytes, executable: bool = False, private: bool = False) -> None:
    """Replace ``path`` with ``data`` atomically: a temporary file beside it, fsynced, renamed
    over it, the directory fsynced. The file keeps its mode; a new one gets the umask's. A
    ``private`` file is made 0600 and its directory must exist (a missing one is an error, not
    created: where a secret's record goes is the operator's choice)."""
    if not private:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        keep: int | None = stat.S_IMODE(path.stat().st_mode) if path.is_file() else None
    except OSError:
        keep = None
    if private:
        keep = 0o600
    tempfiles.clear_stale(path)  # what a writer killed with SIGKILL left (left64)
    # SIGTERM or SIGHUP between the temporary file's creation and its rename left it there
    # for good (they end the process past every `finally`): held back until it is renamed
    with signals_held():
        tmp, fd = tempfiles.create(path, 0o777 if executable else 0o666)  # the umask applies
        try:
            if keep is not None:
                os.fchmod(fd, keep)
            write_all(fd, data)
            os.replace(tmp, path)  # while locked: a stale temporary is one whose lock is free
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
    sync_dir(path.parent)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the open file ``fd`` (``os.write`` may write less) and fsync it."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def sync_dir(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform opens directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def lock_within(fd: int, wait: float) -> bool:
    """Take an exclusive ``flock`` on ``fd``, trying every 50 ms for at most ``wait`` seconds;
    False when another holder kept it that long (the caller says what was not done). The
    lock is released when ``fd`` is closed."""
    import fcntl
    import time

    limit = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= limit:
                return False
            time.sleep(0.05)
