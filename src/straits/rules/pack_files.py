"""Reading a rule pack's files: bounded, regular files only, UTF-8, YAML without alias bombs.
Every error is a PackError naming the file."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import yaml

from straits import safe_yaml
from straits.errors import PackError

#: the largest pack file read (policies, groups, cases, pack.yaml): far above any real pack
MAX_FILE_BYTES = 8 * 1024 * 1024


def read_pack_file(path: Path, label: str | None = None) -> str:
    """A pack file's text, or a PackError naming it (unreadable, not UTF-8, too large)."""
    where = label or str(path)
    try:
        st = path.stat()  # follows a link: the file it names is what is read
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
            # a FIFO blocked every command in open(); /dev/zero (size 0) was read until
            # memory ran out
            raise PackError(
                "is not a regular file",
                source=where,
                expected="a policy, groups, case or pack.yaml file",
            )
        if st.st_size > MAX_FILE_BYTES:
            raise PackError(
                f"file is {st.st_size:,} bytes, larger than any rule pack file should be",
                source=where,
                expected=f"at most {MAX_FILE_BYTES:,} bytes",
            )
        with path.open("rb") as f:  # bounded: the file may grow between stat and read
            raw = f.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise PackError(
                "file grew larger than any rule pack file should be",
                source=where,
                expected=f"at most {MAX_FILE_BYTES:,} bytes",
            )
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PackError(f"not UTF-8 text (byte {exc.start})", source=where) from None
    except OSError as exc:
        raise PackError(f"cannot read: {exc.strerror or exc}", source=where) from None


#: the most values a pack's YAML file may expand to (aliases counted at every use): a table of
#: thousands of cases stays far below it, an alias bomb does not
MAX_YAML_VALUES = 1_000_000


def _expanded_size(doc: Any, limit: int) -> int:
    """How many values ``doc`` holds once aliases are expanded, counting up to ``limit``."""
    seen, stack = 0, [doc]
    while stack and seen <= limit:
        node = stack.pop()
        seen += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return seen


def _yaml_error(exc: yaml.YAMLError, where: str) -> PackError:
    """One line, naming the file and line: PyYAML's own text spans several."""
    mark = getattr(exc, "problem_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem and mark is not None:
        return PackError(f"not valid YAML: {exc.problem}", source=f"{where}:{mark.line + 1}")
    return PackError(f"not valid YAML: {' '.join(str(exc).split())}", source=where)


def load_yaml(path: Path, label: str | None = None) -> Any:
    """A pack's YAML file, parsed; errors name the file (and line, where YAML knows it)."""
    where = label or str(path)
    text = read_pack_file(path, label)
    # the scenario loader's limits first: a key given twice in a mapping (the second silently
    # won: a group defined twice in one groups.yaml, a case with two `expect`s, `version`
    # twice in pack.yaml), nesting, aliases, and explicit tags on text they cannot hold
    # (`!!int x` raised ValueError from inside PyYAML), each naming its line
    try:
        safe_yaml.load(text)
    except safe_yaml.YamlLimitError as exc:
        raise PackError(
            exc.message, source=where if exc.line is None else f"{where}:{exc.line}"
        ) from None
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, where) from None
    # then PyYAML's own reading, which packs rely on for dates (`!!timestamp 2025-13-01`
    # still raises from inside it: a date that does not exist)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, where) from None
    except (ValueError, OverflowError) as exc:
        raise PackError(f"not valid YAML: {exc}", source=where) from None
    except RecursionError:
        raise PackError("YAML nested too deeply", source=where) from None
    if _expanded_size(doc, MAX_YAML_VALUES) > MAX_YAML_VALUES:
        raise PackError(
            f"YAML expands to more than {MAX_YAML_VALUES:,} values (aliases "
            "repeated inside aliases?)",
            source=where,
        )
    return doc
