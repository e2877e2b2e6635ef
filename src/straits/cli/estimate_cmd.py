"""``straits estimate``: what a training (or serving) stage needs on a chip."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from straits.catalog import get_chip
from straits.cli.common import (
    JsonOption,
    console,
    duration,
    fail,
    money,
    print_json,
    read_input,
)
from straits.errors import InputError, RequestError
from straits.estimate import Estimate, estimate_serving, estimate_training
from straits.estimate.flops import flops_per_token
from straits.loading import validate_as
from straits.model.request import EstimateRequest


def run_estimate(req: EstimateRequest) -> Estimate:
    chip = get_chip(req.chip)
    if req.kind == "serve":
        assert req.chips is not None and req.days is not None
        return estimate_serving(req.model, chip, req.chips, req.days, req.usd_per_chip_hour)
    assert req.tokens is not None
    return estimate_training(req.model, req.tokens, chip, req.chips, req.usd_per_chip_hour)


def estimate(
    request_file: Path = typer.Argument(None, metavar="[REQUEST]",
                                        help="JSON file with the request; default: stdin."),
    json_out: bool = JsonOption,
    chips: int = typer.Option(None, "--chips", min=1, help="Override the cluster size."),
) -> None:
    """Estimate FLOPs, the fewest chips that hold the training state, chip-hours, days and cost.

    Reads {"model": {"params": 7.2e10, "layers": 80, "d_model": 8192, "heads": 64,
    "seq_len": 8192}, "tokens": 1.5e13, "chip": "H100-SXM", "chips": 4096}; `chips` defaults to
    the fewest that fit, `usd_per_chip_hour` to the catalog's reference price.
    """
    try:
        data, label = read_input(request_file, what="an estimate request")
        if not isinstance(data, dict):
            raise RequestError("expected a JSON object", source=label)
        if chips is not None:
            data = {**data, "chips": chips}
        req = validate_as(EstimateRequest, data, source=label, error=RequestError)
        est = run_estimate(req)
    except InputError as exc:
        fail(exc)
        return
    if json_out:
        print_json(est.to_json())
        return
    t = Table(title=f"Estimate on {est.chip}", title_justify="left", show_header=False)
    t.add_column("figure")
    t.add_column("value", justify="right")
    if req.kind == "train":
        t.add_row("FLOPs per token", f"{flops_per_token(req.model):.3e}")
        t.add_row("training FLOPs", f"{est.flops:.3e}")
        t.add_row("predicted MFU", f"{est.mfu:.1%}")
    t.add_row("fewest chips that fit", f"{est.min_chips:,}")
    t.add_row("chips", f"{est.chips:,}")
    t.add_row("chip-hours", f"{est.chip_hours:,.0f}")
    t.add_row("wall-clock", duration(est.hours))
    price = f" at ${est.usd_per_chip_hour:.2f}/chip-hour" if est.usd_per_chip_hour else ""
    t.add_row("cost" + price, money(est.cost_usd))
    console.print(t)
    for note in est.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
