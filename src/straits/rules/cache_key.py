"""Cache keys made of exactly what the policies read.

Reading every loaded policy (its JSON form), :class:`KeyPlan` finds each context attribute the
policies use and how:

* attributes no policy reads are left out of the key (so the tenant's authorizations, applied
  after Cedar, do not split the cache);
* an attribute used only in comparisons with literals (``context.date >= datetime("...")``,
  ``context.weights.training_ops_e18 > 100000000``) is replaced by where its value falls among
  those literals, which fixes the truth of every comparison: two requests that agree on it get
  the same answer from Cedar;
* anything else (arithmetic, ``contains``, entity membership) is kept exactly;
* an entity reference stands for all its attributes (they live in the entity store).

The key is therefore exact by construction: requests with equal keys are indistinguishable to
the policies. A property test checks cached answers against raw Cedar.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections.abc import Hashable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from straits.rules.est import walk

COMPARISONS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
Path = tuple[str, ...]
MISSING = "<missing>"
_ATOMS = (str, int, float, bool, tuple, type(None))
#: how :meth:`KeyPlan.key` reads a path: whether it is there, its value, its position
_PRESENCE, _EXACT, _COMPARED = 0, 1, 2


def _context_path(node: Any) -> Path | None:
    """('data', 'subjects') for the expression ``context.data.subjects``."""
    attrs: list[str] = []
    while isinstance(node, dict) and "." in node:
        attrs.append(node["."]["attr"])
        node = node["."]["left"]
    if node == {"Var": "context"}:
        return tuple(reversed(attrs))
    return None


def _literal(node: Any) -> Any:
    """The Python value of a literal operand, or None when it is not a literal."""
    if not isinstance(node, dict):
        return None
    if (
        "Value" in node
        and isinstance(node["Value"], int | str)
        and not isinstance(node["Value"], bool)
    ):
        return node["Value"]
    for fn in ("datetime", "decimal"):
        args = node.get(fn)
        if isinstance(args, list) and args and isinstance(args[0], dict):
            return _extension(fn, args[0].get("Value"))
    return None


def _extension(fn: str, arg: Any) -> Any:
    if not isinstance(arg, str):
        return None
    return _parse_extension(fn, arg)


@lru_cache(maxsize=4096)
def _parse_extension(fn: str, arg: str) -> Any:
    """The Python value of a Cedar extension literal: a pure function of its arguments (the
    planner's contexts carry the same few dates again and again)."""
    try:
        return dt.date.fromisoformat(arg[:10]) if fn == "datetime" else Decimal(arg)
    except (ValueError, InvalidOperation):
        return None


class KeyPlan:
    """How to turn a Cedar context into a cache key, for one set of policies."""

    def __init__(self, ests: list[dict[str, Any]]) -> None:
        self.thresholds: dict[Path, set[tuple[str, Any]]] = {}
        self.exact: set[Path] = set()
        self.presence: set[Path] = set()
        for est in ests:
            self._scan(est)
        # a path kept exactly covers the comparisons under it
        self.thresholds = {
            p: t
            for p, t in self.thresholds.items()
            if not any(p[: len(e)] == e for e in self.exact)
        }
        # the truth of every comparison with the literals L is fixed by where the value falls
        # among them: (bisect_left(L, v), bisect_right(L, v)); literals of one path share a type
        self._plan = [
            (p, tuple(sorted({lit for _, lit in t}))) for p, t in sorted(self.thresholds.items())
        ]
        self._exact = sorted(self.exact)
        self._presence = sorted(self.presence)
        self._steps = self._compiled()

    def _compiled(self) -> list[tuple[int, str, str | None, Path, tuple[Any, ...]]]:
        """What :meth:`key` reads, in its order: (kind, first step, second step of a two-step
        path else None, the path, the literals of a comparison)."""
        return [
            (kind, path[0], path[1] if len(path) == 2 else None, path, tests)
            for kind, path, tests in (
                *((_PRESENCE, p, ()) for p in self._presence),
                *((_EXACT, p, ()) for p in self._exact),
                *((_COMPARED, p, t) for p, t in self._plan),
            )
        ]

    def _scan(self, est: dict[str, Any]) -> None:
        compared: set[int] = set()
        for node in walk(est):
            if not isinstance(node, dict):
                continue
            for op in COMPARISONS:
                cmp = node.get(op)
                if not isinstance(cmp, dict) or "left" not in cmp:
                    continue
                for side, other in (("left", "right"), ("right", "left")):
                    path = _context_path(cmp.get(side))
                    lit = _literal(cmp.get(other))
                    if path is not None and lit is not None:
                        flipped = (
                            op
                            if side == "left"
                            else {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
                        )
                        self.thresholds.setdefault(path, set()).add((flipped, lit))
                        compared.add(id(cmp[side]))
            has = node.get("has")
            if isinstance(has, dict):
                base = _context_path(has.get("left"))
                if base is not None:
                    self.presence.add((*base, has["attr"]))
        for node in walk(est):
            if isinstance(node, dict) and "." in node and id(node) not in compared:
                path = _context_path(node)
                if path is not None and not self._is_inner(node, est):
                    self.exact.add(path)

    @staticmethod
    def _is_inner(node: dict[str, Any], est: dict[str, Any]) -> bool:
        """Whether ``node`` is the left part of a longer attribute chain."""
        for other in walk(est):
            if isinstance(other, dict) and "." in other and other["."]["left"] is node:
                return True
        return False

    def position(self, path: Path, value: Any) -> Hashable:
        """What the policies can tell about ``value`` at ``path``: its position among the
        literals it is compared with, the value itself if it is read otherwise, or None if no
        policy reads it."""
        for p, tests in self._plan:
            if p == path:
                return (bisect_left(tests, value), bisect_right(tests, value))
        return value if path in self.exact else None

    def key(self, action: str, ctx: dict[str, Any]) -> Hashable:
        """The same tuple for requests the policies cannot tell apart: for each path with a
        presence test whether it is there, for each path read exactly its value, for each path
        compared with literals its position among them. Each value is read as :func:`_get`
        reads it, written out here for paths of one or two steps (this runs for every request
        a plan asks, once per part of the policies)."""
        parts: list[Hashable] = [action]
        for kind, head, attr, path, tests in self._steps:
            node = ctx.get(head, MISSING)
            if attr is not None:
                if type(node) is not dict:
                    node = MISSING
                elif "__entity" in node and node["__entity"] is not None:
                    node = ("E", node["__entity"]["id"])
                else:
                    node = node.get(attr, MISSING)
            elif len(path) > 1:
                node = _get(ctx, path)
            if type(node) is dict and "__entity" in node and node["__entity"] is not None:
                node = ("E", node["__entity"]["id"])
            if kind == _PRESENCE:
                parts.append(node is not MISSING)
            elif kind == _EXACT:
                parts.append(node if type(node) in _ATOMS else _freeze(node))
            else:
                parts.append(_position(tests, node))
        return tuple(parts)


def _position(tests: tuple[Any, ...], v: Any) -> Hashable:
    """Where ``v`` falls among the sorted literals ``tests`` (a value of another kind: itself)."""
    if isinstance(v, dict) and "__extn" in v:
        v = _extension(v["__extn"]["fn"], v["__extn"]["arg"])
    elif v is MISSING or isinstance(v, tuple | dict | list):
        return _freeze(v)
    try:
        return (bisect_left(tests, v), bisect_right(tests, v))
    except TypeError:  # a value of another type than the literals: keep it exactly
        return _freeze(v)


def _get(ctx: dict[str, Any], path: Path) -> Any:
    """The value at ``path``; an entity reference met on the way stands for the rest."""
    node: Any = ctx.get(path[0], MISSING)
    for attr in path[1:]:
        if type(node) is not dict:
            return MISSING
        ref = node.get("__entity")
        if ref is not None:
            return ("E", ref["id"])
        node = node.get(attr, MISSING)
    if type(node) is dict:
        ref = node.get("__entity")
        if ref is not None:
            return ("E", ref["id"])
    return node


def _freeze(v: Any) -> Hashable:
    if isinstance(v, str | int | float | bool | tuple) or v is None:
        return v
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return repr(v)
