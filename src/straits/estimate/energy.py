"""Energy and carbon of a stage: chips x hours x TDP x average power share x PUE, and the grid.

Defaults, when a site does not give its own figures: PUE 1.3 (between hyperscale campuses,
~1.1-1.2, and the industry average, ~1.5-1.6 in Uptime Institute surveys; confidence M); the
grid carbon intensity of the site's country from ``catalog/grid.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from straits.catalog import Chip
from straits.estimate.rounding import figure

DEFAULT_PUE = 1.3
#: average board power as a share of TDP: LLM training keeps accelerators near their limit;
#: serving idles between batches (first principles; confidence M)
POWER_SHARE = {"train": 0.80, "serve": 0.60}


@dataclass(frozen=True)
class GridIntensity:
    country: str
    gco2_per_kwh: float
    source: str
    confidence: str


@cache
def grid_table() -> dict[str, GridIntensity]:
    text = resources.files("straits.catalog").joinpath("grid.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    src, conf = raw["source"], raw["confidence"]
    return {
        str(c): GridIntensity(str(c), float(v), src, conf) for c, v in raw["gco2_per_kwh"].items()
    }


@dataclass(frozen=True)
class Energy:
    kwh: float
    pue: float
    gco2_per_kwh: float | None
    grid_source: str

    @property
    def tco2e(self) -> float | None:
        return None if self.gco2_per_kwh is None else self.kwh * self.gco2_per_kwh / 1e6

    def to_json(self) -> dict[str, float | str | None]:
        t = self.tco2e
        return {  # a positive figure never reads 0 (8.9 chip-hours in France: 0.00036 t)
            "kwh": figure(self.kwh, 1),
            "pue": self.pue,
            "gco2_per_kwh": self.gco2_per_kwh,
            "tco2e": None if t is None else figure(t, 2),
            "grid_source": self.grid_source,
        }


def energy(
    chip: Chip,
    chip_hours: float,
    kind: str,
    *,
    pue: float | None = None,
    gco2_per_kwh: float | None = None,
    country: str | None = None,
) -> Energy | None:
    """Energy of ``chip_hours`` on ``chip``; None when the chip's TDP is not published."""
    watts = chip.tdp_watts
    if watts is None:
        return None
    used_pue = pue if pue is not None else DEFAULT_PUE
    kwh = chip_hours * watts * POWER_SHARE.get(kind, 0.8) * used_pue / 1000.0
    source = "site"
    intensity = gco2_per_kwh
    if intensity is None and country is not None and country in grid_table():
        g = grid_table()[country]
        intensity, source = g.gco2_per_kwh, f"{g.source} ({g.confidence})"
    elif intensity is None:
        source = "unknown"
    return Energy(kwh, used_pue, intensity, source)
