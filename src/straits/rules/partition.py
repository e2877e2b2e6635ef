"""Policies split by the request attributes they read, each part evaluated and cached apart.

Chip rules (export controls) do not read the data a stage uses, and data rules (PIPL, GDPR) do
not read the chip. Evaluated together, every (chip x dataset) combination is a new question;
evaluated apart, each part is keyed by its own attributes, so the planner's questions repeat far
more often. Parts are formed by which of the large context records (``chip``, ``data``,
``weights``) a policy reads; a request's applicable rules are the union over the parts. Each part
sees only the records it reads, so Cedar also parses less.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from straits.rules.cache_key import KeyPlan, _context_path
from straits.rules.cedar import Evaluator
from straits.rules.est import walk
from straits.rules.pack_loader import Rule

#: optional context records a part may leave out when none of its policies read them
SEPARABLE = ("chip", "data", "weights", "ships_from")


def roots(rule: Rule) -> frozenset[str]:
    """The top-level context attributes a policy reads."""
    out: set[str] = set()
    for node in walk(rule.est):
        if not isinstance(node, dict):
            continue
        path = _context_path(node) if "." in node else None
        if path:
            out.add(path[0])
        has = node.get("has")
        if isinstance(has, dict) and has.get("left") == {"Var": "context"}:
            out.add(str(has["attr"]))
    return frozenset(out)


@dataclass
class Part:
    rules: list[int]
    """indexes of the part's rules in the rule set"""
    reads: frozenset[str]
    evaluator: Evaluator
    keys: KeyPlan

    def context(self, ctx: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in ctx.items() if k not in SEPARABLE or k in self.reads}

    def key(self, action: str, ctx: dict[str, Any]) -> Hashable:
        return self.keys.key(action, ctx)


def partition(rules: list[Rule], entities: list[dict[str, Any]], schema: str) -> list[Part]:
    by_reads: dict[frozenset[str], list[int]] = {}
    for i, r in enumerate(rules):
        by_reads.setdefault(roots(r) & frozenset(SEPARABLE), []).append(i)
    parts = []
    for reads, idx in sorted(by_reads.items(), key=lambda kv: sorted(kv[0])):
        text = "\n\n".join(rules[i].text for i in idx)
        parts.append(
            Part(
                idx, reads, Evaluator(text, entities, schema), KeyPlan([rules[i].est for i in idx])
            )
        )
    return parts
