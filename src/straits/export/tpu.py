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

from straits.catalog.tpu_slices import GENERATIONS, TPU_SLICES, TpuSlices, is_tpu

__all__ = ["GENERATIONS", "TPU_SLICES", "TpuSlices", "chip_of_slice", "is_tpu", "slice_for"]

_SLICE = re.compile(r"(tpu-[a-z0-9]+)(?:-([0-9]+))?", re.IGNORECASE)


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
