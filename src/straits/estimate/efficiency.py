"""Predicted efficiency: the fastest layout that fits, and what its step time is made of."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from straits.catalog import Chip, get_chip
from straits.estimate.calibration import DEFAULT, Calibration, gemm_fraction
from straits.estimate.layout import NODE, RC_LEVELS, Layout, Shapes, layouts
from straits.estimate.memory import USABLE_FRACTION, MemoryUse, training_memory
from straits.estimate.stack import DEFAULT_YEAR, stack
from straits.estimate.steptime import StepTime, max_data_parallel, step_time
from straits.model.scenario import ModelSpec


@dataclass(frozen=True)
class Efficiency:
    fits: bool
    layout: Layout
    step: StepTime
    memory: MemoryUse

    @property
    def mfu(self) -> float:
        return self.step.mfu

    def factors(
        self, model: ModelSpec, chip: Chip, cal: Calibration = DEFAULT, year: int = DEFAULT_YEAR
    ) -> dict[str, float]:
        """The multiplicative parts of the kernel rate."""
        out = {
            "gemm_fraction": gemm_fraction(chip.family, cal),
            "framework": round(cal.framework_for(chip.family), 4),
        }
        out["width"] = round(cal.width_efficiency(model.d_model, chip.peak_tflops), 4)
        era = cal.kernel_efficiency(chip.family, year) / cal.kernel_efficiency(chip.family)
        if era < 1.0:
            out["software_era"] = round(era, 4)
        if model.precision == "fp8" and chip.peak_fp8_tflops:
            out["fp8_speedup"] = round(2.0 * cal.fp8, 3)
        if model.is_moe:
            out["moe_gemm"] = round(cal.moe_gemm, 4)
        return out


@lru_cache(maxsize=4096)
def _shapes(model: ModelSpec, chips: int) -> Shapes:
    return Shapes(list(layouts(model, chips)))


def _fitting(
    model: ModelSpec, chip: Chip, shapes: Shapes, batch_tokens: float, year: int
) -> tuple[np.ndarray, MemoryUse]:
    """Which layouts fit (memory within the usable HBM, replicas fed by the batch, and a
    recomputation the software of ``year`` used)."""
    st = stack(year)
    mem = training_memory(model, shapes, st.fused_attention)
    ok = (np.asarray(mem.total_gb) <= chip.memory_gb * USABLE_FRACTION) & (
        shapes.dp <= max_data_parallel(batch_tokens, model.seq_len)
    )
    if len(st.recompute) < len(RC_LEVELS):
        ok &= np.isin(shapes.rc, [RC_LEVELS.index(r) for r in st.recompute])
    return ok, mem


def fits_anywhere(
    model: ModelSpec, chip: Chip, chips: int, batch_tokens: float, year: int = DEFAULT_YEAR
) -> bool:
    shapes = _shapes(model, chips)
    return bool(shapes.items) and bool(_fitting(model, chip, shapes, batch_tokens, year)[0].any())


@lru_cache(maxsize=16384)
def _best(
    model: ModelSpec, chip_id: str, chips: int, batch_tokens: float, cal: Calibration, year: int
) -> Efficiency:
    chip = get_chip(chip_id)
    shapes = _shapes(model, chips)
    if not shapes.items:
        shapes = Shapes([Layout(chips, 1, 1, 1, 3, "full")])
    ok, mem = _fitting(model, chip, shapes, batch_tokens, year)
    if ok.any():
        total = np.asarray(step_time(model, chip, shapes, batch_tokens, cal, year).total)
        i = int(np.argmin(np.where(ok, total, np.inf)))
        fits = True
    else:  # nothing fits: report the layout that needs the least memory, for the figures
        fed = shapes.dp <= max_data_parallel(batch_tokens, model.seq_len)
        totals = np.asarray(mem.total_gb)
        i = int(np.argmin(np.where(fed, totals, np.inf) if fed.any() else totals))
        fits = False
    lay = shapes.items[i]
    fused = stack(year).fused_attention
    return Efficiency(
        fits,
        lay,
        step_time(model, chip, lay, batch_tokens, cal, year),
        training_memory(model, lay, fused),
    )


def predict(
    model: ModelSpec,
    chip: Chip,
    chips: int,
    batch_tokens: float,
    cal: Calibration = DEFAULT,
    year: int = DEFAULT_YEAR,
) -> Efficiency:
    """The fastest layout of ``model`` on ``chips`` x ``chip`` that fits in memory."""
    return _best(model, chip.id, chips, batch_tokens, cal, year)


def at_layout(
    model: ModelSpec,
    chip: Chip,
    layout: Layout,
    batch_tokens: float,
    cal: Calibration = DEFAULT,
    year: int = DEFAULT_YEAR,
) -> Efficiency:
    """The figures of one given layout (the fitting script holds layouts fixed while it
    searches the parameters)."""
    fused = stack(year).fused_attention
    return Efficiency(
        True,
        layout,
        step_time(model, chip, layout, batch_tokens, cal, year),
        training_memory(model, layout, fused),
    )


def cluster_sizes(start: int) -> list[int]:
    """Sizes tried when looking for the fewest chips: every node multiple up to 16 nodes, then
    ~12% steps (rounded to nodes)."""
    sizes = [1, 2, 4] + [NODE * k for k in range(1, 17)]
    n = NODE * 16
    while n < 1 << 20:
        n = math.ceil(n * 1.125 / NODE) * NODE
        sizes.append(n)
    return [s for s in sizes if s >= start]


#: a gap of the size grid at most this wide is searched count by count for the fewest that fit,
#: one at most NODE_GAP wide node multiple by node multiple (at most 32 more checks)
GAP = 16
NODE_GAP = 256


@lru_cache(maxsize=4096)
def _min_chips(model: ModelSpec, chip_id: str, batch_tokens: float, year: int) -> int:
    chip = get_chip(chip_id)
    state = model.params * 16.0 / 1e9
    lower = max(1, math.floor(state / (chip.memory_gb * USABLE_FRACTION)))
    # a training state beyond the grid's largest size (1e15 parameters on 16-GB chips) is tried
    # on the fewest chips that could hold it
    sizes = cluster_sizes(lower) or [lower]
    below = lower - 1  # no count below `lower` holds the training state
    for n in sizes:
        if fits_anywhere(model, chip, n, batch_tokens, year):
            # the grid skips counts (11 H100s hold a 44B model whose grid answer is 16): in a
            # narrow gap the first count that fits is the fewest
            if n - below <= GAP:
                gap = range(below + 1, n)
            elif n - below <= NODE_GAP:
                gap = range(-(-(below + 1) // NODE) * NODE, n, NODE)
            else:
                gap = range(0)
            return next((k for k in gap if fits_anywhere(model, chip, k, batch_tokens, year)), n)
        below = n
    return sizes[-1]


def min_chips(
    model: ModelSpec,
    chip: Chip,
    batch_tokens: float,
    cal: Calibration = DEFAULT,
    year: int = DEFAULT_YEAR,
) -> int:
    """The fewest chips on which some layout fits (memory does not depend on the calibration):
    searched on 1, 2, 4 and node multiples (12.5% apart beyond 128), then in the last gap count
    by count when it is at most :data:`GAP` wide, node multiple by node multiple when at most
    :data:`NODE_GAP` (beyond about 2,048 chips the grid's answer stands)."""
    return _min_chips(model, chip.id, batch_tokens, year)
