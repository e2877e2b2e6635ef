"""US export classification of an accelerator, computed from its specs.

ECCN 3A090 as defined by two rules (see shared/reference/rules-timeline.md):

* 2022-10-07, 87 FR 62186: 3A090 = TPP >= 4800 **and** bidirectional chip I/O >= 600 GB/s.
* 2023-11-17, 88 FR 73458:
  - 3A090.a: TPP >= 4800, or TPP >= 1600 and PD >= 5.92;
  - 3A090.b: 2400 <= TPP < 4800 and 1.6 <= PD < 5.92, or TPP >= 1600 and 3.2 <= PD < 5.92.
  The performance-density criteria (.a.2 and .b) apply to chips designed or marketed for data
  centres; TPP >= 4800 applies to every chip.

Conservative readings, stated in each result's ``basis``: a spec known only as a range is read at
its top (TOPS, I/O), a die area known only as a range at its bottom (the higher density); an
unknown I/O bandwidth is read as meeting the 2022 threshold; an unknown performance
density is read as meeting the .a density threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from straits.catalog.chips import Chip

Class2022 = Literal["3A090", "not-controlled"]
Class2023 = Literal["3A090.a", "3A090.b", "not-controlled"]

TPP_A = 4800.0
TPP_FLOOR = 1600.0
TPP_B_LOW = 2400.0
PD_A = 5.92
PD_B_LOW = 1.6
PD_B2_LOW = 3.2
IO_2022_GBPS = 600.0


@dataclass(frozen=True)
class Classification:
    cls: str
    basis: str


def classify_2022(chip: Chip) -> Classification:
    tpp = chip.tpp_upper
    io = chip.io_gbps_upper
    if tpp < TPP_A:
        return Classification("not-controlled", f"TPP {tpp:,.0f} < {TPP_A:,.0f}")
    if io is None:
        return Classification(
            "3A090",
            f"TPP {tpp:,.0f} >= {TPP_A:,.0f}; I/O unknown, read as >= {IO_2022_GBPS:g} GB/s",
        )
    if io >= IO_2022_GBPS:
        return Classification("3A090", f"TPP {tpp:,.0f} >= {TPP_A:,.0f} and I/O {io:g} >= 600 GB/s")
    return Classification(
        "not-controlled", f"TPP {tpp:,.0f} >= {TPP_A:,.0f} but I/O {io:g} < 600 GB/s"
    )


def classify_2023(chip: Chip) -> Classification:
    tpp = chip.tpp_upper
    die = chip.die_mm2_lower
    pd = tpp / die if die is not None else None
    if tpp >= TPP_A:
        return Classification("3A090.a", f"TPP {tpp:,.0f} >= {TPP_A:,.0f}")
    if tpp < TPP_FLOOR:
        return Classification("not-controlled", f"TPP {tpp:,.0f} < {TPP_FLOOR:,.0f}")
    if not chip.datacenter:
        return Classification(
            "not-controlled", f"TPP {tpp:,.0f} < {TPP_A:,.0f}; not a data-centre chip"
        )
    if pd is None:
        return Classification(
            "3A090.a", f"TPP {tpp:,.0f} >= {TPP_FLOOR:,.0f}; PD unknown, read as >= {PD_A}"
        )
    if pd >= PD_A:
        return Classification("3A090.a", f"TPP {tpp:,.0f} >= 1,600 and PD {pd:.2f} >= {PD_A}")
    if tpp >= TPP_B_LOW and pd >= PD_B_LOW:
        return Classification(
            "3A090.b", f"2,400 <= TPP {tpp:,.0f} < 4,800 and 1.6 <= PD {pd:.2f} < {PD_A}"
        )
    if pd >= PD_B2_LOW:
        return Classification("3A090.b", f"TPP {tpp:,.0f} >= 1,600 and 3.2 <= PD {pd:.2f} < {PD_A}")
    return Classification(
        "not-controlled", f"TPP {tpp:,.0f} and PD {pd:.2f} below both 3A090 tiers"
    )


def us_subject(chip: Chip) -> bool:
    """Whether the chip is a US-origin item (subject to the EAR as such)."""
    return chip.origin == "US"
