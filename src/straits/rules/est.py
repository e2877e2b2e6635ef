"""Reading Cedar's JSON form (EST) of a policy: which attributes and literals it uses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from straits.model.types import Regime

REGIMES: tuple[str, ...] = Regime.__args__  # type: ignore[attr-defined]
NS = "Straits"


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def _is_context_attr(node: Any, attr: str) -> bool:
    return (isinstance(node, dict) and "." in node and node["."].get("attr") == attr
            and node["."].get("left") == {"Var": "context"})


def date_literals(est: dict[str, Any]) -> set[dt.date]:
    """Every ``datetime("...")`` literal in a policy."""
    out = set()
    for node in walk(est):
        if isinstance(node, dict) and "datetime" in node and isinstance(node["datetime"], list):
            for arg in node["datetime"]:
                if isinstance(arg, dict) and isinstance(arg.get("Value"), str):
                    out.add(dt.date.fromisoformat(arg["Value"][:10]))
    return out


def group_refs(est: dict[str, Any]) -> set[str]:
    """Ids of the ``Straits::Group`` entities a policy names."""
    out = set()
    for node in walk(est):
        if isinstance(node, dict) and "__entity" in node:
            ref = node["__entity"]
            if ref.get("type") == f"{NS}::Group":
                out.add(ref["id"])
    return out


def reads_attribute(est: dict[str, Any], attr: str) -> bool:
    return any(isinstance(n, dict) and n.get("attr") == attr for n in walk(est))


def date_comparisons(est: dict[str, Any]) -> set[tuple[str, dt.date]]:
    """(operator, date) for every ``context.date <op> datetime("...")`` in a policy."""
    out = set()
    for node in walk(est):
        if not isinstance(node, dict):
            continue
        for op in ("<", "<=", ">", ">=", "=="):
            cmp = node.get(op)
            if isinstance(cmp, dict) and _is_context_attr(cmp.get("left"), "date"):
                right = cmp.get("right", {})
                args = right.get("datetime") if isinstance(right, dict) else None
                if args and isinstance(args[0], dict) and isinstance(args[0].get("Value"), str):
                    out.add((op, dt.date.fromisoformat(args[0]["Value"][:10])))
    return out


def regimes(est: dict[str, Any]) -> tuple[str, ...]:
    """The regimes a policy can apply under (all of them unless it tests context.regime)."""
    named = set()
    for node in walk(est):
        if isinstance(node, dict) and isinstance(node.get("=="), dict):
            cmp = node["=="]
            if _is_context_attr(cmp.get("left"), "regime"):
                value = cmp.get("right", {}).get("Value")
                if isinstance(value, str):
                    named.add(value)
    return tuple(r for r in REGIMES if r in named) if named else REGIMES
