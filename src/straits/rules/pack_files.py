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


def _policy_like(path: Path) -> bool:
    """A file named as a policy file in any case (``rules.Cedar``) or a ``pack.yml``."""
    name = path.name.lower()
    return name.endswith(".cedar") or name in ("pack.yml", "pack.yaml")


def _listing(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:  # a link in a circle, no permission: nothing of it is read either way
        return []


def refuse_strays_in(pack: Path) -> None:
    """A PackError naming a policy file ``pack`` holds but the loader does not read."""
    if (stray := _stray_in_pack(pack)) is not None:
        raise PackError(
            "a policy file the pack does not read: it would not be loaded",
            source=str(stray),
            expected="policy files named *.cedar beside pack.yaml",
        )


def refuse_strays_beside(root: Path) -> None:
    """A PackError naming a policy file under the rules directory ``root`` in no pack."""
    if (stray := _stray_beside_packs(root)) is not None:
        raise PackError(
            "a policy file in no pack (its folder has no pack.yaml): it would not be loaded",
            source=str(stray),
            expected="policy files in a pack: a folder holding pack.yaml and *.cedar",
        )


def _stray_in_pack(pack: Path) -> Path | None:
    """A policy file of ``pack`` the loader does not read: a ``*.Cedar`` (only ``*.cedar``
    is read) or a ``*.cedar`` in a subfolder (``cases/`` aside). Each was skipped without a
    word, and the deny rules it held never applied."""
    for p in _listing(pack):
        if p.is_file() and p.name.lower().endswith(".cedar") and not p.name.endswith(".cedar"):
            return p
        if p.is_dir() and p.name != "cases":
            found = next((q for q in _listing(p) if _policy_like(q) and q.is_file()), None)
            if found is not None:
                return found
    return None


def _stray_beside_packs(root: Path) -> Path | None:
    """A policy file under a rules directory that is in no pack: in ``root`` itself or in a
    subfolder without ``pack.yaml`` (a ``pack.yml``, a folder of ``*.cedar`` whose
    ``pack.yaml`` was forgotten). Such a folder was skipped without a word."""
    for p in _listing(root):
        if p.is_file() and p.name.lower().endswith(".cedar"):
            return p
        if p.is_dir() and not (p / "pack.yaml").is_file():
            found = next((q for q in _listing(p) if _policy_like(q) and q.is_file()), None)
            if found is not None:
                return found
    return None
