"""The chip catalog: shipped accelerator specs with sources, and derived export figures.

Specs are data (``chips.yaml``); TPP, performance density and export classes are computed from
them (:mod:`straits.catalog.export_class`), never typed in. Ids are looked up case-insensitively.
"""

from __future__ import annotations

from functools import cache, cached_property
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from straits.controls import shorten
from straits.errors import CatalogError, UnknownChipError, close_names, did_you_mean

Confidence = Literal["V", "V2", "D", "M"]


class Figure(BaseModel):
    """One sourced number. Either ``value`` or a ``low``/``high`` range (midpoint used)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: float | bool | None = None
    low: float | None = None
    high: float | None = None
    source: str
    confidence: Confidence

    @model_validator(mode="after")
    def _one_form(self) -> Figure:
        has_range = self.low is not None and self.high is not None
        if (self.value is None) == (not has_range):
            raise ValueError("a figure needs either `value` or both `low` and `high`")
        if has_range and self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError("`low` must not exceed `high`")
        return self

    @property
    def is_range(self) -> bool:
        return self.value is None

    @property
    def mid(self) -> float:
        """The value, or the midpoint of the range."""
        if self.value is not None:
            return float(self.value)
        assert self.low is not None and self.high is not None
        return (self.low + self.high) / 2.0

    @property
    def upper(self) -> float:
        """The value, or the top of the range (used where a conservative reading wants it)."""
        if self.value is not None:
            return float(self.value)
        assert self.high is not None
        return self.high

    @property
    def lower(self) -> float:
        """The value, or the bottom of the range (the conservative reading of a divisor such as
        a die area, where the top would lower the quotient)."""
        if self.value is not None:
            return float(self.value)
        assert self.low is not None
        return self.low

    def describe(self) -> str:
        if self.value is not None:
            return f"{self.value:g}" if not isinstance(self.value, bool) else str(self.value)
        return f"{self.mid:g} (midpoint of {self.low:g}-{self.high:g})"


SPEC_FIELDS = (
    "bf16_tflops",
    "fp16_tflops",
    "fp8_tflops",
    "int8_tops",
    "hbm_gb",
    "hbm_tbps",
    "scaleup_gbps",
    "tdp_w",
    "die_mm2",
    "scaleout_gbit",
)

#: bit length of each throughput figure, for TPP = dense throughput x bit length
BIT_LENGTH: dict[str, int] = {"bf16_tflops": 16, "fp16_tflops": 16, "fp8_tflops": 8, "int8_tops": 8}


class Chip(BaseModel):
    """An accelerator with its sourced specs. Derived figures are properties."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    name: str
    vendor: str
    origin: str = Field(pattern=r"^[A-Z]{2}$")
    family: str
    datacenter: bool
    bf16_tflops: Figure | None = None
    fp16_tflops: Figure | None = None
    fp8_tflops: Figure | None = None
    int8_tops: Figure | None = None
    hbm_gb: Figure
    hbm_tbps: Figure
    scaleup_gbps: Figure | None = None
    tdp_w: Figure | None = None
    die_mm2: Figure | None = None
    prc_advanced: Figure | None = None
    rent_usd_per_hour: Figure | None = None
    """A reference rental price, used only when a request gives none."""
    scaleout_gbit: Figure | None = None
    """Scale-out network per chip (Gbit/s) in a typical cluster of this chip."""

    @model_validator(mode="after")
    def _has_compute(self) -> Chip:
        if self.bf16_tflops is None and self.fp16_tflops is None:
            raise ValueError("a chip needs bf16_tflops or fp16_tflops")
        return self

    # --- figures used by the estimator -------------------------------------------------------
    @property
    def peak_tflops(self) -> float:
        """Dense 16-bit peak (BF16, else FP16) in TFLOP/s: the basis of MFU."""
        fig = self.bf16_tflops or self.fp16_tflops
        assert fig is not None
        return fig.mid

    @property
    def peak_fp8_tflops(self) -> float | None:
        return self.fp8_tflops.mid if self.fp8_tflops else None

    @property
    def memory_gb(self) -> float:
        return self.hbm_gb.mid

    @property
    def memory_tbps(self) -> float:
        return self.hbm_tbps.mid

    @property
    def tdp_watts(self) -> float | None:
        return self.tdp_w.mid if self.tdp_w else None

    # --- derived export-control figures ------------------------------------------------------
    def _tpp(self, upper: bool) -> float:
        best = 0.0
        for name, bits in BIT_LENGTH.items():
            fig: Figure | None = getattr(self, name)
            if fig is not None:
                best = max(best, (fig.upper if upper else fig.mid) * bits)
        return best

    @cached_property
    def tpp(self) -> float:
        """Total processing performance: max over precisions of dense TOPS x bit length.

        A spec known only as a range contributes its midpoint (see :attr:`tpp_upper`).
        """
        return self._tpp(upper=False)

    @cached_property
    def tpp_upper(self) -> float:
        """TPP with every range read at its top: the conservative figure for a control threshold."""
        return self._tpp(upper=True)

    @cached_property
    def performance_density(self) -> float | None:
        """PD = TPP / logic die area (mm^2); None when the die area is not published."""
        if self.die_mm2 is None:
            return None
        return self.tpp / self.die_mm2.mid

    @property
    def io_gbps(self) -> float | None:
        return self.scaleup_gbps.mid if self.scaleup_gbps else None

    @property
    def io_gbps_upper(self) -> float | None:
        """Chip I/O with a range read at its top: the conservative figure for a threshold."""
        return self.scaleup_gbps.upper if self.scaleup_gbps else None

    @property
    def die_mm2_lower(self) -> float | None:
        """Logic die area with a range read at its bottom: the conservative divisor of PD."""
        return self.die_mm2.lower if self.die_mm2 else None

    @property
    def mid_figures(self) -> list[str]:
        """Names of the figures that are ranges (the output says the midpoint was used)."""
        return [n for n in SPEC_FIELDS if (f := getattr(self, n)) is not None and f.is_range]

    @property
    def is_prc_advanced(self) -> bool:
        return bool(self.prc_advanced and self.prc_advanced.value)


class Catalog:
    """Chips by id, looked up case-insensitively."""

    def __init__(self, chips: list[Chip]) -> None:
        self._chips = {c.id.lower(): c for c in chips}
        if len(self._chips) != len(chips):
            raise CatalogError("duplicate chip ids in the catalog")

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._chips.values())

    def __len__(self) -> int:
        return len(self._chips)

    def __contains__(self, chip_id: object) -> bool:
        return isinstance(chip_id, str) and chip_id.lower() in self._chips

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self._chips.values()]

    def get(self, chip_id: str) -> Chip:
        try:
            return self._chips[chip_id.lower()]
        except KeyError:
            close = close_names(chip_id, self.ids)  # `H1OO`: did you mean 'H100-SXM'? (cli65)
            raise UnknownChipError(
                f"unknown chip {shorten(str(chip_id))!r}{did_you_mean(close)}",
                expected="one of " + ", ".join(self.ids),
                suggestions=close,
            ) from None

    def canonical(self, chip_id: str) -> str:
        return self.get(chip_id).id


@cache
def catalog() -> Catalog:
    """The shipped catalog (parsed once)."""
    text = resources.files("straits.catalog").joinpath("chips.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    try:
        return Catalog([Chip.model_validate(item) for item in raw])
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise CatalogError(f"shipped chips.yaml is invalid: {exc}") from exc


def get_chip(chip_id: str) -> Chip:
    return catalog().get(chip_id)
