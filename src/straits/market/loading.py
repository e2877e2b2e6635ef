"""Reading market files: the shipped one, user files that extend it, overrides, range paths.

Parameters are addressed by dotted paths into the file, list items by their ``id``, ``chip`` or
``date``: ``demand.shift_speed``, ``supply.pools[my-cn-h100].share``,
``supply.countries.MY.mw[2027-12]``, ``home_chips[H20].supply_per_month[2025-06]``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from straits.errors import InputError
from straits.limits import DECIMAL_TEXT
from straits.loading import parse_document, read_stdin, read_text, validate_as
from straits.market.params import SOURCE_FIELDS, Market

SHIPPED = "shipped"
_KEYS = ("id", "chip", "date")
_STEP = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


class MarketError(InputError):
    """A market file or a parameter override is malformed."""


@dataclass(frozen=True)
class RangeParam:
    path: str
    low: float
    high: float
    source: str
    confidence: str
    unpublished: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "low": self.low,
            "high": self.high,
            "source": self.source,
            "confidence": self.confidence,
            "unpublished": self.unpublished,
        }


def shipped_text() -> str:
    return (resources.files("straits.catalog") / "market.yaml").read_text(encoding="utf-8")


def shipped_raw() -> dict[str, Any]:
    data = parse_document(shipped_text(), source="market.yaml (shipped)", error=MarketError)
    assert isinstance(data, dict)
    return data


def merge(base: Any, over: Any) -> Any:
    """``over`` on top of ``base``: mappings merge key by key, anything else (lists, and a
    parameter given whole) replaces."""
    if isinstance(base, dict) and isinstance(over, dict) and not _is_param(over):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(base[k], v) if k in base else v
        if "source" in base and "source" not in over and set(over) - SOURCE_FIELDS:
            # a source speaks for the figures beside it: a user's 7B `models.train` kept the
            # shipped "Qwen2-72B's published shape" in the report (rev64c)
            for k in SOURCE_FIELDS - set(over):  # the inherited ones, not the user's own
                out.pop(k, None)
        return out
    return copy.deepcopy(over)


def read_raw(path: Path | None) -> tuple[dict[str, Any], str]:
    """The raw document of ``path`` (the shipped file when None), ``extends`` resolved."""
    raw, label, _ = read_raw_text(path)
    return raw, label


def read_raw_text(path: Path | None) -> tuple[dict[str, Any], str, str | None]:
    """As :func:`read_raw`, with the file's text (None for the shipped file), from which an
    error's line is found."""
    if path is None:
        return shipped_raw(), "market.yaml (shipped)", None
    if str(path) == "-":  # stdin, as every other command's file (was "-: file not found")
        label, text = "<stdin>", read_stdin(error=MarketError, what="a market file")
    else:
        label, text = str(path), read_text(path, error=MarketError)
    return (*_resolve(parse_document(text, source=label, error=MarketError), label), text)


def _resolve(data: Any, label: str) -> tuple[dict[str, Any], str]:
    if not isinstance(data, dict):
        raise MarketError(
            "expected a mapping at the top level",
            source=label,
            expected="a market file (see docs/market.md)",
        )
    ext = data.pop("extends", None)
    if ext is not None:
        if ext != SHIPPED:
            raise MarketError(
                f"cannot extend {ext!r}", source=label, path="extends", expected="'shipped'"
            )
        data = merge(shipped_raw(), data)
    return data, label


def validate(raw: Mapping[str, Any], label: str, text: str | None = None) -> Market:
    """The market of ``raw``, its fields typed and every parameter inside its domain
    (``market/domains.py``); with ``text`` (the file's), a field's error names its line."""
    from straits.market.domains import violations

    market = validate_as(
        Market,
        raw,
        source=label,
        error=MarketError,
        text=text,
        reference="`straits market --list-params` and docs/market.md",
    )
    for path, detail, bound in violations(walk_params(market.model_dump(by_alias=True))):
        line = _param_line(text, path) if text is not None else None
        raise MarketError(detail, source=label, path=path, expected=bound, line=line)
    return market


def _param_line(text: str, path: str) -> int | None:
    """The line of the parameter at ``path`` in the file's ``text`` (None where the file does
    not give it: a shipped value it extends, an override)."""
    from straits import safe_yaml

    def walk(node: Any, prefix: str, loc: tuple[int | str, ...]) -> int | None:
        if prefix == path and _is_param(node):
            return safe_yaml.locate(text, loc)
        items: list[tuple[str, Any, int | str]] = []
        if isinstance(node, dict):
            items = [(f"{prefix}.{k}" if prefix else str(k), v, k) for k, v in node.items()]
        elif isinstance(node, list):
            for i, item in enumerate(node):
                key = _key(item)
                items.append((f"{prefix}[{key if key is not None else i}]", item, i))
        for sub, child, step in items:
            if path == sub or path.startswith(sub + ".") or path.startswith(sub + "["):
                found = walk(child, sub, (*loc, step))
                if found is not None:
                    return found
        return None

    try:
        return walk(safe_yaml.load(text), "", ())
    except Exception:  # the text was parsed once already; a line is a courtesy
        return None


def load_market(
    path: Path | None = None,
    overrides: Mapping[str, float] | None = None,
) -> tuple[Market, dict[str, Any], str]:
    """The validated market of ``path`` (shipped when None) with ``overrides`` applied."""
    raw, label, text = read_raw_text(path)
    if overrides:
        from straits.market.domains import violations

        raw = with_values(raw, overrides, label=label, set_by="--set")
        for where, detail, bound in violations((key, {"value": v}) for key, v in overrides.items()):
            raise MarketError(detail, source="--set", path=where, expected=bound)
    return validate(raw, label, text), raw, label


def digest(raw: Mapping[str, Any]) -> str:
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --- paths --------------------------------------------------------------------------------------
def _is_param(node: Any) -> bool:
    """A parameter given whole: one with a figure (``value``, ``low`` or ``high``). One that
    lacks its source or confidence replaces the shipped one too, and is refused for what it
    lacks: merged key by key into the shipped range, it was "needs either `value` or both
    `low` and `high`", naming neither (a fresh-eye attack)."""
    return isinstance(node, dict) and ("value" in node or "low" in node or "high" in node)


def _key(item: Any) -> str | None:
    if isinstance(item, dict):
        for k in _KEYS:
            if k in item:
                return str(item[k])
    return None


def _walk(
    raw: Any, pick: Callable[[Any], bool], prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node of the document that ``pick`` takes, with its path (a list's items by their
    key where they have one)."""
    if pick(raw):
        yield prefix, raw
    if isinstance(raw, dict):
        for k, v in raw.items():
            yield from _walk(v, pick, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            key = _key(item)
            yield from _walk(item, pick, f"{prefix}[{key if key is not None else i}]")


def walk_params(raw: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every parameter of the document with its path."""
    return _walk(raw, _is_param)


def _sourced(node: Any) -> bool:
    return isinstance(node, dict) and node.get("source") is not None and not _is_param(node)


def sourced_figures(raw: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every entry that is no parameter but carries a ``source`` for its figures (a firm
    type's dataset and its count of people, a model's shape), with its path."""
    return _walk(raw, _sourced)


def range_params(raw: Mapping[str, Any]) -> list[RangeParam]:
    out = []
    for path, node in walk_params(raw):
        if (
            "low" in node
            and "high" in node
            and isinstance(node["low"], int | float)
            and isinstance(node["high"], int | float)
        ):
            out.append(
                RangeParam(
                    path,
                    float(node["low"]),
                    float(node["high"]),
                    str(node["source"]),
                    str(node["confidence"]),
                    bool(node.get("unpublished", False)),
                )
            )
    return out


def _find(raw: Any, path: str, label: str) -> dict[str, Any]:
    node = raw
    steps = _STEP.findall(path)
    if not steps or "".join(f".{a}" if a else f"[{b}]" for a, b in steps).lstrip(".") != path:
        raise MarketError(
            f"cannot read parameter path {path!r}",
            source=label,
            expected="a path such as demand.shift_speed or supply.pools[my-sg-h100].share",
        )
    for attr, key in steps:
        if attr:
            if not isinstance(node, dict) or attr not in node:
                raise MarketError(
                    f"no parameter {path!r} (no {attr!r} there)",
                    source=label,
                    expected="a path listed by `straits market --list-params`",
                )
            node = node[attr]
        else:
            if not isinstance(node, list):
                raise MarketError(
                    f"no parameter {path!r} ([{key}] is not a list item)", source=label
                )
            match = [item for i, item in enumerate(node) if _key(item) == key or str(i) == key]
            if not match:
                raise MarketError(f"no parameter {path!r} (no item {key!r})", source=label)
            node = match[0]
    if not _is_param(node):
        raise MarketError(
            f"{path!r} is not a parameter",
            source=label,
            expected="a path to a {value | low, high, source, confidence} entry",
        )
    found: dict[str, Any] = node
    return found


def with_values(
    raw: Mapping[str, Any],
    values: Mapping[str, float],
    *,
    label: str = "market",
    set_by: str | None = None,
) -> dict[str, Any]:
    """A copy of ``raw`` where each parameter at a path of ``values`` takes that value. With
    ``set_by`` (``--set``), the value is the caller's: its source says so (and what the file
    had), its confidence is M; without (a sweep's sample of the file's range, a calibrated
    figure), the file's source and confidence are kept."""
    out = copy.deepcopy(dict(raw))
    for path, value in values.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
            raise MarketError(f"value for {path!r} must be a number", source=label)
        node = _find(out, path, label)
        was = node.get("value", f"{node.get('low')} - {node.get('high')}")
        node.pop("low", None)
        node.pop("high", None)
        node["value"] = float(value)
        if set_by is not None:
            # the file's source and confidence were kept on the caller's value: the report
            # and --list-params cited a datasheet (V2) for a number typed on the command line
            node["source"] = f"{set_by} {path}={value:g} (the file's {was}: {node['source']})"[
                :2000
            ]
            node["confidence"] = "M"
    return out


def parse_overrides(items: list[str], label: str = "--set") -> dict[str, float]:
    out: dict[str, float] = {}
    for item in items:
        path, sep, text = item.partition("=")
        try:
            # ASCII decimal only: float() read 1_0 as 10 and other scripts' digits (cli30)
            # blanks around the number too, as every option's number (docs/cli.md; it was
            # stripped: `shift_speed= 0.3 ` set 0.3, a fresh-eye attack)
            if not sep or len(text) > 40 or not DECIMAL_TEXT.fullmatch(text):
                raise ValueError
            value = float(text)
            if not math.isfinite(value):  # NaN: was blamed on the market file, not on --set
                raise ValueError
        except ValueError:
            raise MarketError(
                f"cannot read {item!r}",
                source=label,
                expected="PATH=NUMBER, e.g. demand.shift_speed=0.2",
            ) from None
        if path.strip() in out:  # the later one silently won
            raise MarketError(
                f"{path.strip()!r} is set twice", source=label, expected="each parameter once"
            )
        out[path.strip()] = value
    return out
