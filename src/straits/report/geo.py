"""Where the plan's sites are and what moves between them: the data behind the map.

Countries are placed at their label points (``assets/country_centroids.json``, derived from
Natural Earth, see ``tools/map_assets.py``); several sites in one country are spread on a small
circle around it so each stays visible.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from straits.model.scenario import Scenario
from straits.plan.transfer import weights_gb


@dataclass(frozen=True)
class SiteMark:
    site: str
    country: str
    operator_hq: str
    lon: float
    lat: float
    stages: int
    """stages the plan places here"""
    chips: tuple[str, ...]


@dataclass(frozen=True)
class Movement:
    """Data or weights moved from one site to another for a stage."""

    kind: str
    """``data`` or ``weights``"""
    what: str
    src: str
    dst: str
    gb: float | None
    stage: str


@dataclass(frozen=True)
class MapView:
    sites: tuple[SiteMark, ...]
    movements: tuple[Movement, ...]


@cache
def centroids() -> dict[str, tuple[float, float]]:
    """ISO 3166-1 alpha-2 -> (lon, lat) of the country's label point."""
    text = resources.files("straits.report").joinpath("assets/country_centroids.json")
    doc = json.loads(text.read_text(encoding="utf-8"))
    return {k: (float(v[0]), float(v[1])) for k, v in doc["lon_lat"].items()}


def _spread(n: int, i: int, lon: float, lat: float) -> tuple[float, float]:
    if n <= 1:
        return lon, lat
    radius = 1.2 + 0.15 * n
    angle = 2 * math.pi * i / n
    return lon + radius * math.cos(angle), lat + radius * math.sin(angle)


def map_view(plan: dict[str, Any], sc: Scenario) -> MapView:
    placed = {(a["workload"], a["stage"]): str(a["site"]) for a in plan.get("assignments") or []}
    per_site: dict[str, int] = {}
    for site in placed.values():
        per_site[site] = per_site.get(site, 0) + 1
    points = centroids()
    by_country: dict[str, list[str]] = {}
    for s in sc.sites:
        by_country.setdefault(s.country, []).append(s.id)
    marks = []
    for s in sc.sites:
        lon, lat = points.get(s.country, (0.0, 0.0))
        peers = by_country[s.country]
        lon, lat = _spread(len(peers), peers.index(s.id), lon, lat)
        marks.append(
            SiteMark(
                site=s.id,
                country=s.country,
                operator_hq=s.operator_hq,
                lon=round(lon, 3),
                lat=round(lat, 3),
                stages=per_site.get(s.id, 0),
                chips=tuple(p.chip for p in s.pools),
            )
        )
    sites = {s.id for s in sc.sites}
    data = {d.id: d for d in sc.datasets}
    moves: list[Movement] = []
    for w in sc.workloads:
        for st in w.stages:
            dst = placed.get((w.id, st.id))
            if dst is None:
                continue
            for d in st.datasets:
                ds = data.get(d)
                if ds is not None and ds.located_at in sites and ds.located_at != dst:
                    moves.append(
                        Movement("data", d, ds.located_at, dst, ds.size_gb, f"{w.id}/{st.id}")
                    )
            for p in st.after:
                src = placed.get((w.id, p))
                if src is not None and src != dst:
                    # the checkpoint the plan moves (and charges egress for): it said "-"
                    gb = weights_gb(w.model)
                    moves.append(
                        Movement("weights", f"{w.id}/{p}", src, dst, gb, f"{w.id}/{st.id}")
                    )
    return MapView(sites=tuple(marks), movements=tuple(moves))
