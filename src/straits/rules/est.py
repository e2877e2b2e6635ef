"""Reading Cedar's JSON form (EST) of a policy: which attributes and literals it uses."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

from straits.model.types import Regime

REGIMES: tuple[str, ...] = Regime.__args__  # type: ignore[attr-defined]
NS = "Straits"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def _is_context_attr(node: Any, attr: str) -> bool:
    return (
        isinstance(node, dict)
        and "." in node
        and node["."].get("attr") == attr
        and node["."].get("left") == {"Var": "context"}
    )


def date_literals(est: dict[str, Any]) -> set[dt.date]:
    """Every ``datetime("...")`` literal in a policy."""
    out = set()
    for node in walk(est):
        if isinstance(node, dict) and "datetime" in node and isinstance(node["datetime"], list):
            for arg in node["datetime"]:
                if isinstance(arg, dict) and isinstance(arg.get("Value"), str):
                    out.add(dt.date.fromisoformat(arg["Value"][:10]))
    return out


def non_day_datetimes(est: dict[str, Any]) -> list[str]:
    """The ``datetime("...")`` literals of a policy that are not a plain day (``YYYY-MM-DD``).
    ``context.date`` is a day at midnight UTC: a literal with a time or a UTC offset puts a
    rule's boundary inside a day, which the cache keys (and every listing) read as that day."""
    out = []
    for node in walk(est):
        if isinstance(node, dict) and isinstance(node.get("datetime"), list):
            for arg in node["datetime"]:
                value = arg.get("Value") if isinstance(arg, dict) else None
                if not isinstance(value, str) or not _DAY.fullmatch(value):
                    out.append(str(value))
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


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}
_NOT = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _day_of(node: Any) -> dt.date | None:
    args = node.get("datetime") if isinstance(node, dict) else None
    value = args[0].get("Value") if isinstance(args, list) and args else None
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def date_window(est: dict[str, Any]) -> tuple[dt.date | None, dt.date | None]:
    """The first and last day (inclusive) a policy's comparisons of ``context.date`` with a day
    allow: the top-level ``&&`` operands of its ``when`` and an ``unless`` that is one such
    comparison; None where none bounds it."""
    first: dt.date | None = None
    last: dt.date | None = None
    day = dt.timedelta(days=1)
    for cond in est.get("conditions", []):
        unless = cond.get("kind") == "unless"  # `unless { context.date >= X }` ends the rule
        for c in [cond.get("body")] if unless else conjuncts(cond.get("body")):
            if not isinstance(c, dict) or len(c) != 1:
                continue
            ((op, cmp),) = c.items()
            if op not in _FLIP or not isinstance(cmp, dict) or (unless and op == "=="):
                continue
            op = _NOT[op] if unless else op
            if _is_context_attr(cmp.get("left"), "date"):
                d = _day_of(cmp.get("right"))
            elif _is_context_attr(cmp.get("right"), "date"):
                op, d = _FLIP[op], _day_of(cmp.get("left"))
            else:
                continue
            if d is None:
                continue
            step = {">": day, "<": -day}.get(op, dt.timedelta(0))
            try:  # `> 9999-12-31` or `< 0001-01-01`: a day that is not there bounds nothing
                d += step
            except OverflowError:
                continue
            low = d if op in (">=", ">", "==") else None
            high = d if op in ("<=", "<", "==") else None
            if low is not None:
                first = low if first is None else max(first, low)
            if high is not None:
                last = high if last is None else min(last, high)
    return first, last


def date_problem(est: dict[str, Any]) -> str | None:
    """Why a policy's days cannot be read from it, if they cannot: a top-level ``&&`` operand
    of ``when`` that reads ``context.date`` other than as :func:`date_window` reads it (compared
    with a day). Such an operand bounds the days of every request, unread: with
    ``context.date.toDate() < datetime(...)`` or ``!(context.date < ...)`` the rule loaded and
    ``rules list`` said it was in force on days ``check`` never applied it. A test under
    ``||`` bounds no day for every request (the rule may apply on any day the rest allows, as
    listed; the case tables check it), nor does an ``unless`` beyond one comparison (it
    narrows whom the rule applies to)."""
    for cond in est.get("conditions", []):
        if cond.get("kind") == "unless":
            continue
        for c in conjuncts(cond.get("body")):
            if not any(_is_context_attr(n, "date") for n in walk(c)):
                continue
            if isinstance(c, dict) and "||" in c:
                continue
            if isinstance(c, dict) and len(c) == 1:
                ((op, cmp),) = c.items()
                if op in _FLIP and isinstance(cmp, dict):
                    left, right = cmp.get("left"), cmp.get("right")
                    if (_is_context_attr(left, "date") and _day_of(right)) or (
                        _is_context_attr(right, "date") and _day_of(left)
                    ):
                        continue
            return (
                "a top-level `&&` operand of `when` reads context.date other than as "
                '`context.date >= datetime("YYYY-MM-DD")` (or <, <=, >, ==): `rules list`, '
                "`rules diff` and the boundary tables could not tell on which days the rule "
                "applies"
            )
    return None


def _regime_tests(est: dict[str, Any]) -> tuple[list[tuple[str, str]], bool]:
    """(``==`` or ``!=``, regime) of each comparison of ``context.regime`` with a string that
    is a top-level ``&&`` operand of ``when`` (or an ``unless`` of one, negated), and whether
    the policy reads ``context.regime`` anywhere else."""
    tests: list[tuple[str, str]] = []
    seen: set[int] = set()
    for cond in est.get("conditions", []):
        unless = cond.get("kind") == "unless"
        for c in [cond.get("body")] if unless else conjuncts(cond.get("body")):
            if not isinstance(c, dict) or len(c) != 1:
                continue
            ((op, cmp),) = c.items()
            if op not in ("==", "!=") or not isinstance(cmp, dict):
                continue
            for side, other in (("left", "right"), ("right", "left")):
                value = (
                    cmp.get(other, {}).get("Value") if isinstance(cmp.get(other), dict) else None
                )
                if _is_context_attr(cmp.get(side), "regime") and isinstance(value, str):
                    tests.append(({"==": "!=", "!=": "=="}[op] if unless else op, value))
                    seen.add(id(cmp[side]))
    reads = [n for n in walk(est) if _is_context_attr(n, "regime")]
    return tests, any(id(n) not in seen for n in reads)


def regimes(est: dict[str, Any]) -> tuple[str, ...]:
    """The regimes a policy can apply under: all of them, less those its top-level
    ``context.regime == "X"`` / ``!= "X"`` tests rule out (``!=`` was read as applying under
    every regime, and a test inside ``||`` as restricting the rule: see :func:`regime_problem`)."""
    allowed = set(REGIMES)
    for op, value in _regime_tests(est)[0]:
        allowed = allowed & {value} if op == "==" else allowed - {value}
    return tuple(r for r in REGIMES if r in allowed)


def regime_problem(est: dict[str, Any]) -> str | None:
    """Why the regimes a policy applies under cannot be read from it, if they cannot."""
    if _regime_tests(est)[1]:
        return (
            'context.regime is read other than as a top-level `&& context.regime == "X"` '
            "(or `!=`) of `when`: `rules list`, `rules diff`, the case tables and the market "
            "could not tell under which regimes the rule applies"
        )
    return None


# --- conditions and their text (for coverage reports) ---------------------------------------
def conjuncts(expr: Any) -> list[Any]:
    """The top-level ``&&`` operands of a condition, in evaluation order."""
    if isinstance(expr, dict) and isinstance(expr.get("&&"), dict):
        return conjuncts(expr["&&"]["left"]) + conjuncts(expr["&&"]["right"])
    return [expr]


def conjoin(exprs: list[Any]) -> Any:
    """``e1 && e2 && ...`` (``true`` for none)."""
    if not exprs:
        return {"Value": True}
    out = exprs[0]
    for e in exprs[1:]:
        out = {"&&": {"left": out, "right": e}}
    return out


def balanced(expr: Any) -> Any:
    """``expr`` with every chain of ``&&`` (or ``||``) regrouped as a balanced tree, operands in
    the same order: the same condition (both are associative, evaluated left to right with the
    same short-circuits and errors), nested log2(n) deep instead of n. Cedar reads a policy's
    JSON form with a nesting limit of 128, and a condition of 60 ``||`` terms (chips or
    countries listed one by one) made `rules test` a traceback when it built its probes."""
    if isinstance(expr, list):
        return [balanced(x) for x in expr]
    if not isinstance(expr, dict):
        return expr
    if len(expr) == 1:
        ((op, arg),) = expr.items()
        if op == "Value":  # a literal: nothing inside is an expression
            return expr
        if op in ("&&", "||") and isinstance(arg, dict) and set(arg) == {"left", "right"}:
            return _tree(op, [balanced(t) for t in _chain(expr, op)])
    return {k: balanced(v) for k, v in expr.items()}


def _chain(expr: Any, op: str) -> list[Any]:
    """The operands of a chain of ``op``, left to right (without recursion: chains are long)."""
    out, stack = [], [expr]
    while stack:
        node = stack.pop()
        arg = node.get(op) if isinstance(node, dict) and len(node) == 1 else None
        if isinstance(arg, dict) and set(arg) == {"left", "right"}:
            stack += [arg["right"], arg["left"]]
        else:
            out.append(node)
    return out


def _tree(op: str, terms: list[Any]) -> Any:
    if len(terms) == 1:
        return terms[0]
    mid = len(terms) // 2
    return {op: {"left": _tree(op, terms[:mid]), "right": _tree(op, terms[mid:])}}


def negate(expr: Any) -> Any:
    return {"!": {"arg": expr}}


BINARY = {
    "==": "==",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "&&": "&&",
    "||": "||",
    "+": "+",
    "-": "-",
    "*": "*",
    "in": "in",
}
METHODS = ("contains", "containsAll", "containsAny", "hasTag", "getTag")


def _value(v: Any) -> str:
    if isinstance(v, dict) and "__entity" in v:
        ref = v["__entity"]
        return f'{ref["type"]}::"{ref["id"]}"'
    if isinstance(v, dict) and "__extn" in v:
        return f'{v["__extn"]["fn"]}("{v["__extn"]["arg"]}")'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return str(v)


def expr_text(node: Any) -> str:
    """Cedar text of an expression in the JSON form (parenthesized where nesting needs it)."""

    def atomic(x: Any) -> bool:
        if not isinstance(x, dict) or len(x) != 1:
            return True
        ((k, v),) = x.items()
        return k in ("Value", "Var", ".", "Set", "Record", *METHODS) or isinstance(v, list)

    def sub(x: Any) -> str:
        text = expr_text(x)
        return text if atomic(x) or (isinstance(x, dict) and "has" in x) else f"({text})"

    if not isinstance(node, dict) or len(node) != 1:
        return str(node)
    ((op, arg),) = node.items()
    if op == "Value":
        return _value(arg)
    if op == "Var":
        return str(arg)
    if op == ".":
        return f"{sub(arg['left'])}.{arg['attr']}"
    if op == "has":
        return f"{sub(arg['left'])} has {arg['attr']}"
    if op in BINARY:
        return f"{sub(arg['left'])} {BINARY[op]} {sub(arg['right'])}"
    if op in METHODS:
        return f"{sub(arg['left'])}.{op}({expr_text(arg['right'])})"
    if op in ("!", "neg"):
        inner = expr_text(arg["arg"])
        return ("!" if op == "!" else "-") + (inner if atomic(arg["arg"]) else f"({inner})")
    if op == "like":
        pattern = "".join(
            "*" if p == "Wildcard" else str(p.get("Literal", "")).replace("*", "\\*")
            for p in arg["pattern"]
        )
        return f'{sub(arg["left"])} like "{pattern}"'
    if op == "is":
        return f"{sub(arg['left'])} is {arg['entity_type']}"
    if op == "if-then-else":
        return (
            f"if {expr_text(arg['if'])} then {expr_text(arg['then'])} else {expr_text(arg['else'])}"
        )
    if op == "Set":
        return "[" + ", ".join(expr_text(x) for x in arg) + "]"
    if op == "Record":
        return "{" + ", ".join(f"{k}: {expr_text(v)}" for k, v in arg.items()) + "}"
    if isinstance(arg, list):  # an extension function or method: datetime("..."), x.toDate()
        if op in ("datetime", "decimal", "ip", "duration"):
            return f"{op}({', '.join(expr_text(a) for a in arg)})"
        if arg:
            rest = ", ".join(expr_text(a) for a in arg[1:])
            return f"{sub(arg[0])}.{op}({rest})"
    return str(node)
