"""The rule engine: loaded packs, one Cedar policy set, decisions with a cache.

``RuleSet.check(request)`` evaluates every shipped (and user) policy with Cedar and combines the
applicable ones into a :class:`~straits.rules.decision.Decision`. The planner asks the same
question many times, so results are cached by exactly what the policies read
(:mod:`straits.rules.cache_key`), and whole decisions are memoized by request.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Hashable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from straits.catalog import catalog, is_country
from straits.errors import PackError, RequestError
from straits.model.request import CheckRequest
from straits.rules.cache_key import KeyPlan
from straits.rules.cedar import CedarSyntaxError, Evaluator, check_schema, validate
from straits.rules.context import NS, build_request, chip_entity
from straits.rules.decision import Decision, combine, template_values
from straits.rules.est import group_refs
from straits.rules.pack_loader import Pack, Rule, load_packs, schema_text
from straits.rules.pack_meta import Group
from straits.rules.partition import partition

#: most decisions memoized before the memo starts over (bounds memory in long-running servers)
DECISION_MEMO = 200_000


class RuleSet:
    """Every loaded rule, evaluated together."""

    def __init__(self, packs: list[Pack]) -> None:
        self.packs = packs
        self.rules: list[Rule] = [r for p in packs for r in p.rules]
        self._by_id: dict[str, Rule] = {}
        for r in self.rules:
            if r.id in self._by_id:
                other = self._by_id[r.id]
                raise PackError(
                    f"duplicate rule id {r.id!r} (also {other.file}:{other.line})",
                    source=f"{r.file}:{r.line}",
                    expected="ids unique across packs",
                )
            self._by_id[r.id] = r
        self.groups = self._check_groups([g for p in packs for g in p.groups])
        self.schema = schema_text()
        policy_text = "\n\n".join(p.policy_text for p in packs if p.rules)
        self._validate(policy_text)
        entities = self._entities()
        self.entities = entities
        """the entity graph (groups, countries, chips) every evaluation uses"""
        self._evaluator = Evaluator(policy_text, entities, self.schema)  # all policies at once
        self._parts = partition(self.rules, entities, self.schema)
        self._keys = KeyPlan([r.est for r in self.rules])
        self._cache: list[dict[Hashable, tuple[int, ...]]] = [{} for _ in self._parts]
        self._decisions: dict[CheckRequest, Decision] = {}
        self.evaluations = 0

    # --- loading ---------------------------------------------------------------------------
    def _check_groups(self, groups: list[Group]) -> dict[str, Group]:
        by_id: dict[str, Group] = {}
        for g in groups:
            if g.id in by_id:
                raise PackError(
                    f"group {g.id!r} defined twice (packs {by_id[g.id].pack} and {g.pack})",
                    source=g.file or f"packs/{g.pack}/groups.yaml",
                )
            by_id[g.id] = g
        for g in groups:
            for inc in g.includes:
                if inc not in by_id:
                    raise PackError(
                        f"group {g.id!r} includes unknown group {inc!r}",
                        source=g.file or f"packs/{g.pack}/groups.yaml",
                    )
        _refuse_include_cycles(by_id)
        for r in self.rules:
            for ref in group_refs(r.est):
                if ref not in by_id:
                    raise PackError(
                        f"policy refers to unknown group {ref!r}",
                        source=f"{r.file}:{r.line}",
                        expected="a group defined in a pack's groups.yaml",
                    )
        return by_id

    def _validate(self, policy_text: str) -> None:
        try:
            check_schema(self.schema)
            problems = validate(policy_text, self.schema)
        except CedarSyntaxError as exc:
            raise PackError(f"Cedar error: {exc}", source="packs/straits.cedarschema") from None
        if problems:
            p = problems[0]
            if p.policy_index is not None and p.policy_index < len(self.rules):
                r = self.rules[p.policy_index]
                # Cedar's message opens with its positional id (`for policy `policy55`, `),
                # which no pack holds: the rule is named already
                message = re.sub(r"^for policy `policy\d+`, ", "", p.message)
                raise PackError(
                    f"policy {r.id!r} does not fit the schema: {_named(message, self.rules)}",
                    source=f"{r.file}:{r.line}",
                )
            raise PackError(f"schema validation failed: {p.message}")

    def _entities(self) -> list[dict[str, Any]]:
        import pycountry

        parents: dict[str, list[str]] = {}
        for g in self.groups.values():
            for m in g.members:
                parents.setdefault(m, []).append(g.id)
        included_by: dict[str, list[str]] = {}
        for g in self.groups.values():
            for inc in g.includes:
                included_by.setdefault(inc, []).append(g.id)
        ents: list[dict[str, Any]] = []
        for g in self.groups.values():
            ents.append(
                {
                    "uid": {"type": f"{NS}::Group", "id": g.id},
                    "attrs": {},
                    "parents": [
                        {"type": f"{NS}::Group", "id": outer} for outer in included_by.get(g.id, [])
                    ],
                }
            )
        ents += [chip_entity(c) for c in catalog()]
        for c in pycountry.countries:
            code = c.alpha_2
            ents.append(
                {
                    "uid": {"type": f"{NS}::Country", "id": code},
                    "attrs": {},
                    "parents": [{"type": f"{NS}::Group", "id": g} for g in parents.get(code, [])],
                }
            )
        return ents

    # --- queries ---------------------------------------------------------------------------
    def rule(self, rule_id: str) -> Rule:
        try:
            return self._by_id[rule_id]
        except KeyError:
            raise RequestError(
                f"unknown rule {rule_id!r}", expected="an id from `straits rules list`"
            ) from None

    def in_group(self, country: str, group: str) -> bool:
        seen: set[str] = set()

        def walk(gid: str) -> bool:
            if gid in seen or gid not in self.groups:
                return False
            seen.add(gid)
            g = self.groups[gid]
            return country in g.members or any(walk(i) for i in g.includes)

        return is_country(country) and walk(group)

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for p in sorted(self.packs, key=lambda p: p.name):
            h.update(f"{p.name}@{p.version}:{p.digest}\n".encode())
        return h.hexdigest()

    def applicable(
        self, requests: list[CheckRequest], *, use_cache: bool = True
    ) -> list[list[Rule]]:
        """The rules whose conditions hold, for each request. Each part of the policies
        (:mod:`straits.rules.partition`) is asked about its own misses in one Cedar batch."""
        cedar_reqs = [build_request(r) for r in requests]
        found: list[list[int]] = [[] for _ in requests]
        for part, memo in zip(self._parts, self._cache, strict=True):
            ctxs = [part.context(c["context"]) for c in cedar_reqs]
            keys: list[Hashable] = [
                part.key(r.action, ctx) for r, ctx in zip(requests, ctxs, strict=True)
            ]
            out: list[tuple[int, ...] | None] = [memo.get(k) if use_cache else None for k in keys]
            missing = [i for i, hit in enumerate(out) if hit is None]
            if missing:
                # one Cedar evaluation per distinct key (a batch often repeats a question)
                first: dict[Hashable, int] = {}
                for i in missing:
                    first.setdefault(keys[i] if use_cache else i, i)
                unique = list(first.values())
                batch = [{**cedar_reqs[i], "context": ctxs[i]} for i in unique]
                try:
                    results = part.evaluator.satisfied(batch)
                except ValueError as exc:
                    raise RequestError(
                        "the rules could not evaluate this request: "
                        + _named(str(exc), [self.rules[j] for j in part.rules])
                    ) from None
                self.evaluations += len(unique)
                answers = {
                    keys[i] if use_cache else i: tuple(part.rules[j] for j in idx)
                    for i, idx in zip(unique, results, strict=True)
                }
                for i in missing:
                    out[i] = answers[keys[i] if use_cache else i]
                if use_cache:
                    memo.update(answers)
            for i, hit in enumerate(out):
                found[i] += hit or ()
        return [[self.rules[j] for j in sorted(idx)] for idx in found]

    def position(self, path: tuple[str, ...], value: object) -> Hashable:
        """How the loaded policies see ``value`` at context ``path`` (see KeyPlan.position)."""
        return self._keys.position(path, value)

    def check(self, req: CheckRequest, *, use_cache: bool = True) -> Decision:
        return self.check_many([req], use_cache=use_cache)[0]

    def check_many(self, requests: list[CheckRequest], *, use_cache: bool = True) -> list[Decision]:
        """Decisions for ``requests``. With the cache, a request asked before (same date,
        same everything) is answered from a memo of decisions, and one that differs only in
        what the policies do not read reuses Cedar's answer."""
        out: list[Decision | None] = [
            self._decisions.get(r) if use_cache else None for r in requests
        ]
        todo = [i for i, d in enumerate(out) if d is None]
        if todo:
            asked = [requests[i] for i in todo]
            applicable = self.applicable(asked, use_cache=use_cache)
            for i, rules, req in zip(todo, applicable, asked, strict=True):
                d = combine(rules, req, template_values(req))
                out[i] = d
                if use_cache:
                    if len(self._decisions) >= DECISION_MEMO:
                        self._decisions.clear()
                    self._decisions[req] = d
        return [d for d in out if d is not None]

    def clear_cache(self) -> None:
        for memo in self._cache:
            memo.clear()
        self._decisions.clear()

    @property
    def cache_size(self) -> int:
        return sum(len(c) for c in self._cache)


_POLICY_ID = re.compile(r"`policy(\d+)`")


def _named(message: str, rules: list[Rule]) -> str:
    """Cedar's message with its positional policy ids (`policy1`) replaced by the rule's id,
    file and line: a failing rule was named by an id no pack holds."""

    def name(m: re.Match[str]) -> str:
        i = int(m.group(1))
        if i >= len(rules):
            return m.group(0)
        r = rules[i]
        return f"`{r.id}` ({r.file}:{r.line})"

    return _POLICY_ID.sub(name, message)


@cache
def _default() -> RuleSet:
    return RuleSet(load_packs())


def ruleset(
    extra_dirs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = (),
) -> RuleSet:
    """The shipped rules (parsed once per process), plus packs under ``extra_dirs``: one
    directory (text or a path) or several. One given as text was read letter by letter
    (``ruleset("my-packs")``: 'm: rules directory not found'), as a ``Path`` a TypeError.
    ``None`` is none, as ``()`` (it read the shipped rules before pack51; rev51)."""
    given: Any = () if extra_dirs is None else extra_dirs  # a library caller's: anything
    whole = isinstance(given, str | os.PathLike)
    try:
        items: list[object] = [given] if whole else list(given)
    except TypeError:  # a number
        items, whole = [given], True
    dirs: list[Path] = []
    for i, d in enumerate(items):
        if not isinstance(d, str | os.PathLike) or isinstance(os.fspath(d), bytes):
            raise RequestError(
                f"got {type(d).__name__}, not a directory",
                path="extra_dirs" if whole else f"extra_dirs[{i}]",
                expected="a directory of rule packs (text or a path), or a list of them",
            )
        dirs.append(Path(d))
    if not dirs:
        return _default()
    return RuleSet(load_packs(dirs))


def _refuse_include_cycles(groups: dict[str, Group]) -> None:
    """Groups that include themselves, directly or through others: Cedar's entity hierarchy
    must be acyclic, and it answered with a 'transitive closure' error traceback in every
    command loading the packs."""
    done: set[str] = set()
    for start in groups:
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            gid, i = stack.pop()
            if i == 0:
                if gid in on_path:
                    cycle = [*path[path.index(gid) :], gid]
                    g = groups[cycle[0]]
                    raise PackError(
                        "groups include each other in a circle: " + " -> ".join(cycle),
                        source=g.file or f"packs/{g.pack}/groups.yaml",
                        expected="groups that include others without coming back to themselves",
                    )
                if gid in done:
                    continue
                path.append(gid)
                on_path.add(gid)
            includes = groups[gid].includes
            if i < len(includes):
                stack.append((gid, i + 1))
                stack.append((includes[i], 0))
            else:
                path.pop()
                on_path.discard(gid)
                done.add(gid)
