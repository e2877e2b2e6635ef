"""What the loader holds a policy to beyond Cedar's schema: its window annotations say what its
condition's dates say, and the values it compares with are values a request can carry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, get_args

from straits.catalog import catalog, is_country
from straits.errors import PackError, UnknownChipError
from straits.model.types import AUTHORIZATIONS, DataClass
from straits.rules.est import (
    REGIMES,
    _is_context_attr,
    _regime_tests,
    date_problem,
    date_window,
    regime_problem,
    walk,
)


def check_window(est: dict[str, Any], start: dt.date, end: dt.date | None, where: str) -> None:
    """The annotations say what the condition's dates say: `rules list`, `rules diff` and the
    boundary tables read the annotations, `check` the condition, and an off-by-one between
    them (``@effective_from("2025-04-09")`` over ``context.date >= datetime("2025-04-10")``)
    listed a rule as in force on a day it did not apply."""
    if why := regime_problem(est):
        raise PackError(why, source=where, expected='`when { ... && context.regime == "X" }`')
    if why := date_problem(est):
        raise PackError(
            why, source=where, expected='`when { ... && context.date >= datetime("YYYY-MM-DD") }`'
        )
    first, last = date_window(est)
    if first is None:
        raise PackError(
            f"@effective_from({start.isoformat()!r}) but no top-level `context.date >=` "
            "comparison starts the condition: `check` would apply the rule every day, before "
            "its start too, where the listings say it is not in force",
            source=where,
            expected=f'`when {{ ... && context.date >= datetime("{start.isoformat()}") }}`',
        )
    if first != start:
        raise PackError(
            f"@effective_from({start.isoformat()!r}) but the condition applies from "
            f"{first.isoformat()}",
            source=where,
            expected="the first day the condition's `context.date` comparisons allow",
        )
    if last != end:
        said = f"@effective_until({end.isoformat()!r})" if end else "no @effective_until"
        found = (
            f"its last day is {last.isoformat()}"
            if last
            else "no top-level `context.date <`/`<=` comparison ends it"
        )
        raise PackError(
            f"{said} but the condition's {found}",
            source=where,
            expected="the last day the condition's `context.date` comparisons allow (inclusive)",
        )


#: the list attributes whose ``contains`` literals must be among the values a request carries
_MEMBERS = {
    ("data", "classes"): ("data class", get_args(DataClass)),
    ("tenant", "authorizations"): ("authorization", AUTHORIZATIONS),
}


def check_literals(est: dict[str, Any], where: str) -> None:
    """The values a policy compares request facts with are values a request can carry. A
    misspelt one (``Straits::Country::"sg"``, ``context.chip.id == "h100-sxm"``,
    ``classes.contains("personel")``, ``authorizations.contains("bis-licence")``,
    ``context.regime == "Enacted"``) loaded, never matched, and turned a deny rule off without
    a word: ``rules list`` listed it in force, ``check`` allowed (atk68). Requests carry
    upper-case ISO country codes and canonical chip ids (they are normalised as read)."""
    for what, value, expected in _literals(est):
        raise PackError(
            f"{what} {value!r} is a value no request carries: the comparison never matches",
            source=where,
            expected=expected,
        )


def _literals(est: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(what, the literal, what was expected) for each literal no request can carry."""
    for node in walk(est):
        if not isinstance(node, dict):
            continue
        ref = node.get("__entity")
        if isinstance(ref, dict) and ref.get("type") == "Straits::Country":
            cid = str(ref.get("id"))
            if not is_country(cid) or cid != cid.upper():
                yield "country", cid, "an ISO 3166-1 alpha-2 code in capitals (CN, SG, MY)"
        for op in ("==", "!=", "contains", "containsAny", "containsAll"):
            cmp = node.get(op)
            if isinstance(cmp, dict):
                yield from _compared(op, cmp.get("left"), cmp.get("right"))
    for _, regime in _regime_tests(est)[0]:
        if regime not in REGIMES:
            yield "regime", regime, "one of " + ", ".join(REGIMES)


def _compared(op: str, left: Any, right: Any) -> Iterator[tuple[str, str, str]]:
    member = op.startswith("contains")
    sides = [(left, right)] if member else [(left, right), (right, left)]
    for attr, value in sides:
        if member:
            for (obj, name), (what, known) in _MEMBERS.items():
                if _is_path(attr, obj, name):
                    for v in _strings(value):
                        if v not in known:
                            yield what, v, "one of " + ", ".join(known)
            if _is_path(value, "chip", "id"):  # ["H20", ...].contains(context.chip.id)
                yield from _chips(_strings(attr))
        elif _is_path(attr, "chip", "id"):
            yield from _chips(_strings(value))


def _chips(ids: list[str]) -> Iterator[tuple[str, str, str]]:
    """A chip the catalog knows, written in another form than its id (``h100-sxm``): requests
    carry the id as the catalog writes it. A chip the catalog does not carry (``MI308X``, named
    by the H20 letter) is allowed: no request can name it (an unknown chip is refused), so the
    rule decides nothing wrongly, and it is ready when the catalog gains the chip."""
    for v in ids:
        try:
            canonical = catalog().canonical(v)
        except UnknownChipError:
            continue
        if canonical != v:
            yield "chip id", v, f"{canonical!r}, as `straits chips` writes it"


def _is_path(node: Any, obj: str, attr: str) -> bool:
    """Whether ``node`` is ``context.<obj>.<attr>``."""
    return (
        isinstance(node, dict)
        and isinstance(node.get("."), dict)
        and node["."].get("attr") == attr
        and _is_context_attr(node["."].get("left"), obj)
    )


def _strings(node: Any) -> list[str]:
    """The string literals of ``node``: a ``Value`` or a ``Set`` of them."""
    if not isinstance(node, dict):
        return []
    if isinstance(node.get("Value"), str):
        return [node["Value"]]
    if isinstance(node.get("Set"), list):
        return [
            v["Value"]
            for v in node["Set"]
            if isinstance(v, dict) and isinstance(v.get("Value"), str)
        ]
    return []


def check_reads(est: dict[str, Any], where: str) -> None:
    """The policy reads the request the way Straits evaluates and caches it
    (rules/partition.py, rules/cache_key.py): the context through its attributes, the action by
    its name, nothing of the principal or the resource. Otherwise the rule was evaluated
    without what it read, or tested what no request tells apart: it never applied, or applied
    from another request's cached answer, without a word."""
    if why := _context_problem(est) or _subject_problem(est):
        raise PackError(
            why,
            source=where,
            expected="`context.<attr>`, `context has <attr>`, `action in Straits::Action::"
            '"use-compute"`; the tenant and the site as `context.tenant`, `context.site`',
        )


def _context_problem(est: dict[str, Any]) -> str | None:
    body = est.get("conditions", [])
    through: set[int] = set()  # `context` as the left of `.attr` or `has attr`
    for node in walk(body):
        if isinstance(node, dict):
            for op in (".", "has"):
                inner = node.get(op)
                if isinstance(inner, dict) and inner.get("left") == {"Var": "context"}:
                    through.add(id(inner["left"]))
    for node in walk(body):
        if isinstance(node, dict) and node.get("Var") == "context" and id(node) not in through:
            # `(if c then context else context).chip`, `{c: context}.c.data`: the planner's
            # parts and cache keys saw no attribute read, so the chip was left out of the
            # request the rule saw (it never applied), or two requests shared one answer
            return (
                "the condition reads `context` other than through one of its attributes "
                "(`context.x`, `context has x`): what it reads could not be told, and the "
                "rule was evaluated without it"
            )
    return None


#: the action groups: a request's action is one of their members, never the group itself
_ACTION_GROUPS = ("use-compute", "move")


def _subject_problem(est: dict[str, Any]) -> str | None:
    """Every request's principal is one fixed tenant and its resource one fixed site, with no
    attributes and no groups (the facts are in ``context.tenant`` and ``context.site``), and
    its action a member of ``use-compute`` or ``move``: a test of them loaded and never held
    (``principal == Straits::Tenant::"acme"``, ``action == Straits::Action::"move"``)."""
    for part, what in (("principal", "tenant"), ("resource", "site")):
        scope = est.get(part)
        # `principal is Straits::Tenant` always holds: a type test, read as none
        if isinstance(scope, dict) and scope.get("op") != "All" and not _is_type_test(scope):
            return (
                f"the scope constrains the {part}: every request's {part} is one fixed {what} "
                f"with no attributes, so the rule never applies (test `context.{what}`)"
            )
    typed = {
        id(node["is"]["left"])
        for node in walk(est.get("conditions", []))
        if isinstance(node, dict) and isinstance(node.get("is"), dict) and _is_type_test(node["is"])
    }
    for node in walk(est.get("conditions", [])):
        if not isinstance(node, dict):
            continue
        var = node.get("Var")
        if var in ("principal", "resource") and id(node) not in typed:
            what = "tenant" if var == "principal" else "site"
            return (
                f"the condition reads `{var}`: every request's {var} is one fixed {what} with "
                f"no attributes, so it never tells requests apart (test `context.{what}`)"
            )
        eq = node.get("==")
        if isinstance(eq, dict):
            for a, b in ((eq.get("left"), eq.get("right")), (eq.get("right"), eq.get("left"))):
                value = b.get("Value") if isinstance(b, dict) else None
                ref = value.get("__entity") if isinstance(value, dict) else None
                if (
                    a == {"Var": "action"}
                    and isinstance(ref, dict)
                    and ref.get("id") in _ACTION_GROUPS
                ):
                    return (
                        f'`action == Straits::Action::"{ref["id"]}"` never holds: a '
                        "request's action is one of the group's members (write `action in`)"
                    )
    return None


def _is_type_test(node: dict[str, Any]) -> bool:
    """``principal is Straits::Tenant`` (scope: op ``is``; condition: an ``is`` node), with no
    ``in``: it holds for every request (the validator refuses another type)."""
    return (node.get("op", "is") == "is") and "entity_type" in node and "in" not in node
