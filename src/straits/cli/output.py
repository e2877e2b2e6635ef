"""What commands print and write: the `-o json|yaml|table` formats, JSON and YAML documents on
stdout, and files written whole or not at all (`-` being stdout)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Literal

from straits.errors import InputError

Format = Literal["json", "yaml", "table"]
FORMATS: tuple[Format, ...] = ("table", "json", "yaml")


def output_format(output: str | None, json_out: bool = False) -> Format:
    """The format asked for by ``-o FORMAT`` or ``--json`` (the two must agree)."""
    if output is None:
        return "json" if json_out else "table"
    fmt = output.strip().lower()
    if fmt not in FORMATS:
        hint = (" (to write a file, redirect the output: > FILE)"
                if ("." in fmt or "/" in fmt or fmt == "-") else "")
        raise InputError(f"-o takes an output format, not {output!r}{hint}", path="-o",
                         expected="table, json or yaml")
    if json_out and fmt != "json":
        raise InputError(f"--json and -o {fmt} ask for two formats", path="-o",
                         expected="one of them")
    return fmt


def emit(doc: Any, fmt: Format) -> None:
    """Print a document as JSON or YAML (tables are each command's own)."""
    if fmt == "yaml":
        sys.stdout.write(to_yaml(doc))
    else:
        print_json(doc)


def to_yaml(doc: Any) -> str:
    import yaml

    dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(doc, Dumper=dumper, sort_keys=False, allow_unicode=True, width=100,
                         default_flow_style=False))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_output(path: str | Path | None, text: str) -> None:
    """``text`` to stdout (``path`` None or ``-``) or into the file ``path``, atomically."""
    if path is None or str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_file(Path(path), text.encode("utf-8"))


def write_file(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary file in the same directory, renamed into
    place, so nobody sees half a file; refuses to replace anything but a regular file; the
    mode follows the umask. (What the CLI needs of a safe writer; straits.fileio is the shared
    one.)"""
    import tempfile

    if path.exists() and not path.is_file():
        raise InputError("exists and is not a regular file", source=str(path),
                         expected="a new file name or an existing regular file")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


