"""YAML (and JSON) documents parsed with limits: depth, aliases, duplicate keys, long integers.

PyYAML's ``safe_load`` builds no arbitrary objects, but it still accepts documents that are
hostile in other ways: a billion-laughs alias bomb (tiny to parse, 10^9 nodes once expanded),
nesting deep enough to exhaust the stack, a mapping that names the same key twice (the second
silently wins: a site with ``country: SG`` then ``country: CN`` would validate), integers with
thousands of digits, and impossible dates that raise from inside the library. This loader:

* refuses nesting deeper than :data:`~straits.limits.MAX_DEPTH`, counted as the document is
  composed and again once aliases are expanded;
* refuses documents whose aliases add more than :data:`~straits.limits.MAX_ALIAS_NODES` nodes,
  and aliases that refer to themselves;
* refuses duplicate keys in a mapping, naming both lines (keys brought in by a ``<<`` merge may
  be overridden, as YAML intends);
* keeps timestamps as text, so the models parse them and a wrong date is reported against its
  field (``workloads[0].deadline``) instead of raising from the YAML library;
* refuses integers longer than 40 digits (no field accepts numbers that large).

Errors are :class:`YamlLimitError` with the 1-based line of the offending node.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Callable, Iterator
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from straits.limits import MAX_ALIAS_NODES, MAX_DEPTH

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"
MAX_INT_DIGITS = 40


class YamlLimitError(Exception):
    """The document breaks one of the limits; ``line`` is 1-based (None when unknown)."""

    def __init__(self, message: str, line: int | None) -> None:
        self.message, self.line = message, line
        super().__init__(message if line is None else f"line {line}: {message}")


class ReadingTimeUp(Exception):
    """The time given to read the document (:func:`within`) ran out; ``line`` is where the
    reading stopped (1-based)."""

    def __init__(self, line: int | None) -> None:
        self.line = line
        super().__init__(f"the time ran out while reading, at line {line}")


#: a function that says the time to read is up (:func:`within`); checked every
#: :data:`CHECK_EVERY` nodes
_time_up: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "straits_yaml_time_up", default=None
)
CHECK_EVERY = 4096


@contextlib.contextmanager
def within(time_up: Callable[[], bool] | None) -> Iterator[None]:
    """Documents read inside stop with :class:`ReadingTimeUp` once ``time_up()`` says so
    (``plan --time-limit``: reading a 2 MB portfolio took 3-7 s of a 5 s budget)."""
    token = _time_up.set(time_up)
    try:
        yield
    finally:
        _time_up.reset(token)


def _line(node_or_mark: Any) -> int | None:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    return mark.line + 1 if mark is not None and hasattr(mark, "line") else None


# timestamps stay strings (the models parse them and name the field when they are wrong)
_RESOLVERS = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Limits:
    """The limits, for either parser below: depth counted as nodes are composed, duplicate
    keys and long integers as they are constructed."""

    _depth = 0
    #: whether the document defined an anchor: without one there is no alias, so nothing to
    #: expand (the depth was counted as it was composed), and :func:`check_expansion`, a third
    #: of the time to read a large portfolio, is skipped
    anchored = False
    anchors: dict[str, Node]

    def compose_document(self) -> Node | None:
        self.get_event()  # type: ignore[attr-defined]  # DocumentStart, as Composer's own
        node = self.compose_node(None, None)
        self.get_event()  # type: ignore[attr-defined]  # DocumentEnd
        self.anchored = bool(self.anchors)
        self.anchors = {}
        return node

    _nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        self._nodes += 1
        if not self._nodes % CHECK_EVERY and (up := _time_up.get()) is not None and up():
            raise ReadingTimeUp(_line(self.peek_event()))  # type: ignore[attr-defined]
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[attr-defined]
                raise YamlLimitError(f"nested deeper than {MAX_DEPTH} levels", _line(event))
            node = super().compose_node(parent, index)  # type: ignore[misc]
            assert node is not None
            return node  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: dict[Any, Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)  # type: ignore[attr-defined]
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class says so
                    continue
                if first is not None:
                    raise YamlLimitError(
                        f"duplicate key {_short(key)} (first at line {_line(first)}; each key "
                        "may appear once in a mapping)",
                        _line(key_node),
                    )
                seen[key] = key_node
        return super().construct_mapping(node, deep)  # type: ignore[misc,no-any-return]

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise YamlLimitError(
                f"an integer of {digits} digits (at most {MAX_INT_DIGITS})", _line(node)
            )
        try:
            value: int = super().construct_yaml_int(node)  # type: ignore[misc]
        except (ValueError, IndexError):  # `!!int x`, `!!int 0x`: the tag says integer
            raise _not_a(node, "an integer") from None
        _refuse_yaml11_base(node, value)
        return value

    def construct_yaml_float(self, node: ScalarNode) -> float:
        try:
            value: float = super().construct_yaml_float(node)  # type: ignore[misc]
        except (ValueError, IndexError):
            raise _not_a(node, "a number") from None
        _refuse_yaml11_base(node, value)
        return value

    def construct_yaml_bool(self, node: ScalarNode) -> bool:
        try:
            return super().construct_yaml_bool(node)  # type: ignore[misc,no-any-return]
        except KeyError:
            raise _not_a(node, "true or false") from None


#: integers and floats YAML 1.1 reads in another base than ten: octal (``0755``), hexadecimal
#: (``0x1F``), binary (``0b101``), base 60 (``1:30:00``, ``1:30.5``)
_OTHER_BASE = re.compile(
    r"[-+]?(0[0-9_]+|0[xX][0-9a-fA-F_]+|0[bB][01_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?)"
)


def _refuse_yaml11_base(node: ScalarNode, value: float) -> None:
    """A number YAML 1.1 reads in another base than ten is refused, naming the reading: a
    request (or a body that is not JSON, where the YAML parser takes over) with ``"subjects":
    01000001`` was decided for 262,145 people (octal), under the 1,000,000 line it was meant to
    cross; ``1:0:0`` was 3,600 and ``0x0F4241`` 1,000,001. JSON has no such numbers, and YAML 1.2
    reads ``0755`` as 755: no reading is safe to guess."""
    text = str(node.value)
    if not node.style and _OTHER_BASE.fullmatch(text):  # plain: None, or "" from libyaml
        raise YamlLimitError(
            f"{_short(text)} is a number in another base than ten in YAML 1.1 (read as "
            f"{value:,}): write it in decimal without leading zeros, or quote it for text",
            _line(node),
        )


def _not_a(node: ScalarNode, what: str) -> yaml.constructor.ConstructorError:
    """An explicit tag (``!!int``, ``!!float``, ``!!bool``) on text that is not one: PyYAML's
    own constructors raise ValueError, IndexError or KeyError there, which no caller expects
    from a parser; this is the parser's error, with the node's line."""
    return yaml.constructor.ConstructorError(
        None, None, f"{_short(node.value)} is not {what}, as its tag says", node.start_mark
    )


class _Loader(_Limits, yaml.SafeLoader):
    """PyYAML's pure-Python reader, scanner and parser."""

    yaml_implicit_resolvers = _RESOLVERS


_CParser: Any = None
with contextlib.suppress(ImportError):  # PyYAML built without libyaml: the pure-Python one
    from yaml.cyaml import CParser as _CParser  # type: ignore[attr-defined]

#: libyaml's scanner and parser (C; two to three times faster on a large portfolio) with
#: PyYAML's own composer, so the limits above are checked as nodes are composed (libyaml's
#: events carry the same line marks); None where PyYAML was built without libyaml
_FastLoader: Any = None
if _CParser is not None:

    class _CLoader(_Limits, _CParser, Composer, SafeConstructor, Resolver):  # type: ignore[misc]
        yaml_implicit_resolvers = _RESOLVERS
        get_single_node = Composer.get_single_node  # the composer in Python, not CParser's

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    _FastLoader = _CLoader


def _loader(text: str) -> Any:
    """libyaml's parser where PyYAML has it, else (or for text libyaml cannot take: lone
    surrogates do not encode to UTF-8) the pure-Python one; both raise the same errors."""
    if _FastLoader is not None:
        try:
            return _FastLoader(text)
        except UnicodeEncodeError:
            pass
    return _Loader(text)


_cls: Any
for _cls in (_Loader, _FastLoader or _Loader):
    _cls.add_constructor("tag:yaml.org,2002:int", _Limits.construct_yaml_int)
    _cls.add_constructor("tag:yaml.org,2002:float", _Limits.construct_yaml_float)
    _cls.add_constructor("tag:yaml.org,2002:bool", _Limits.construct_yaml_bool)
    # a timestamp given an explicit tag (!!timestamp) is text too
    _cls.add_constructor(_TIMESTAMP, SafeConstructor.construct_yaml_str)


def _short(value: Any) -> str:
    text = (
        repr(value)
        if isinstance(value, str | int | float | bool) or value is None
        else f"<{type(value).__name__}>"
    )
    return text if len(text) <= 60 else text[:57] + "..."


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def check_expansion(root: Node) -> None:
    """Refuse aliases that add more than MAX_ALIAS_NODES nodes, nest the expanded document
    deeper than MAX_DEPTH, or refer to themselves (iterative: no recursion on hostile
    input). Inside :func:`within`, it stops as composing does when the time is up."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    up = _time_up.get()
    steps = 0
    while stack:
        node, done = stack.pop()
        steps += 1
        if up is not None and not steps % CHECK_EVERY and up():
            raise ReadingTimeUp(_line(node))
        key = id(node)
        if done:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            active.discard(key)
            if depth[key] > MAX_DEPTH:
                raise YamlLimitError(
                    f"aliases nest the document deeper than {MAX_DEPTH} levels", _line(node)
                )
            continue
        if key in size:
            continue
        if key in active:
            raise YamlLimitError("an alias refers to the node that contains it", _line(node))
        active.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)
    added = size[id(root)] - len(size)
    if added > MAX_ALIAS_NODES:
        raise YamlLimitError(
            f"aliases expand the document by {added:,} nodes (at most {MAX_ALIAS_NODES:,})",
            _line(root),
        )


def _root(loader: Any) -> Node | None:
    """The loader's one document node; libyaml's own nesting limit (1,000, past ours: its
    scanner can read that far ahead of the composer in flow collections) is reported as
    ours."""
    try:
        return loader.get_single_node()  # type: ignore[no-any-return]
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem):
            raise YamlLimitError(
                f"nested deeper than {MAX_DEPTH} levels", _line(exc.problem_mark)
            ) from None
        raise


def compose(text: str) -> Node | None:
    """The document's node graph, with the depth and alias limits checked."""
    loader = _loader(text)
    try:
        root = _root(loader)
    finally:
        loader.dispose()
    if root is not None and loader.anchored:
        check_expansion(root)
    return root


def load(text: str) -> Any:
    """Parse one YAML document within the limits (raises yaml.YAMLError on bad syntax and
    YamlLimitError on a broken limit)."""
    loader = _loader(text)
    try:
        root = _root(loader)
        if root is None:
            return None
        if loader.anchored:
            check_expansion(root)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def locate(text: str, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the node at ``loc`` (a pydantic error location) in ``text``: the
    deepest node on the path that exists (a missing field points at its parent)."""
    return locator(text)(loc)


def locator(text: str) -> Callable[[tuple[int | str, ...]], int | None]:
    """:func:`locate` for many locations of one text, which is composed once: the console's
    list of a scenario's problems composed it again for each (2,000 unknown keys, 27 KB,
    took 27 s; 2 MiB of them hours)."""
    try:
        root = compose(text)
    except (yaml.YAMLError, YamlLimitError, RecursionError, ValueError):
        return lambda loc: None
    return lambda loc: _find(root, loc)


def _find(node: Node | None, loc: tuple[int | str, ...]) -> int | None:
    line = _line(node) if node is not None else None
    for part in loc:
        if node is None:
            break
        nxt: Node | None = None
        if isinstance(node, MappingNode):
            for k, v in node.value:
                if isinstance(k, ScalarNode) and k.value == str(part):
                    nxt = v
                    line = _line(k)
                    break
        elif (
            isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value)
        ):
            nxt = node.value[part]
            line = _line(nxt)
        if nxt is None:
            break
        node = nxt
    return line
