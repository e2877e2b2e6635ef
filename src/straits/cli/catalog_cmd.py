"""``straits chips``: the accelerator catalog with derived export figures."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from straits.catalog import Chip, catalog, classify_2022, classify_2023
from straits.cli.common import JsonOption, console, print_json


def chip_json(chip: Chip) -> dict[str, Any]:
    figures = {}
    for name in ("bf16_tflops", "fp16_tflops", "fp8_tflops", "int8_tops", "hbm_gb", "hbm_tbps",
                 "scaleup_gbps", "tdp_w", "die_mm2", "rent_usd_per_hour"):
        fig = getattr(chip, name)
        if fig is not None:
            figures[name] = fig.model_dump(exclude_none=True)
    c22, c23 = classify_2022(chip), classify_2023(chip)
    pd = chip.performance_density
    return {
        "id": chip.id, "name": chip.name, "vendor": chip.vendor, "origin": chip.origin,
        "family": chip.family, "datacenter": chip.datacenter, "figures": figures,
        "derived": {
            "tpp": round(chip.tpp, 1), "tpp_upper": round(chip.tpp_upper, 1),
            "performance_density": round(pd, 3) if pd is not None else None,
            "class_2022": c22.cls, "class_2022_basis": c22.basis,
            "class_2023": c23.cls, "class_2023_basis": c23.basis,
            "us_origin": chip.origin == "US", "prc_advanced": chip.is_prc_advanced,
            "midpoints_used": chip.mid_figures,
        },
    }


def chips(json_out: bool = JsonOption) -> None:
    """List the chip catalog: specs with their confidence, and the TPP, performance density and
    US export class computed from them (2022 and 2023 advanced-computing rules)."""
    cat = catalog()
    if json_out:
        print_json([chip_json(c) for c in cat])
        return
    t = Table(title="Chip catalog (dense peak; TPP, PD and classes computed from specs)",
              title_justify="left")
    for col, just in [("id", "left"), ("vendor", "left"), ("BF16 TF", "right"),
                      ("HBM GB", "right"), ("HBM TB/s", "right"), ("I/O GB/s", "right"),
                      ("TPP", "right"), ("PD", "right"), ("2022", "left"), ("2023", "left"),
                      ("conf", "left")]:
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for c in cat:
        peak = c.bf16_tflops or c.fp16_tflops
        assert peak is not None
        pd = c.performance_density
        confs = sorted({f.confidence for f in (peak, c.hbm_gb, c.hbm_tbps)})
        t.add_row(
            c.id, f"{c.vendor} ({c.origin})", peak.describe() + ("" if c.bf16_tflops else " fp16"),
            c.hbm_gb.describe(), c.hbm_tbps.describe(),
            f"{c.io_gbps:g}" if c.io_gbps is not None else "?",
            f"{c.tpp:,.0f}", f"{pd:.2f}" if pd is not None else "?",
            classify_2022(c).cls, classify_2023(c).cls, "/".join(confs),
        )
    console.print(t)
    console.print("Ranges in the sources use their midpoint (e.g. Ascend-910B); thresholds read "
                  "them at the top. `straits chips --json` shows every figure's source.")
