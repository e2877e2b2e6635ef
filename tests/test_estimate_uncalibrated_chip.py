"""A training estimate on a chip family with no framework factor of its own says so (est49):
on a B200, an MI300X, an Ascend or a TPU the kernel efficiency borrows the A100 and H100
families' fitted factor and the 80% interval was measured on runs of other chips, yet the
answer claimed its interval as for an A100 without a word."""

from __future__ import annotations

import pytest

from straits.catalog import get_chip
from straits.estimate import estimate_training
from straits.estimate.calibration import FITTED_FAMILIES
from straits.estimate.nearest import uncalibrated_note
from straits.model.scenario import ModelSpec

SEVEN_B = ModelSpec(params=7e9, layers=32, d_model=4096, heads=32, seq_len=4096)


@pytest.mark.parametrize(
    "chip", ["A100-SXM-80GB", "H100-SXM", "H20", "B200", "MI300X", "Ascend-910C", "TPU-v5e"]
)
def test_a_chip_without_its_own_fitted_factor_is_noted(chip: str) -> None:
    est = estimate_training(SEVEN_B, 1e12, get_chip(chip), 64)
    noted = bool(uncalibrated_note(chip)) and uncalibrated_note(chip)[0] in est.notes
    assert noted == (get_chip(chip).family not in FITTED_FAMILIES)


def test_a_given_mfu_needs_no_such_note() -> None:
    est = estimate_training(SEVEN_B, 1e12, get_chip("MI300X"), 64, mfu=0.4)
    assert not set(uncalibrated_note("MI300X")) & set(est.notes)
    assert est.efficiency_basis == "given"
