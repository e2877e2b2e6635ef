"""Predicted model FLOPs utilization (MFU) per chip family.

Version 1: one default per chip family, from the calibration runs in
shared/reference/calibration-runs.md (whole-run MFU on the BF16 dense peak):

* ampere 0.47: Llama 2 70B, 1,720,320 A100-hours for 2.0T tokens (9.0e23 FLOPs with attention).
* hopper 0.38: DeepSeek-V3, 2,664K H800-hours for 14.8T tokens at 37B active (3.6e24 FLOPs).
* davinci 0.30: Pangu Ultra MoE on Ascend NPUs, MFU 30.0% (arXiv 2505.04519).
* others 0.35: no run; between the figures above.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from straits.catalog import Chip
from straits.model.scenario import ModelSpec

FAMILY_MFU: dict[str, float] = {
    "ampere": 0.47,
    "hopper": 0.38,
    "davinci": 0.30,
}
DEFAULT_MFU = 0.35


@dataclass(frozen=True)
class Efficiency:
    mfu: float
    components: dict[str, float] = field(default_factory=dict)
    basis: str = ""


def predict_mfu(model: ModelSpec, chip: Chip, chips: int) -> Efficiency:
    base = FAMILY_MFU.get(chip.family, DEFAULT_MFU)
    basis = (f"family default for {chip.family}" if chip.family in FAMILY_MFU
             else "default (no calibration run for this family)")
    return Efficiency(mfu=base, components={"family": base}, basis=basis)
