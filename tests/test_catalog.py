"""The chip catalog: ids, sourced figures, and export figures computed from specs."""

from __future__ import annotations

from typing import Any

import pytest

from straits.catalog import catalog, classify_2022, classify_2023, get_chip
from straits.catalog.chips import SPEC_FIELDS, Chip
from straits.errors import UnknownChipError
from straits.rules.context import chip_facts

DESIGN_IDS = [
    "A100-SXM-80GB",
    "A100-SXM-40GB",
    "A800-SXM",
    "H100-SXM",
    "H800-SXM",
    "H200-SXM",
    "H20",
    "B200",
    "MI300X",
    "Ascend-910B",
    "Ascend-910C",
    "TPU-v4",
]


@pytest.mark.parametrize("chip_id", DESIGN_IDS)
def test_design_ids_resolve_case_insensitively(chip_id: str) -> None:
    assert get_chip(chip_id.lower()).id == chip_id
    assert get_chip(chip_id.upper()).id == chip_id


def test_unknown_chip_names_the_known_ones() -> None:
    with pytest.raises(UnknownChipError) as exc:
        get_chip("H300")
    assert "H300" in str(exc.value) and "H100-SXM" in str(exc.value)


def test_every_figure_has_a_source_and_confidence() -> None:
    for chip in catalog():
        for name in (*SPEC_FIELDS, "prc_advanced", "rent_usd_per_hour"):
            fig = getattr(chip, name)
            if fig is not None:
                assert fig.source.strip(), f"{chip.id}.{name} has no source"
                assert fig.confidence in ("V", "V2", "D", "M")


# (chip, TPP, PD) from shared/reference/chips.md; the catalog computes them from specs
@pytest.mark.parametrize(
    ("chip_id", "tpp", "pd"),
    [
        ("A100-SXM-80GB", 4992, 6.04),
        ("A800-SXM", 4992, 6.04),
        ("H100-SXM", 15832, 19.4),
        ("H800-SXM", 15832, 19.4),
        ("H200-SXM", 15832, 19.4),
        ("H20", 2368, 2.91),
        ("B200", 36000, 22.5),
        ("MI300X", 20920, None),
        ("Ascend-910C", 12480, None),
        ("TPU-v4", 4400, None),
    ],
)
def test_tpp_and_pd_are_derived_from_specs(chip_id: str, tpp: float, pd: float | None) -> None:
    chip = get_chip(chip_id)
    assert chip.tpp == pytest.approx(tpp, rel=0.005)
    if pd is None:
        assert chip.performance_density is None
    else:
        assert chip.performance_density == pytest.approx(pd, rel=0.01)


def test_range_uses_midpoint_and_top_for_thresholds() -> None:
    chip = get_chip("Ascend-910B")
    assert chip.peak_tflops == pytest.approx((256 + 376) / 2)
    assert chip.tpp == pytest.approx(316 * 16)
    assert chip.tpp_upper == pytest.approx(376 * 16)
    assert "fp16_tflops" in chip.mid_figures


@pytest.mark.parametrize(
    ("chip_id", "c2022", "c2023"),
    [
        ("A100-SXM-80GB", "3A090", "3A090.a"),
        ("A800-SXM", "not-controlled", "3A090.a"),  # 400 GB/s I/O escaped the 2022 rule
        ("H100-SXM", "3A090", "3A090.a"),
        ("H800-SXM", "not-controlled", "3A090.a"),
        ("H20", "not-controlled", "not-controlled"),  # below both 2023 tiers by design
        ("B200", "3A090", "3A090.a"),
        ("MI300X", "3A090", "3A090.a"),
        ("TPU-v4", "not-controlled", "3A090.a"),  # TPP < 4800; die area unknown: PD read as high
    ],
)
def test_export_classes(chip_id: str, c2022: str, c2023: str) -> None:
    chip = get_chip(chip_id)
    assert classify_2022(chip).cls == c2022
    assert classify_2023(chip).cls == c2023


def _synthetic(tflops: float, die_mm2: float, datacenter: bool = True) -> Chip:
    spec = {
        **get_chip("H20").model_dump(),
        "id": "X",
        "datacenter": datacenter,
        "bf16_tflops": {"value": tflops, "source": "test", "confidence": "D"},
        "fp8_tflops": None,
        "die_mm2": {"value": die_mm2, "source": "test", "confidence": "D"},
    }
    return Chip.model_validate(spec)


# BF16 TFLOPS x 16 = TPP; PD = TPP / die area
@pytest.mark.parametrize(
    ("tflops", "die", "datacenter", "expected"),
    [
        (300, 1000, True, "3A090.a"),  # TPP 4800: .a at the threshold
        (299.99, 1000, True, "3A090.b"),  # TPP just under 4800, PD 4.8: .b.1
        (150, 100, True, "3A090.a"),  # TPP 2400, PD 24 >= 5.92: .a.2
        (150, 1500, True, "3A090.b"),  # TPP 2400, PD 1.6: .b.1 at both lower edges
        (149.99, 1500, True, "not-controlled"),  # TPP just under 2400, PD under 3.2
        (150, 1600, True, "not-controlled"),  # TPP 2400, PD 1.5 < 1.6
        (100, 500, True, "3A090.b"),  # TPP 1600, PD 3.2: .b.2 at its edges
        (99.99, 100, True, "not-controlled"),  # TPP under 1600
        (150, 100, False, "not-controlled"),  # density tiers only for data-centre chips
        (300, 1000, False, "3A090.a"),  # TPP >= 4800 applies to every chip
        # rules30: each density edge at, just under and just over it (H20's TPP, 2,368)
        (148, 400, True, "3A090.a"),  # PD 5.92: .a.2 at its edge
        (148, 400.01, True, "3A090.b"),  # PD just under 5.92: .b.2
        (148, 399.99, True, "3A090.a"),  # PD just over 5.92
        (148, 740, True, "3A090.b"),  # PD 3.2: .b.2 at its edge (TPP under 2,400)
        (148, 740.01, True, "not-controlled"),  # PD just under 3.2, TPP under 2,400
        (148, 814, True, "not-controlled"),  # the H20's own die: PD 2.91
        (150, 1500.01, True, "not-controlled"),  # TPP 2400, PD just under 1.6
        (150.01, 1500, True, "3A090.b"),  # TPP just over 2400, PD just over 1.6
        (100, 499.99, True, "3A090.b"),  # TPP 1600, PD just over 3.2
        (100, 500.01, True, "not-controlled"),  # TPP 1600, PD just under 3.2
    ],
)
def test_2023_classification_at_the_edges(
    tflops: float, die: float, datacenter: bool, expected: str
) -> None:
    assert classify_2023(_synthetic(tflops, die, datacenter)).cls == expected


def _ranged(chip: Chip, field: str, low: float, high: float) -> Chip:
    figure = {"low": low, "high": high, "source": "test", "confidence": "M"}
    return Chip.model_validate({**chip.model_dump(), field: figure})


# rules30: a die area known only as a range was read at its midpoint and a chip I/O at its
# midpoint, where the module reads every other range conservatively: the smallest die gives the
# highest density, the fastest I/O meets the 2022 threshold first.
@pytest.mark.parametrize(
    ("field", "low", "high", "classify", "expected"),
    [
        # TPP 2,368; die 390-420 mm^2: PD 6.07 at the bottom (.a), 5.85 at the midpoint (.b)
        ("die_mm2", 390, 420, classify_2023, "3A090.a"),
        # TPP 2,368; die 700-800 mm^2: PD 3.38 at the bottom (.b), 3.16 at the midpoint
        ("die_mm2", 700, 800, classify_2023, "3A090.b"),
        # TPP 4,800; I/O 500-620 GB/s: 620 meets the 2022 threshold, the midpoint 560 does not
        ("scaleup_gbps", 500, 620, classify_2022, "3A090"),
        ("scaleup_gbps", 500, 598, classify_2022, "not-controlled"),
    ],
)
def test_ranges_are_read_conservatively_for_the_classes(
    field: str, low: float, high: float, classify: Any, expected: str
) -> None:
    tflops = 148 if field == "die_mm2" else 300
    chip = _ranged(_synthetic(tflops, 400), field, low, high)
    assert classify(chip).cls == expected


def test_a_die_range_reaches_the_rules_at_its_bottom() -> None:
    chip = _ranged(_synthetic(148, 400), "die_mm2", 390, 420)
    facts = chip_facts(chip)
    assert facts["class_2023"] == "3A090.a"
    assert facts["pd"]["__extn"]["arg"] == f"{2368 / 390:.4f}"


def test_2022_classification_needs_both_tpp_and_io() -> None:
    chip = _synthetic(300, 1000)  # H20's 900 GB/s I/O
    assert classify_2022(chip).cls == "3A090"
    slow = Chip.model_validate(
        {**chip.model_dump(), "scaleup_gbps": {"value": 599, "source": "test", "confidence": "D"}}
    )
    assert classify_2022(slow).cls == "not-controlled"
