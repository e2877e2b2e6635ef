"""Cloud TPU slices: the chip counts a TPU generation is rented in, a hardware fact the planner
(which plans TPU stages at slice sizes only) and the exports (which name the slice) share.

v4 and v5p slices are 4, 8, 16 or 32 chips, then whole cubes of 64 (up to 2,048 and 6,144
chips); v5e and v6e slices are 1, 4, 8, 16, 32, 64, 128 or 256 chips, a 2D torus of at most 256
(Cloud TPU docs, "TPU v4", "TPU v5p", "TPU v5e", "TPU v6e"; "TPU types and topologies").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TpuSlices:
    """The slices of one TPU generation."""

    prefix: str
    """The name before the size (``tpu-v4``)."""
    cores_per_chip: int
    """What one chip adds to the size in the name: 2 TensorCores (v2-v4, v5p), 1 (v5e, v6e)."""
    small: tuple[int, ...]
    """Slice sizes in chips below one cube."""
    cube: int
    """Chips of one cube: larger slices are whole cubes (0: no slices but ``small``)."""
    max_chips: int

    def chips_ok(self, chips: int) -> bool:
        if chips in self.small:
            return True
        return self.cube > 0 and chips > 0 and chips % self.cube == 0 and chips <= self.max_chips

    def name(self, chips: int) -> str | None:
        """The slice of ``chips`` chips (``tpu-v4-128`` for 64), None when there is none."""
        return f"{self.prefix}-{chips * self.cores_per_chip}" if self.chips_ok(chips) else None

    def at_least(self, chips: int) -> int | None:
        """The chips of the smallest slice of at least ``chips`` (a serving replica's)."""
        for n in self.small:
            if n >= chips:
                return n
        if self.cube == 0:
            return None
        n = -(-chips // self.cube) * self.cube
        return n if n <= self.max_chips else None

    def sizes(self) -> str:
        """The slice sizes in words, for notes."""
        small = ", ".join(str(n) for n in self.small)
        if self.cube == 0:
            return f"{small} chips"
        return f"{small} or a multiple of {self.cube} up to {self.max_chips:,} chips"


_V5E_V6E = (1, 4, 8, 16, 32, 64, 128, 256)
#: the catalog chip id each generation has or would have -> its slices, as SkyPilot names them
GENERATIONS: dict[str, TpuSlices] = {
    "TPU-v4": TpuSlices("tpu-v4", 2, (4, 8, 16, 32), 64, 2048),
    "TPU-v5e": TpuSlices("tpu-v5litepod", 1, _V5E_V6E, 0, 256),
    "TPU-v5p": TpuSlices("tpu-v5p", 2, (4, 8, 16, 32), 64, 6144),
    "TPU-v6e": TpuSlices("tpu-v6e", 1, _V5E_V6E, 0, 256),
}


def _in_catalog() -> dict[str, TpuSlices]:
    from straits.catalog.chips import catalog

    ids = set(catalog().ids)
    return {chip: s for chip, s in GENERATIONS.items() if chip in ids}


#: catalog chip id -> its slices: the generations whose chip the catalog has
TPU_SLICES: dict[str, TpuSlices] = _in_catalog()


def is_tpu(chip: str) -> bool:
    return chip in TPU_SLICES
