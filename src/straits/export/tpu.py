"""Cloud TPU slices as SkyPilot asks for them.

A TPU is not asked for as N chips on nodes of 8, as a GPU is: SkyPilot's catalog offers each
slice type once, quantity 1 (``sky show-gpus``: ``tpu-v4-8 1``, ``tpu-v4-16 1``...), and a
multi-host slice (a TPU Pod slice) is one resource whose hosts SkyPilot starts and runs the task
on itself, so the task keeps ``num_nodes: 1`` (SkyPilot's docs, "Cloud TPU": "To use a TPU Pod,
simply change the accelerators field"). ``tpu-v4-8:8`` on 8 nodes asked for 8 slices of 4 chips
on each of 8 nodes, which the catalog does not offer.

The slice's name counts TensorCores for TPU v2 to v4 and v5p (a v4 chip has two: 64 chips are
``tpu-v4-128``) and chips for v5e (``tpu-v5litepod-N``) and v6e (``tpu-v6e-N``), as SkyPilot
names them (``sky show-gpus``: ``tpu-v5litepod-1, -4, -8``, ``tpu-v5p-8, -16, -32``,
``tpu-v6e-1, -4, -8``). Google's v4 slices are 2x2x1, 2x2x2, 2x2x4 and 2x4x4 chips (4, 8, 16,
32), then shapes AxBxC of whole 4x4x4 cubes (multiples of 64 chips) up to v4-4096, 2,048 chips
(Cloud TPU docs, "TPU v4" and "TPU types and topologies"; SkyPilot's GCP catalog lists v4-8 to
v4-64, then every multiple of 128 TensorCores). A count between them (48 chips) has no slice.
v5p's are the same small shapes, then whole cubes up to 16x16x24, 6,144 chips (Cloud TPU docs,
"TPU v5p"); v5e's and v6e's are 1, 4, 8, 16, 32, 64, 128 and 256 chips, a 2D torus of at most
256 (Cloud TPU docs, "TPU v5e", "TPU v6e").

Only the chips of Straits' catalog (``catalog/chips.yaml``) are mapped (:data:`TPU_SLICES`):
TPU v4, v5e, v5p and v6e today; a generation of :data:`GENERATIONS` the catalog lacks waits for
its chip to be added, with sourced figures, under the id it is keyed by (fix90).
"""

from __future__ import annotations

import re
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

_SLICE = re.compile(r"(tpu-[a-z0-9]+)(?:-([0-9]+))?", re.IGNORECASE)


def is_tpu(chip: str) -> bool:
    return chip in TPU_SLICES


def slice_for(chip: str, chips: int, named: str | None = None) -> tuple[str | None, str]:
    """The slice SkyPilot launches for ``chips`` chips of the TPU ``chip`` (and an empty
    reason), or None and why not. ``named`` is the pool's ``skypilot_accelerator``: the
    generation's prefix (``tpu-v4``), which takes the size from the chips, or a whole slice
    name, taken only when it is the slice of ``chips`` chips (one slice name for every stage of
    the pool would launch other counts than planned)."""
    s = TPU_SLICES[chip]
    want = s.name(chips)
    if want is None:
        return None, f"{chips} {chip} chips are no {s.prefix} slice (slices of {s.sizes()})"
    if not named:
        return want, ""
    m = _SLICE.fullmatch(named)
    if m is None:
        return None, f"{named!r} is no Cloud TPU slice name ({s.prefix} or {want})"
    if m.group(2) is None:
        if m.group(1).lower() != s.prefix:
            return None, f"{named!r} is not a {chip} slice ({s.prefix} or {want})"
        return want, ""
    if named.lower() != want:
        return None, f"{named!r} is not the slice of {chips} {chip} chips ({want})"
    return want, ""


def chip_of_slice(accelerator: str) -> str | None:
    """The catalog chip of a slice name SkyPilot launches (``tpu-v4-128`` -> ``TPU-v4``), None
    for anything else (a size no slice has, another generation, a GPU)."""
    m = _SLICE.fullmatch(accelerator)
    if m is None or m.group(2) is None:
        return None
    for chip, s in TPU_SLICES.items():
        cores = int(m.group(2))
        if (
            m.group(1).lower() == s.prefix
            and cores % s.cores_per_chip == 0
            and s.chips_ok(cores // s.cores_per_chip)
        ):
            return chip
    return None
