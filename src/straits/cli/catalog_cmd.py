"""``straits chips``: the accelerator catalog with derived export figures."""

from __future__ import annotations

from rich.table import Table

from straits.api import chips_json
from straits.catalog import catalog, classify_2022, classify_2023
from straits.cli.common import JsonOption, console, print_json


def chips(json_out: bool = JsonOption) -> None:
    """List the chip catalog: specs with their confidence, and the TPP, performance density and
    US export class computed from them (2022 and 2023 advanced-computing rules)."""
    cat = catalog()
    if json_out:
        print_json(chips_json())
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
