"""``straits chips``: the accelerator catalog with derived export figures."""

from __future__ import annotations

from typing import Any

from straits.cli.common import (
    JsonOption,
    OutputOption,
    console,
    emit,
    fail,
    output_format,
    print_whole,
    state,
)
from straits.errors import StraitsError


def chips(json_out: bool = JsonOption, output: str = OutputOption) -> None:
    """List the chip catalog: specs with their confidence, and the TPP, performance density and
    US export class computed from them (2022 and 2023 advanced-computing rules)."""
    try:
        fmt = output_format(output, json_out)
        if state.server_url:
            from straits.cli.remote import client

            data = client().chips()
        else:
            from straits.api import chips_json

            data = chips_json()
    except StraitsError as exc:
        fail(exc)
        return
    if fmt != "table":
        emit(data, fmt)
        return
    print_whole(chips_table(data))
    console.print(
        "Ranges in the sources use their midpoint (e.g. Ascend-910B); thresholds read "
        "them at the top. `straits chips --json` shows every figure's source."
    )


def _fig(c: dict[str, Any], name: str) -> str:
    f = c["figures"].get(name)
    if f is None:
        return "?"
    v = f.get("value")
    if v is not None:
        return str(v) if isinstance(v, bool) else f"{v:g}"
    low, high = f["low"], f["high"]
    return f"{low:g}-{high:g}"  # the note under the table: thresholds read the top


def _mid(c: dict[str, Any], name: str) -> str:
    f = c["figures"].get(name)
    if f is None:
        return "?"
    v = f.get("value")
    return f"{v if v is not None else (f['low'] + f['high']) / 2:g}"


def chips_table(data: list[dict[str, Any]]) -> Any:
    """The catalog table from `chips --json` (so a remote catalog renders the same). No cell
    wraps or is cut: the caller prints it at its full width."""
    from rich import box
    from rich.table import Table

    t = Table(
        title="Chip catalog (dense peak; TPP, PD and classes computed from specs)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    rows = []
    for c in data:
        figs = c["figures"]
        peak_name = "bf16_tflops" if "bf16_tflops" in figs else "fp16_tflops"
        confs = sorted(
            {figs[n]["confidence"] for n in (peak_name, "hbm_gb", "hbm_tbps") if n in figs}
        )
        d = c["derived"]
        pd = d.get("performance_density")
        rows.append(
            (
                c["id"],
                f"{c['vendor']} ({c['origin']})",
                _fig(c, peak_name) + ("" if peak_name == "bf16_tflops" else " fp16"),
                _fig(c, "hbm_gb"),
                _fig(c, "hbm_tbps"),
                _mid(c, "scaleup_gbps"),
                f"{d['tpp']:,.0f}",
                f"{pd:.2f}" if pd is not None else "?",
                d["class_2022"],
                d["class_2023"],
                "/".join(confs),
            )
        )
    for col, just in [
        ("id", "left"),
        ("vendor", "left"),
        ("BF16 TF", "right"),
        ("HBM GB", "right"),
        ("HBM TB/s", "right"),
        ("I/O GB/s", "right"),
        ("TPP", "right"),
        ("PD", "right"),
        ("2022", "left"),
        ("2023", "left"),
        ("conf", "left"),
    ]:
        t.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(*r)
    return t
