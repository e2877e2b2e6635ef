"""Figures that changed since a plan was made: prices and capacity, from files with sources.

A prices file lists ``{site, chip, usd_per_chip_hour, source}``; a capacity file lists
``{site, chip, count, start?, source}`` (the pool has ``count`` chips from ``start``, default:
the date of the check). Both are YAML or JSON lists (or a mapping with a ``prices`` /
``capacity`` key), validated like every input: a wrong field names the file and its path.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr

from straits.errors import ScenarioError
from straits.loading import field_loc, parse_document, parse_scenario, read_text, validate_as
from straits.model.scenario import Scenario
from straits.model.types import ChipCount, ChipId, Date, Id, Text, UsdPerChipHour


class _Change(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    site: Id
    chip: ChipId
    source: Text | None = None


class PriceChange(_Change):
    """A pool's new price: the scenario's own field type, so a bad one is named here."""

    usd_per_chip_hour: UsdPerChipHour


class CapacityChange(_Change):
    count: ChipCount
    start: Date | None = None


class Overrides(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    prices: tuple[PriceChange, ...] = ()
    capacity: tuple[CapacityChange, ...] = ()
    prices_file: str | None = None
    capacity_file: str | None = None
    #: the file's line of each change, by kind (``prices``, ``capacity``): set when read from
    #: a file, so an error found later (a pool the scenario lacks) names its line too
    _lines: dict[str, tuple[int | None, ...]] = PrivateAttr(default_factory=dict)

    def line(self, kind: str, i: int) -> int | None:
        lines = self._lines.get(kind, ())
        return lines[i] if i < len(lines) else None

    @property
    def empty(self) -> bool:
        return not self.prices and not self.capacity


def _load(path: Path, key: str) -> tuple[Overrides, tuple[int | None, ...]]:
    if str(path) == "-":  # stdin, as every command's file (it was "-: file not found")
        from straits.loading import read_stdin

        text, path = read_stdin(error=ScenarioError, what=f"a {key} file"), Path("<stdin>")
    else:
        text = read_text(path, error=ScenarioError)
    data = parse_document(text, source=str(path), error=ScenarioError)
    bare = isinstance(data, list)
    if bare:
        data = {key: data}
    if not isinstance(data, dict) or set(data) != {key}:
        raise ScenarioError(
            f"expected a list of {key} changes",
            source=str(path),
            expected=f"a list, or a mapping with the one key `{key}`",
        )
    # the file's line of a bad field, where its paths are the document's (a bare list is read
    # as the mapping {key: list}, whose paths the file does not have)
    try:
        ov = validate_as(
            Overrides, data, source=str(path), error=ScenarioError, text=None if bare else text
        )
    except ScenarioError as exc:
        if not bare or exc.line is not None or not exc.path:
            raise
        # a bare list: the file's paths are the document's without the key (atk67: no line)
        raise ScenarioError(
            exc.detail,
            source=exc.source,
            path=exc.path,
            expected=exc.expected,
            line=_line(text, exc.path, bare),
            problems=exc.problems,
        ) from None
    seen: dict[tuple[Any, ...], int] = {}
    changes: tuple[_Change, ...] = ov.prices if key == "prices" else ov.capacity
    for i, c in enumerate(changes):  # a pool changed twice (on the same day) says two things
        k = (c.site, c.chip, getattr(c, "start", None))
        if k in seen:
            raise ScenarioError(
                f"pool {c.chip} at site {c.site!r} is changed twice (first at {key}[{seen[k]}])",
                source=str(path),
                path=f"{key}[{i}]",
                expected="one change per pool" + (" and start date" if key == "capacity" else ""),
                line=_line(text, f"{key}[{i}]", bare),
            )
        seen[k] = i
    return ov, tuple(_line(text, f"{key}[{i}]", bare) for i in range(len(changes)))


def _line(text: str, path: str, bare: bool) -> int | None:
    """The file's line of ``path`` (``prices[1].usd_per_chip_hour``); in a bare list, the
    path without its first key."""
    from straits import safe_yaml

    loc = field_loc(path)
    return safe_yaml.locate(text, loc[1:] if bare else loc)


def _label(path: Path | None) -> str | None:
    return None if path is None else "<stdin>" if str(path) == "-" else str(path)


def load_overrides(prices: Path | None, capacity: Path | None) -> Overrides:
    p_ov, p_lines = _load(prices, "prices") if prices else (Overrides(), ())
    c_ov, c_lines = _load(capacity, "capacity") if capacity else (Overrides(), ())
    ov = Overrides(
        prices=p_ov.prices,
        capacity=c_ov.capacity,
        prices_file=_label(prices),
        capacity_file=_label(capacity),
    )
    ov._lines = {"prices": p_lines, "capacity": c_lines}
    return ov


def apply(sc: Scenario, ov: Overrides, *, date: dt.date, regime: str | None = None) -> Scenario:
    """``sc`` with the changed figures, dated ``date`` (validated again, so a change naming a
    pool that does not exist is an error)."""
    doc = sc.model_dump(mode="json")
    doc["date"] = date.isoformat()
    if regime is not None:
        doc["regime"] = regime
    pools = {(s["id"], p["chip"]): p for s in doc["sites"] for p in s["pools"]}

    def pool(kind: str, i: int, c: _Change) -> dict[str, Any]:
        hit = pools.get((c.site, c.chip))
        if hit is None:
            raise ScenarioError(
                f"no pool {c.chip} at site {c.site!r} in scenario {sc.name}",
                source=ov.prices_file if kind == "prices" else ov.capacity_file,
                path=f"{kind}[{i}]",
                expected="a site and chip of the scenario",
                line=ov.line(kind, i),
            )
        out: dict[str, Any] = hit
        return out

    for i, p in enumerate(ov.prices):
        hit = pool("prices", i, p)
        hit["usd_per_chip_hour"] = p.usd_per_chip_hour
        # the scenario's source was about the old figure: an unsourced new one was shown
        # as the old one's citation (a fresh-eye attack)
        hit["source"] = p.source or f"no source given in {ov.prices_file or 'the prices file'}"
    for i, c in enumerate(ov.capacity):
        hit = pool("capacity", i, c)
        start = c.start or date
        if start <= date:
            hit["count"] = c.count
            hit["availability"] = [
                w
                for w in hit.get("availability", ())
                if w.get("end") and w["end"] <= start.isoformat()
            ]
        else:
            hit["availability"] = [
                *hit.get("availability", ()),
                {"start": start.isoformat(), "end": None, "count": c.count},
            ]
    return parse_scenario(doc, source=f"scenario {sc.name} with changes", stored=True)


def price_of(sc: Scenario, site: str, chip: str) -> float | None:
    for p in sc.site(site).pools:
        if p.chip == chip:
            return p.usd_per_chip_hour
    return None


__all__ = ["CapacityChange", "Overrides", "PriceChange", "apply", "load_overrides", "price_of"]
