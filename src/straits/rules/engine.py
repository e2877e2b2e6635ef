"""The rule engine: loaded packs, one Cedar policy set, decisions with a cache.

``RuleSet.check(request)`` evaluates every shipped (and user) policy with Cedar and combines the
applicable ones into a :class:`~straits.rules.decision.Decision`. The planner asks the same
question many times, so results are cached by the attributes the policies read; the date is
reduced to the interval between the rules' own date literals, which is exact because policies
only compare ``context.date`` with date literals (checked when the packs load).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from straits.catalog import is_country
from straits.errors import PackError, RequestError
from straits.model.request import CheckRequest
from straits.rules.cedar import CedarSyntaxError, Evaluator, check_schema, validate
from straits.rules.context import NS, build_request
from straits.rules.decision import Decision, combine, template_values
from straits.rules.pack_loader import Group, Pack, Rule, load_packs, schema_text


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _date_literals(est: dict[str, Any]) -> set[dt.date]:
    out = set()
    for node in _walk(est):
        if isinstance(node, dict) and "datetime" in node and isinstance(node["datetime"], list):
            for arg in node["datetime"]:
                if isinstance(arg, dict) and isinstance(arg.get("Value"), str):
                    out.add(dt.date.fromisoformat(arg["Value"][:10]))
    return out


def _group_refs(est: dict[str, Any]) -> set[str]:
    out = set()
    for node in _walk(est):
        if isinstance(node, dict) and "__entity" in node:
            ref = node["__entity"]
            if ref.get("type") == f"{NS}::Group":
                out.add(ref["id"])
    return out


class RuleSet:
    """Every loaded rule, evaluated together."""

    def __init__(self, packs: list[Pack]) -> None:
        self.packs = packs
        self.rules: list[Rule] = [r for p in packs for r in p.rules]
        self._by_id: dict[str, Rule] = {}
        for r in self.rules:
            if r.id in self._by_id:
                other = self._by_id[r.id]
                raise PackError(f"duplicate rule id {r.id!r} (also {other.file}:{other.line})",
                                source=f"{r.file}:{r.line}", expected="ids unique across packs")
            self._by_id[r.id] = r
        self.groups = self._check_groups([g for p in packs for g in p.groups])
        self.schema = schema_text()
        policy_text = "\n\n".join(p.policy_text for p in packs if p.rules)
        self._validate(policy_text)
        self._evaluator = Evaluator(policy_text, self._entities(), self.schema)
        literals = set().union(*(_date_literals(r.est) for r in self.rules))
        literals |= {r.effective_from for r in self.rules}
        literals |= {r.effective_until + dt.timedelta(days=1) for r in self.rules
                     if r.effective_until}
        # both d and d+1 so that <, <=, >, >= against any literal stay exact
        self._breaks = sorted(literals | {d + dt.timedelta(days=1) for d in literals})
        self._cache: dict[str, tuple[int, ...]] = {}
        # authorizations are applied after Cedar, unless a policy reads them itself
        self._reads_auths = any(
            isinstance(n, dict) and n.get("attr") == "authorizations"
            for r in self.rules for n in _walk(r.est))
        self.evaluations = 0

    # --- loading ---------------------------------------------------------------------------
    def _check_groups(self, groups: list[Group]) -> dict[str, Group]:
        by_id: dict[str, Group] = {}
        for g in groups:
            if g.id in by_id:
                raise PackError(f"group {g.id!r} defined twice (packs {by_id[g.id].pack} and "
                                f"{g.pack})", source=f"packs/{g.pack}/groups.yaml")
            by_id[g.id] = g
        for g in groups:
            for inc in g.includes:
                if inc not in by_id:
                    raise PackError(f"group {g.id!r} includes unknown group {inc!r}",
                                    source=f"packs/{g.pack}/groups.yaml")
        for r in self.rules:
            for ref in _group_refs(r.est):
                if ref not in by_id:
                    raise PackError(f"policy refers to unknown group {ref!r}",
                                    source=f"{r.file}:{r.line}",
                                    expected="a group defined in a pack's groups.yaml")
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
                raise PackError(f"policy {r.id!r} does not fit the schema: {p.message}",
                                source=f"{r.file}:{r.line}")
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
            ents.append({"uid": {"type": f"{NS}::Group", "id": g.id}, "attrs": {},
                         "parents": [{"type": f"{NS}::Group", "id": outer}
                                     for outer in included_by.get(g.id, [])]})
        for c in pycountry.countries:
            code = c.alpha_2
            ents.append({"uid": {"type": f"{NS}::Country", "id": code}, "attrs": {},
                         "parents": [{"type": f"{NS}::Group", "id": g}
                                     for g in parents.get(code, [])]})
        return ents

    # --- queries ---------------------------------------------------------------------------
    def rule(self, rule_id: str) -> Rule:
        try:
            return self._by_id[rule_id]
        except KeyError:
            raise RequestError(f"unknown rule {rule_id!r}",
                               expected="an id from `straits rules list`") from None

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

    def date_bucket(self, d: dt.date) -> dt.date:
        """The first day of the interval between rule dates that holds ``d``."""
        i = bisect.bisect_right(self._breaks, d)
        return self._breaks[i - 1] if i > 0 else dt.date.min

    def _key(self, req: CheckRequest) -> tuple[str, dt.date]:
        bucket = self.date_bucket(req.date)
        rep = max(bucket, dt.date(1, 1, 1))
        payload = req.model_dump(mode="json", exclude={"date"})
        if not self._reads_auths:
            payload["tenant"].pop("authorizations", None)
        return json.dumps(payload, sort_keys=True) + "|" + rep.isoformat(), rep

    def applicable(self, requests: list[CheckRequest], *, use_cache: bool = True
                   ) -> list[list[Rule]]:
        """The rules whose conditions hold, for each request (one Cedar batch for the misses)."""
        keys = [self._key(r) for r in requests]
        out: list[tuple[int, ...] | None] = [
            self._cache.get(k) if use_cache else None for k, _ in keys]
        missing = [i for i, hit in enumerate(out) if hit is None]
        if missing:
            cedar_reqs = [build_request(requests[i], keys[i][1]) for i in missing]
            try:
                results = self._evaluator.satisfied(cedar_reqs)
            except ValueError as exc:
                raise RequestError(f"the rules could not evaluate this request: {exc}") from None
            self.evaluations += len(missing)
            for i, idx in zip(missing, results, strict=True):
                out[i] = tuple(idx)
                if use_cache:
                    self._cache[keys[i][0]] = tuple(idx)
        return [[self.rules[j] for j in hit or ()] for hit in out]

    def check(self, req: CheckRequest, *, use_cache: bool = True) -> Decision:
        return self.check_many([req], use_cache=use_cache)[0]

    def check_many(self, requests: list[CheckRequest], *, use_cache: bool = True
                   ) -> list[Decision]:
        applicable = self.applicable(requests, use_cache=use_cache)
        return [combine(rules, req, template_values(req))
                for rules, req in zip(applicable, requests, strict=True)]

    def clear_cache(self) -> None:
        self._cache.clear()

    @property
    def cache_size(self) -> int:
        return len(self._cache)


@cache
def _default() -> RuleSet:
    return RuleSet(load_packs())


def ruleset(extra_dirs: tuple[Path, ...] = ()) -> RuleSet:
    """The shipped rules (parsed once per process), plus packs under ``extra_dirs``."""
    if not extra_dirs:
        return _default()
    return RuleSet(load_packs(list(extra_dirs)))
