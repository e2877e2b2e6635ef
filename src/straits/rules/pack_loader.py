"""Rule packs on disk: Cedar policies with annotations, country groups, metadata.

A pack is a directory holding ``pack.yaml`` (name, title, version, changelog), one or more
``*.cedar`` files and optionally ``groups.yaml`` (country groups as data) and ``cases/*.yaml``
(test cases).
Every policy is a ``permit`` whose condition says when the rule *applies*; its annotations say
what follows (``@effect``: requires / deny / warn / note), with ``@id``, ``@title``,
``@citation``, ``@confidence``, ``@reason`` and the effective window. See docs/rule-packs.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from straits.controls import BIDI
from straits.errors import PackError
from straits.model.types import AUTHORIZATIONS
from straits.rules.cedar import CedarSyntaxError, parse_est
from straits.rules.est import non_day_datetimes
from straits.rules.pack_files import (
    load_yaml,
    read_pack_file,
    refuse_strays_beside,
    refuse_strays_in,
)
from straits.rules.pack_meta import (
    CONFIDENCES,
    Group,
    Release,
    changelog,
    load_groups,
    one_line,
    version_text,
)
from straits.rules.policy_checks import check_literals, check_reads, check_window

EFFECTS = ("requires", "deny", "warn", "note")
PRESUMPTIONS = ("denial", "approval", "case-by-case")
REQUIRED_ANNOTATIONS = (
    "id",
    "title",
    "citation",
    "confidence",
    "effect",
    "reason",
    "effective_from",
)
#: every annotation a policy may carry: a misspelt one (``@effective_untill``) was ignored, and
#: the rule it meant to end stayed in force in every listing
ANNOTATIONS = (*REQUIRED_ANNOTATIONS, "effective_until", "requires", "presumption", "reading")
#: the names a ``@reason`` may use (docs/rule-packs.md; :class:`decision.TemplateValues`)
PLACEHOLDERS = (
    "chip",
    "chip_class_2023",
    "chip_basis_2022",
    "chip_tpp",
    "chip_mem_bw",
    "site",
    "site_country",
    "site_operator_hq",
    "tenant_hq",
    "date",
    "quantity",
    "quantity_tpp",
    "prior_tpp",
    "data_origin",
    "data_subjects",
    "data_total_ytd",
    "data_sensitive_ytd",
    "data_total_since_last_year",
    "data_sensitive_since_last_year",
    "training_ops",
)
#: rule ids are listed, recorded in the ledger and typed on the command line; pack names too
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class Rule:
    id: str
    pack: str
    file: str
    line: int
    title: str
    citation: str
    confidence: str
    effect: str
    reason: str
    effective_from: dt.date
    effective_until: dt.date | None = None
    requires: str | None = None
    presumption: str | None = None
    reading: str | None = None
    text: str = ""
    est: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def in_force(self, on: dt.date) -> bool:
        if on < self.effective_from:
            return False
        return self.effective_until is None or on <= self.effective_until


@dataclass(frozen=True)
class Pack:
    name: str
    title: str
    version: str
    jurisdiction: str
    description: str
    path: Path
    rules: tuple[Rule, ...]
    groups: tuple[Group, ...]
    digest: str
    """SHA-256 of every file of the pack (recorded in the ledger with each decision)"""
    policy_text: str
    policy_digest: str = ""
    """SHA-256 of what decides: the Cedar files and groups.yaml"""
    changelog: tuple[Release, ...] = ()

    @property
    def released(self) -> bool | None:
        """Whether the policies are those the newest changelog entry records (None when it
        records no digest)."""
        if not self.changelog or self.changelog[0].digest is None:
            return None
        return self.changelog[0].digest == self.policy_digest


@dataclass(frozen=True)
class Statement:
    text: str
    line: int


def split_statements(text: str) -> list[Statement]:
    """Split Cedar policy text at top-level semicolons, keeping each statement's first line."""
    out: list[Statement] = []
    buf: list[str] = []
    start_line: int | None = None
    line = 1
    i = 0
    in_string = False
    n = len(text)
    while i < n:
        ch = text[i]
        if in_string:
            buf.append(ch)
            if ch == "\\" and i + 1 < n:
                buf.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
            elif ch == "\n":
                line += 1
        elif ch == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            i = end
            continue
        else:
            if ch == "\n":
                line += 1
            elif not ch.isspace() and start_line is None:
                start_line = line
            if ch == '"':
                in_string = True
            buf.append(ch)
            if ch == ";":
                out.append(Statement("".join(buf).strip(), start_line or line))
                buf, start_line = [], None
        i += 1
    rest = "".join(buf).strip()
    if rest:
        out.append(Statement(rest, start_line or line))
    return out


def _date(value: str, where: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise PackError(
            f"@{name}({value!r}) is not an ISO date", source=where, expected="YYYY-MM-DD"
        ) from None


def _rule_from(est: dict[str, Any], stmt: Statement, pack: str, file: str) -> Rule:
    where = f"{file}:{stmt.line}"
    ann: dict[str, str] = est.get("annotations", {}) or {}
    # blanks are no text: `@citation("   ")` passed as a citation, listed and recorded empty
    missing = [a for a in REQUIRED_ANNOTATIONS if not (ann.get(a) or "").strip()]
    if missing:
        raise PackError(
            "policy lacks annotation(s) " + ", ".join("@" + m for m in missing),
            source=where,
            expected="@" + ", @".join(REQUIRED_ANNOTATIONS),
        )
    unknown = [a for a in ann if a not in ANNOTATIONS]
    if unknown:
        raise PackError(
            "unknown annotation(s) " + ", ".join("@" + a for a in unknown),
            source=where,
            expected="@" + ", @".join(ANNOTATIONS),
        )
    for name, value in ann.items():
        one_line(value, where, f"@{name}")
    if not _ID.fullmatch(ann["id"]):
        raise PackError(
            f"@id({ann['id'][:80]!r}) is not a rule id",
            source=where,
            expected="letters, digits, '.', '_' or '-' (at most 128), e.g. us-ear-2023-3a090",
        )
    _check_reason(ann["reason"], where)
    if est.get("effect") != "permit":
        raise PackError(
            "rules are `permit` policies whose condition says when the rule applies",
            source=where,
            expected="permit (...) when { ... };",
        )
    effect = ann["effect"]
    if effect not in EFFECTS:
        raise PackError(
            f"@effect({effect!r}) is unknown", source=where, expected="one of " + ", ".join(EFFECTS)
        )
    if ann["confidence"] not in CONFIDENCES:
        raise PackError(
            f"@confidence({ann['confidence']!r}) is unknown",
            source=where,
            expected="one of " + ", ".join(CONFIDENCES),
        )
    requires = ann.get("requires") or None
    if effect == "requires":
        if requires not in AUTHORIZATIONS:
            raise PackError(
                f"@requires({requires!r}) is not a known authorization",
                source=where,
                expected="one of " + ", ".join(AUTHORIZATIONS),
            )
    elif requires:
        raise PackError('@requires is only meaningful with @effect("requires")', source=where)
    presumption = ann.get("presumption") or None
    if presumption is not None and presumption not in PRESUMPTIONS:
        raise PackError(
            f"@presumption({presumption!r}) is unknown",
            source=where,
            expected="one of " + ", ".join(PRESUMPTIONS),
        )
    odd = non_day_datetimes(est)
    if odd:
        raise PackError(
            f"datetime({odd[0][:40]!r}) is not a day: context.date is a day (midnight UTC), and "
            "a time or UTC offset puts the rule's boundary inside a day, where the decision "
            "depended on which dates were asked before",
            source=where,
            expected='a day, datetime("YYYY-MM-DD")',
        )
    until = ann.get("effective_until") or None
    start = _date(ann["effective_from"], where, "effective_from")
    end = _date(until, where, "effective_until") if until else None
    if end is not None and end < start:
        raise PackError(
            f"@effective_until({until!r}) is before @effective_from({ann['effective_from']!r}): "
            "the rule is never in force",
            source=where,
            expected="an end on or after the start (both inclusive)",
        )
    check_window(est, start, end, where)
    check_literals(est, where)
    check_reads(est, where)
    return Rule(
        id=ann["id"],
        pack=pack,
        file=file,
        line=stmt.line,
        title=ann["title"],
        citation=ann["citation"],
        confidence=ann["confidence"],
        effect=effect,
        reason=ann["reason"],
        effective_from=start,
        effective_until=end,
        requires=requires,
        presumption=presumption,
        reading=ann.get("reading") or None,
        text=stmt.text,
        est=est,
    )


def _check_reason(template: str, where: str) -> None:
    """A ``@reason`` uses only the documented placeholders, as plain ``{name}``: ``{0}`` was
    an IndexError when the rule applied, ``{chip.__class__}`` read a Python object's
    attributes, and a misspelt name rendered as '?'."""
    expected = "{name} with a name of docs/rule-packs.md (" + ", ".join(PLACEHOLDERS) + ")"
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise PackError(
            f"@reason is not a template: {exc}",
            source=where,
            expected=expected + "; {{ and }} for a brace",
        ) from None
    for _, name, spec, conversion in fields:
        if name is not None and (name not in PLACEHOLDERS or spec or conversion):
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise PackError(
                f"@reason uses the placeholder {{{shown}}}", source=where, expected=expected
            )


#: control characters a policy file may not hold: all but tab, line feed and carriage return,
#: and the bidirectional controls, which make a reviewer read other code than Cedar evaluates
#: (a comment holding U+202E ... U+2066 reordered the condition on screen: "Trojan Source")
_CEDAR_CONTROL = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI}]")


def _parse_policy_file(path: Path, pack: str, label: str) -> list[Rule]:
    text = read_pack_file(path, label)
    m = _CEDAR_CONTROL.search(text)
    if m:  # `rules show` prints the policy as written: an escape sequence reached the terminal
        raise PackError(
            f"holds the control character {m.group()!r}",
            source=f"{label}:{text.count(chr(10), 0, m.start()) + 1}",
            expected="printable text (in a Cedar string, an escape such as \\u{1b})",
        )
    statements = split_statements(text)
    if not statements:
        # an empty or truncated file: the pack replaced the shipped one of its name with no
        # rule at all, and every decision it made went silently
        raise PackError(
            "holds no policy",
            source=label,
            expected="at least one `permit (...) when { ... };` policy",
        )
    try:
        policies = parse_est(text)
    except CedarSyntaxError as whole:
        for stmt in statements:  # find the statement Cedar cannot parse, for its line
            try:
                parse_est(stmt.text)
            except CedarSyntaxError as exc:
                raise PackError(
                    f"Cedar syntax error: {exc}", source=f"{label}:{stmt.line}"
                ) from None
        raise PackError(f"Cedar syntax error: {whole}", source=label) from None
    if len(policies) != len(statements):
        raise PackError(
            f"found {len(policies)} policies but {len(statements)} statements",
            source=label,
            expected="one policy per `;`-terminated statement",
        )
    return [
        _rule_from(policies[f"policy{i}"], stmt, pack, label) for i, stmt in enumerate(statements)
    ]


def _digest(paths: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root)).encode())
        h.update(b"\0")
        h.update(read_pack_file(p, file_label(p)).encode("utf-8"))  # the bytes: it was UTF-8
        h.update(b"\0")
    return h.hexdigest()


def load_pack(path: Path) -> Pack:
    meta_path = path / "pack.yaml"
    if not meta_path.is_file():
        raise PackError("not a rule pack (no pack.yaml)", source=str(path))
    meta = load_yaml(meta_path)
    if meta is None:  # empty or truncated: it replaced the shipped pack of its directory's
        # name with one of version "0", no title and no jurisdiction, silently (a review)
        raise PackError(
            "pack.yaml is empty",
            source=str(meta_path),
            expected="a mapping: name, title, version, jurisdiction, changelog",
        )
    if not isinstance(meta, dict):
        raise PackError(
            "pack.yaml must be a mapping (name, title, version, ...)", source=str(meta_path)
        )
    where = file_label(meta_path)
    for key in ("name", "title", "jurisdiction", "description"):
        value = meta.get(key)
        if value is not None:
            # a description may be folded over lines (`>`); it is printed on one
            one_line(" ".join(value.split()) if isinstance(value, str) else value, where, key)
    name = meta.get("name") or path.name
    if not _ID.fullmatch(name):
        raise PackError(
            f"name {name[:80]!r} is not a pack name",
            source=where,
            expected="letters, digits, '.', '_' or '-' (it replaces the shipped pack of that name)",
        )
    cedar_files = sorted(path.glob("*.cedar"))
    refuse_strays_in(path)
    if not cedar_files:
        raise PackError("a pack needs at least one *.cedar file", source=str(path))
    rules: list[Rule] = []
    for f in cedar_files:
        rules.extend(_parse_policy_file(f, name, file_label(f)))
    groups_path = path / "groups.yaml"
    # exists, not is_file: a groups.yaml that is a FIFO or a device is refused by name, not
    # skipped (its rules then failed on groups they could not find)
    has_groups = groups_path.exists()
    groups = load_groups(groups_path, name, file_label(groups_path)) if has_groups else []
    deciding = [*cedar_files] + ([groups_path] if has_groups else [])
    files = [meta_path, *deciding]
    files += sorted((path / "cases").glob("*.yaml")) if (path / "cases").is_dir() else []
    version = version_text(meta.get("version", "0"), where, "version")
    return Pack(
        name=name,
        title=str(meta.get("title", name)),
        version=version,
        jurisdiction=str(meta.get("jurisdiction", "")),
        description=" ".join(str(meta.get("description", "")).split()),
        path=path,
        rules=tuple(rules),
        groups=tuple(groups),
        digest=_digest(files, path),
        policy_text="\n\n".join(r.text for r in rules),
        policy_digest=_digest(deciding, path),
        changelog=changelog(meta.get("changelog"), version, file_label(meta_path)),
    )


def file_label(path: Path) -> str:
    """A short, stable name for messages: packs/<pack>/<file> for shipped packs, the path as
    given for a user's. (Any path with a folder named ``packs`` was cut there: a user's
    ``/srv/packs/us-ear/`` read as the shipped ``packs/us-ear/``, a path not there.)"""
    shipped = builtin_packs_dir()
    if path.is_relative_to(shipped):
        return "/".join(("packs", *path.relative_to(shipped).parts))
    return str(path)


def builtin_packs_dir() -> Path:
    return Path(str(resources.files("straits.rules").joinpath("packs")))


def schema_text() -> str:
    return (builtin_packs_dir() / "straits.cedarschema").read_text(encoding="utf-8")


def discover(root: Path) -> list[Path]:
    """Pack directories under ``root`` (``root`` itself when it is a pack)."""
    from straits.fileio import probe

    there = probe(root)  # Path.exists() raised a name too long as a traceback
    if there is None:
        raise PackError("rules directory not found", source=str(root))
    if isinstance(there, OSError):
        raise PackError(f"cannot read: {there.strerror or there}", source=str(root))
    if (root / "pack.yaml").is_file():
        return [root]
    found = sorted(p.parent for p in root.glob("*/pack.yaml"))
    if found:
        refuse_strays_beside(root)
    if not found:
        raise PackError(
            "no rule packs here (a pack is a directory with pack.yaml)", source=str(root)
        )
    return found


def load_packs(extra_dirs: list[Path] | None = None) -> list[Pack]:
    """The shipped packs, then those under ``extra_dirs``; a later pack replaces one of the same
    name."""
    by_name: dict[str, Pack] = {}
    for d in discover(builtin_packs_dir()):
        p = load_pack(d)
        by_name[p.name] = p
    for root in extra_dirs or []:
        here: dict[str, Pack] = {}
        for d in discover(Path(root)):
            p = load_pack(d)
            if p.name in here:
                # two versions side by side (us-ear-old/, us-ear-new/): the one whose folder
                # sorted last replaced the other without a word
                raise PackError(
                    f"pack {p.name!r} is also in {here[p.name].path}: which one is meant?",
                    source=str(d),
                    expected="one pack of each name under a rules directory "
                    "(give other versions their own directory, as --packs or --base)",
                )
            here[p.name] = by_name[p.name] = p
    return list(by_name.values())
