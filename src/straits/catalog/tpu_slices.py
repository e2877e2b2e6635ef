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


@dataclass(frozen=True)
class GkeTpu:
    """How GKE runs the slices of one TPU generation: a node pool of TPU VMs labelled
    ``cloud.google.com/gke-tpu-accelerator`` (:attr:`accelerator`) and
    ``cloud.google.com/gke-tpu-topology`` (the slice's shape), each VM offering its chips as
    ``google.com/tpu``. A slice up to :attr:`single_host` chips is one VM; a larger one is
    VMs of 4 chips each (``ct4p-hightpu-4t``, ``ct5p-hightpu-4t``, ``ct5lp-hightpu-4t``,
    ``ct6e-standard-4t``)."""

    accelerator: str
    topologies: dict[int, str]
    """Slice chips -> its topology, for the sizes a topology is sourced for (no other)."""
    single_host: int

    def hosts(self, chips: int) -> tuple[int, int]:
        """(TPU VM hosts, chips of each) of a slice of ``chips`` chips."""
        return (1, chips) if chips <= self.single_host else (chips // 4, 4)


# GKE's docs, "Plan TPUs in GKE" (cloud.google.com/kubernetes-engine/docs/concepts/plan-tpus,
# "Choose the TPU topology"): the accelerator label values, the single-host shapes (v4 and
# v5p 2x2x1, one VM of 4 chips; v5e and v6e 1x1, 2x2 and 2x4, one VM of 1, 4 or 8 chips) and
# the multi-host ones (v4 and v5p 2x2x2, 2x2x4, 2x4x4, then AxBxC; v5e and v6e 4x4 to 16x16,
# VMs of 4 chips). The shape of each whole-cube size is the one the Cloud TPU docs give for it
# ("TPU v4" configurations: v4-128 4x4x4 to v4-4096 8x16x16, with v4-1536 8x8x12; "TPU v5p"
# configurations: 4x4x4 to 16x16x24); xpk's system_characteristics.py (AI-Hypercomputer/xpk)
# maps the same. A size with no shape there (192 chips: 4x4x12 or another) has none here: its
# stage is not guessed at. GKE offers a v5e or v6e 2x4 as one VM of 8 chips (ct5lp-hightpu-8t,
# ct6e-standard-8t) or two of 4; it is asked as the one VM (one pod of 8 chips).
_3D = {4: "2x2x1", 8: "2x2x2", 16: "2x2x4", 32: "2x4x4", 64: "4x4x4", 128: "4x4x8"}
_3D.update({256: "4x8x8", 512: "8x8x8", 1024: "8x8x16", 2048: "8x16x16"})
_2D = {1: "1x1", 4: "2x2", 8: "2x4", 16: "4x4", 32: "4x8", 64: "8x8", 128: "8x16", 256: "16x16"}
#: the catalog chip id of each generation -> how GKE runs its slices
GKE_TPU: dict[str, GkeTpu] = {
    "TPU-v4": GkeTpu("tpu-v4-podslice", {**_3D, 768: "8x8x12"}, 4),
    "TPU-v5e": GkeTpu("tpu-v5-lite-podslice", _2D, 8),
    "TPU-v5p": GkeTpu("tpu-v5p-slice", {**_3D, 4096: "16x16x16", 6144: "16x16x24"}, 4),
    "TPU-v6e": GkeTpu("tpu-v6e-slice", _2D, 8),
}


def _in_catalog() -> dict[str, TpuSlices]:
    from straits.catalog.chips import catalog

    ids = set(catalog().ids)
    return {chip: s for chip, s in GENERATIONS.items() if chip in ids}


#: catalog chip id -> its slices: the generations whose chip the catalog has
TPU_SLICES: dict[str, TpuSlices] = _in_catalog()


def is_tpu(chip: str) -> bool:
    return chip in TPU_SLICES
