"""What a rule pack says besides its policies: the country groups of ``groups.yaml``, the
version and changelog of ``pack.yaml``, and the one-line text check every annotation and
metadata field passes (an escape sequence in one reached the terminal through `rules show`).
``pack_loader`` reads packs with them."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from straits.catalog import is_country
from straits.errors import PackError
from straits.model.types import ANY_CONTROL, TERMINAL_CONTROL
from straits.rules.pack_files import load_yaml

CONFIDENCES = ("V", "V2", "D", "M")


@dataclass(frozen=True)
class Group:
    id: str
    pack: str
    title: str
    source: str
    confidence: str
    members: tuple[str, ...] = ()
    includes: tuple[str, ...] = ()
    note: str | None = None
    file: str = ""
    """the groups.yaml that defines it, as errors name it"""


@dataclass(frozen=True)
class Release:
    """One entry of a pack's changelog (``pack.yaml``: ``changelog``, newest first)."""

    version: str
    date: dt.date
    changes: tuple[str, ...]
    digest: str | None = None
    """the policy digest (Cedar files and groups) of the pack as released"""

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "date": self.date.isoformat(),
            "changes": list(self.changes),
            "digest": self.digest,
        }


#: the longest text a pack's annotation, metadata, group or case may hold (the shipped packs'
#: longest, a `@reading`, is some 1,500 characters): each is printed, listed and copied into
#: every decision that cites the rule, and a 3 MB `@reason` made one recorded check 8 MB
MAX_TEXT = 10_000


def one_line(value: object, where: str, name: str, *, lines: bool = False) -> str:
    """``value``, a string of one line of printable text (of lines, with ``lines``):
    annotations and pack metadata are printed as they are, and an escape sequence in one
    reached the terminal through `rules show`."""
    if not isinstance(value, str):
        raise PackError(
            f"{name} is {type(value).__name__} {str(value)[:80]!r}",
            source=where,
            expected="text (quote it in YAML)",
        )
    if len(value) > MAX_TEXT:
        raise PackError(
            f"{name} is {len(value):,} characters",
            source=where,
            expected=f"at most {MAX_TEXT:,} (a citation of the text, not the text)",
        )
    m = (TERMINAL_CONTROL if lines else ANY_CONTROL).search(value)
    if m:
        raise PackError(
            f"{name} holds the control character {m.group()!r} at position {m.start()}",
            source=where,
            expected="printable text" if lines else "one line of printable text",
        )
    return value


def load_groups(path: Path, pack: str, label: str) -> list[Group]:
    raw = load_yaml(path, label) or {}
    if not isinstance(raw, dict):
        raise PackError("groups.yaml must map group ids to definitions", source=label)
    groups = []
    for gid, spec in raw.items():
        where = f"{label}: {gid}"
        if not isinstance(spec, dict) or not spec.get("source") or not spec.get("confidence"):
            raise PackError(
                "a group needs title, source, confidence and members/includes", source=where
            )
        one_line(gid, label, "a group id")
        for key in ("title", "source", "confidence", "note"):
            if spec.get(key) is not None:
                one_line(spec[key], where, key, lines=key == "note")
        if spec["confidence"] not in CONFIDENCES:
            raise PackError(
                f"confidence {spec['confidence']!r} is unknown",
                source=where,
                expected="one of " + ", ".join(CONFIDENCES),
            )
        raw_members = _names(spec, "members", where)
        if any(isinstance(m, bool) for m in raw_members):
            raise PackError(
                'a member parsed as a YAML boolean: quote country codes such as "NO" (Norway)',
                source=where,
            )
        members = tuple(str(m) for m in raw_members)
        for m in members:
            if not is_country(m):
                raise PackError(f"member {m!r} is not an ISO 3166-1 alpha-2 code", source=where)
        groups.append(
            Group(
                id=gid,
                pack=pack,
                title=spec.get("title") or gid,
                source=spec["source"],
                confidence=spec["confidence"],
                members=members,
                includes=tuple(
                    one_line(g, where, "includes") for g in _names(spec, "includes", where)
                ),
                note=spec.get("note"),
                file=label,
            )
        )
    return groups


def _names(spec: dict[str, Any], key: str, where: str) -> list[Any]:
    """A group's ``members`` or ``includes``: a list (a bare ``SG`` was read letter by letter,
    a number was a TypeError)."""
    value = spec.get(key) or []
    if not isinstance(value, list):
        raise PackError(
            f"`{key}` is {type(value).__name__} {str(value)[:80]!r}",
            source=where,
            expected=f"a list: {key}: [...]",
        )
    return value


def version_text(value: object, where: str, name: str) -> str:
    """A version as written: text, or a whole number. YAML reads ``1.10`` as the number 1.1, so
    the pack claimed a version it does not have."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        raise PackError(
            f"{name} {value!r} is {type(value).__name__}, not text",
            source=where,
            expected=f'a quoted version: {name}: "{value}"',
        )
    return one_line(value, where, name)


#: a policy digest as `straits rules packs` prints it (SHA-256, hex)
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def _release_date(day: object, where: str) -> dt.date:
    """A release's ``date``: a day. YAML reads ``2025-04-10 10:00`` as a timestamp, which then
    could not be compared with the other releases' days (a TypeError traceback)."""
    if isinstance(day, dt.datetime):
        raise PackError(
            f"date {day.isoformat(sep=' ')!r} is a timestamp, not a day",
            source=where,
            expected="YYYY-MM-DD",
        )
    try:
        return day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
    except ValueError:
        raise PackError(
            f"date {day!r} is not an ISO date", source=where, expected="YYYY-MM-DD"
        ) from None


def changelog(raw: Any, version: str, label: str) -> tuple[Release, ...]:
    if raw is None or raw == []:
        return ()  # no release yet (`changelog: []` was an IndexError traceback)
    if not isinstance(raw, list):
        raise PackError(
            "`changelog` must be a list of releases, newest first",
            source=label,
            expected="- {version, date, changes: [...], digest?}",
        )
    out: list[Release] = []
    for i, entry in enumerate(raw):
        where = f"{label}: changelog[{i}]"
        if not isinstance(entry, dict) or not entry.get("version") or not entry.get("date"):
            raise PackError("a release needs `version`, `date` and `changes`", source=where)
        changes = entry.get("changes")
        if (
            not isinstance(changes, list)
            or not changes
            or not all(isinstance(c, str) and c.strip() for c in changes)
        ):
            raise PackError("`changes` must be a non-empty list of sentences", source=where)
        for c in changes:
            one_line(c, where, "changes", lines=True)
        when = _release_date(entry["date"], where)
        digest = entry.get("digest")
        if digest is not None and (not isinstance(digest, str) or not _DIGEST.fullmatch(digest)):
            # 64 characters of anything passed, an escape sequence included
            raise PackError(
                "`digest` must be the 64-hex-digit policy digest (`straits rules packs` prints it)",
                source=where,
            )
        out.append(
            Release(
                version_text(entry["version"], where, "version"),
                when,
                tuple(" ".join(c.split()) for c in changes),
                None if digest is None else digest.lower(),
            )
        )
    versions = [r.version for r in out]
    if len(set(versions)) != len(versions):
        raise PackError("a version appears twice in the changelog", source=label)
    if any(b.date > a.date for a, b in itertools.pairwise(out)):
        raise PackError("changelog entries must be newest first", source=label)
    if out[0].version != version:
        raise PackError(
            f"the newest changelog entry is {out[0].version!r} but the pack's "
            f"version is {version!r}",
            source=label,
            expected="a changelog entry for the pack's version, first",
        )
    return tuple(out)
