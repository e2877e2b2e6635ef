"""Pack versions compared: which policies were added, removed or changed, and how.

``diff_packs(before, after)`` matches packs by name and rules by id. A changed rule lists the
aspects that differ; those that change what the rule decides (its condition, effect,
authorization, presumption, window, regimes, or the members of a group it tests) make it
*changed in effect*, the others (title, citation, confidence, reason, reading) are *annotations
only*. Country groups are compared by membership too, since a policy that tests
``in Straits::Group::"..."`` changes with them. The
releases in the newer pack's changelog that the older one lacks say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from straits.rules.est import group_refs
from straits.rules.listing import rule_regimes
from straits.rules.pack_loader import Pack, Rule
from straits.rules.pack_meta import Group, Release

#: aspects of a rule that change what it decides (``groups``: the members of a group it tests)
EFFECT_ASPECTS = ("condition", "effect", "requires", "presumption", "window", "regimes", "groups")
ANNOTATION_ASPECTS = ("title", "citation", "confidence", "reason", "reading")


def _condition(rule: Rule) -> dict[str, Any]:
    """The policy's JSON form without its annotations: what Cedar evaluates."""
    return {k: v for k, v in rule.est.items() if k != "annotations"}


def aspects(a: Rule, b: Rule) -> tuple[str, ...]:
    """The aspects in which two versions of a rule differ."""
    out = []
    if _condition(a) != _condition(b):
        out.append("condition")
    for name in ("effect", "requires", "presumption"):
        if getattr(a, name) != getattr(b, name):
            out.append(name)
    if (a.effective_from, a.effective_until) != (b.effective_from, b.effective_until):
        out.append("window")
    if rule_regimes(a) != rule_regimes(b):
        out.append("regimes")
    out += [n for n in ANNOTATION_ASPECTS if getattr(a, n) != getattr(b, n)]
    return tuple(out)


def _window(r: Rule) -> str:
    return f"{r.effective_from} .. {r.effective_until or ''}".rstrip()


@dataclass(frozen=True)
class RuleChange:
    kind: Literal["added", "removed", "changed"]
    before: Rule | None
    after: Rule | None
    aspects: tuple[str, ...] = ()
    members: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()
    """(group, countries added, countries removed) of each group the rule tests whose
    members (its own and those of the groups it includes, in any pack) changed"""

    @property
    def rule(self) -> Rule:
        r = self.after or self.before
        assert r is not None
        return r

    @property
    def in_effect(self) -> bool:
        """Whether the change can change a decision (not only an annotation)."""
        return self.kind != "changed" or any(a in EFFECT_ASPECTS for a in self.aspects)

    def details(self) -> list[str]:
        """What changed, one line per aspect a person acts on."""
        a, b = self.before, self.after
        if a is None or b is None:
            return []
        out = []
        for name in self.aspects:
            if name == "window":
                out.append(f"in force {_window(a)} -> {_window(b)}")
            elif name == "regimes":
                out.append(f"regimes {', '.join(rule_regimes(a))} -> {', '.join(rule_regimes(b))}")
            elif name in ("effect", "requires", "presumption", "confidence"):
                out.append(f"{name} {getattr(a, name) or '-'} -> {getattr(b, name) or '-'}")
            elif name == "condition":
                out.append("condition changed (see `straits rules show`)")
            elif name == "groups":
                out += [
                    f"members of {g}: "
                    + " ".join([*(f"+{m}" for m in add), *(f"-{m}" for m in rm)])
                    for g, add, rm in self.members
                ]
            else:
                out.append(f"{name} reworded")
        return out

    def to_json(self) -> dict[str, Any]:
        r = self.rule
        return {
            "rule": r.id,
            "pack": r.pack,
            "change": self.kind,
            "in_effect": self.in_effect,
            "aspects": list(self.aspects),
            "details": self.details(),
            "effect": r.effect,
            "requires": r.requires,
            "presumption": r.presumption,
            "in_force": _window(r),
            "title": r.title,
            "citation": r.citation,
            "confidence": r.confidence,
        }


@dataclass(frozen=True)
class GroupChange:
    group: str
    pack: str
    kind: Literal["added", "removed", "changed"]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    includes: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    """(before, after) when the groups it includes changed"""

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "pack": self.pack,
            "change": self.kind,
            "members_added": list(self.added),
            "members_removed": list(self.removed),
            "includes": None
            if self.includes is None
            else {"before": list(self.includes[0]), "after": list(self.includes[1])},
        }


@dataclass(frozen=True)
class PackChange:
    pack: str
    before: str | None
    """the version before (None: the pack is new)"""
    after: str | None
    """the version after (None: the pack was removed)"""
    releases: tuple[Release, ...]
    rules: tuple[RuleChange, ...]
    groups: tuple[GroupChange, ...]
    unchanged: int
    released: bool | None = None
    """whether the newer pack's policies are those its newest changelog entry records (False:
    edited without a new version, so both sides may show one version number)"""

    @property
    def changed(self) -> bool:
        return bool(self.rules or self.groups) or self.before != self.after

    def to_json(self) -> dict[str, Any]:
        return {
            "pack": self.pack,
            "before": self.before,
            "after": self.after,
            "releases": [r.to_json() for r in self.releases],
            "rules": [c.to_json() for c in self.rules],
            "groups": [g.to_json() for g in self.groups],
            "unchanged": self.unchanged,
            "released": self.released,
        }


@dataclass(frozen=True)
class PackDiff:
    packs: tuple[PackChange, ...]

    @property
    def rules(self) -> list[RuleChange]:
        return [c for p in self.packs for c in p.rules]

    def count(self, kind: str) -> int:
        return sum(c.kind == kind for c in self.rules)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.count("added"),
            "removed": self.count("removed"),
            "changed_in_effect": sum(c.kind == "changed" and c.in_effect for c in self.rules),
            "changed_annotations_only": sum(
                c.kind == "changed" and not c.in_effect for c in self.rules
            ),
            "packs": [p.to_json() for p in self.packs if p.changed],
        }


def _groups(a: tuple[Group, ...], b: tuple[Group, ...], pack: str) -> list[GroupChange]:
    before, after = {g.id: g for g in a}, {g.id: g for g in b}
    out = []
    for gid in sorted(before.keys() | after.keys()):
        x, y = before.get(gid), after.get(gid)
        mx, my = set(x.members if x else ()), set(y.members if y else ())
        ix, iy = tuple(x.includes if x else ()), tuple(y.includes if y else ())
        if mx != my or ix != iy or (x is None) != (y is None):
            kind: Literal["added", "removed", "changed"] = (
                "added" if x is None else "removed" if y is None else "changed"
            )
            out.append(
                GroupChange(
                    gid,
                    pack,
                    kind,
                    tuple(sorted(my - mx)),
                    tuple(sorted(mx - my)),
                    (ix, iy) if ix != iy else None,
                )
            )
    return out


def _memberships(packs: list[Pack]) -> dict[str, frozenset[str]]:
    """Every group's countries, its own and those of the groups it includes (acyclic: the
    loader refuses a circle)."""
    groups = {g.id: g for p in packs for g in p.groups}
    out: dict[str, frozenset[str]] = {}

    def members(gid: str) -> frozenset[str]:
        if gid not in out:
            g = groups.get(gid)
            own = set(g.members) if g else set()
            for inc in g.includes if g else ():
                own |= members(inc)
            out[gid] = frozenset(own)
        return out[gid]

    for gid in groups:
        members(gid)
    return out


def _releases(before: Pack | None, after: Pack | None) -> tuple[Release, ...]:
    if after is None:
        return ()
    known = {r.version for r in before.changelog} if before is not None else set()
    return tuple(r for r in after.changelog if r.version not in known)


def diff_packs(before: list[Pack], after: list[Pack]) -> PackDiff:
    """What changes from the pack set ``before`` to ``after``."""
    old, new = {p.name: p for p in before}, {p.name: p for p in after}
    # a group's new member changes every rule testing it (or a group including it), in any
    # pack: `ear-d5: +SG` was '0 changed in effect' while the D:5 rules now reached Singapore
    ma, mb = _memberships(before), _memberships(after)
    out = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        ra = {r.id: r for r in (a.rules if a else ())}
        rb = {r.id: r for r in (b.rules if b else ())}
        changes: list[RuleChange] = []
        unchanged = 0
        for rid in [*rb, *(r for r in ra if r not in rb)]:
            x, y = ra.get(rid), rb.get(rid)
            if x is None:
                changes.append(RuleChange("added", None, y))
            elif y is None:
                changes.append(RuleChange("removed", x, None))
            else:
                moved = tuple(
                    (g, tuple(sorted(mb[g] - ma[g])), tuple(sorted(ma[g] - mb[g])))
                    for g in sorted(group_refs(x.est) & group_refs(y.est))
                    if g in ma and g in mb and ma[g] != mb[g]
                )
                diff = aspects(x, y) + (("groups",) if moved else ())
                if diff:
                    changes.append(RuleChange("changed", x, y, diff, moved))
                else:
                    unchanged += 1
        out.append(
            PackChange(
                name,
                a.version if a else None,
                b.version if b else None,
                _releases(a, b),
                tuple(changes),
                tuple(_groups(a.groups if a else (), b.groups if b else (), name)),
                unchanged,
                b.released if b else None,
            )
        )
    return PackDiff(tuple(out))
