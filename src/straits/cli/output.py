"""What commands print and write: the `-o json|yaml|table` formats, JSON and YAML documents on
stdout, and files written whole or not at all (`-` being stdout)."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from pathlib import Path
from typing import Any, Literal

from straits.errors import InputError

Format = Literal["json", "yaml", "table"]
FORMATS: tuple[Format, ...] = ("table", "json", "yaml")


def output_format(output: str | None, json_out: bool = False, also: tuple[str, ...] = ()) -> Format:
    """The format asked for by ``-o FORMAT`` or ``--json`` (the two must agree); ``also``
    names a command's own further formats (handled by the command) for the error message."""
    if output is None:
        return "json" if json_out else "table"
    fmt = output.strip().lower()
    if fmt not in FORMATS:
        hint = (
            " (to write a file, redirect the output: > FILE)"
            if ("." in fmt or "/" in fmt or fmt == "-")
            else ""
        )
        names = [*FORMATS, *also]
        raise InputError(
            f"-o takes an output format, not {output!r}{hint}",
            path="-o",
            expected=", ".join(names[:-1]) + " or " + names[-1],
        )
    if json_out and fmt != "json":
        raise InputError(
            f"--json and -o {fmt} ask for two formats", path="-o", expected="one of them"
        )
    return fmt


def emit(doc: Any, fmt: Format) -> None:
    """Print a document as JSON or YAML (tables are each command's own). The YAML is of the
    document the JSON is: ``rules test -o yaml`` wrote a case's request dates as YAML dates
    (``date: 2025-06-01``), strings in its JSON."""
    if fmt == "yaml":
        from straits.jsonout import json_types

        write_stdout(to_yaml(json_types(doc), ascii_only=not stdout_is_utf8()))
    else:
        print_json(doc)


def stdout_is_utf8() -> bool:
    """Whether standard output encodes any text (its encoding is UTF-8)."""
    import codecs

    try:
        return codecs.lookup(getattr(sys.stdout, "encoding", None) or "utf-8").name == "utf-8"
    except LookupError:
        return False


def plain_dumper() -> Any:
    """PyYAML's safe dumper (libyaml's when built with it) writing no anchors or aliases: an
    object shared by two places of a document (``demo``'s placements, ``scenario
    generate``'s dates) is written out twice, as the JSON of the same document is, where it
    was ``&id001`` and ``*id001``, which a reader of the YAML (or a tool without alias
    support) had to resolve by hand."""
    import yaml

    base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class PlainDumper(base):  # type: ignore[misc]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return PlainDumper


def to_yaml(doc: Any, ascii_only: bool = False) -> str:
    """``doc`` as YAML, with no anchors or aliases; ``ascii_only``: other characters escaped
    in double-quoted scalars (for a standard output that cannot encode them: same document,
    as JSON's escapes are)."""
    import yaml

    return str(
        yaml.dump(
            doc,
            Dumper=plain_dumper(),
            sort_keys=False,
            allow_unicode=not ascii_only,
            width=100,
            default_flow_style=False,
        )
    )


def print_json(data: Any) -> None:
    """Strict JSON (no NaN or Infinity) on stdout, exactly as the API answers it."""
    from straits.jsonout import dumps

    write_stdout(dumps(data) + "\n")


def write_stdout(text: str | bytes) -> None:
    """To stdout; a closed pipe (``| head``) ends the command quietly."""
    from straits.fileio import write_stdout as write

    write(text)


def write_output(path: str | Path | None, text: str) -> None:
    """``text`` to stdout (``path`` None or ``-``) or into the file ``path``, atomically
    (``straits.fileio.write_output``: only a regular file is ever replaced; modes follow the
    umask)."""
    from straits.fileio import write_output as write

    write(path, text)


def write_file(path: Path, data: bytes) -> None:
    """``data`` into the file ``path``, whole or not at all (``straits.fileio``)."""
    from straits.fileio import write_output as write

    write(path, data)


class GuardedStdout:
    """Standard output whose failed writes say so: a write or flush that fails for another
    reason than a closed pipe (a full disk, ``> /dev/full``, an I/O error) raises
    :class:`~straits.errors.OutputError` (exit 1, one line on stderr) where every command
    ended in an OSError traceback. Everything else is the wrapped stream's."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def write(self, text: str) -> int:
        from straits.fileio import direct_fd, write_fully

        try:
            fd = direct_fd(self._inner)
            if fd is None:
                return int(self._inner.write(text))
            # unbuffered (PYTHONUNBUFFERED=1): the stream wrote a table once and dropped what
            # the file system did not take (a full disk, `ulimit -f`), exit 0 on a cut table;
            # non-blocking (O_NONBLOCK from the parent): waited on, not lost (brk32)
            inner = self._inner
            inner.flush()
            write_fully(fd, text.encode(inner.encoding, inner.errors or "strict"))
            return len(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _output_error(exc) from None

    def flush(self) -> None:
        try:
            self._inner.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _output_error(exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class QuietStderr(GuardedStdout):
    """Standard error that cannot be written (``2> /dev/full``, a reader gone): what it was
    told is dropped, since there is nowhere left to say anything, so the command still ends
    with its own exit status (an error's 2 became 1, from the traceback of the error line)."""

    def write(self, text: str) -> int:
        try:
            return int(self._inner.write(text))
        except OSError:
            _silence(2)
            return len(text)

    def flush(self) -> None:
        try:
            self._inner.flush()
        except OSError:
            _silence(2)


def _silence(fd: int) -> None:
    """``fd`` onto /dev/null: what is still buffered for it goes nowhere, quietly."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)


def _output_error(exc: OSError) -> Exception:
    from straits.fileio import stdout_failed

    return stdout_failed(exc)


class ClosedStdout(io.TextIOBase):
    """Standard output for a process started with it closed (``straits ... >&-``), where Python
    leaves ``sys.stdout`` None: a JSON document was an AttributeError traceback and a table
    went nowhere with exit 0. The first write says so on stderr and fails as a closed pipe
    does, so the command ends with exit 1 (``fileio.write_stdout``, Rich's broken-pipe exit,
    or ``cli.main``); a command that prints nothing on stdout (``-o FILE``) is unaffected."""

    said = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1  # held by /dev/null (cli._prepare_streams): a closed pipe's handlers dup2 it

    def write(self, text: str) -> int:
        if not text:
            return 0
        if not self.said and sys.stderr is not None:
            self.said = True
            sys.stderr.write(
                "error: standard output is closed: the output was not written (expected an "
                "open standard output: redirect it to a file, or to /dev/null to discard it)\n"
            )
            sys.stderr.flush()
        raise BrokenPipeError(errno.EBADF, "standard output is closed")
