"""``straits estimate``: what a training (or serving) stage needs on a chip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from straits.cli import numbers
from straits.cli.common import (
    JsonOption,
    amount,
    console,
    duration,
    emit,
    err_console,
    fail_every,
    money,
    output_format,
    read_input_doc,
    state,
)
from straits.errors import InputError, RequestError

if TYPE_CHECKING:
    from straits.cli.output import Format
    from straits.estimate import Estimate
    from straits.estimate.runs import PublishedRun
    from straits.model.request import EstimateRequest

CHIPS_BASIS = {
    "given": "as asked",
    "typical": "typical for a run of this size; give `chips` to fix it",
    "target": "replicas for the target tokens/s",
}


def chart_target(output: str | None, json_out: bool = False) -> Path | None:
    """``-o chart.html``: a chart file instead of a printed format (plan --pareto and estimate
    --sweep); with ``--json`` too, exit 2 (it was dropped without a word)."""
    if output is not None and output.lower().endswith((".html", ".htm")):
        if json_out:
            raise InputError(
                f"--json and -o {output} ask for two outputs",
                path="--json",
                expected="one of them (the chart, or --json without -o FILE.html)",
            )
        return Path(output)
    return None


def estimate(
    request_file: Path = typer.Argument(
        None, metavar="[REQUEST]", help="JSON/YAML file with the request; default or `-`: stdin."
    ),
    json_out: bool = JsonOption,
    output: str = typer.Option(
        None,
        "-o",
        "--output",
        metavar="FORMAT",
        help="Output format: table (default), json (as --json) or "
        "yaml; with --sweep chips, FILE.html draws it as a chart.",
    ),
    chips: int = typer.Option(
        None, "--chips", click_type=numbers.whole(1, 10_000_000), help="Override the cluster size."
    ),
    sweep: str = typer.Option(
        None,
        "--sweep",
        help="`chips`: show how days and cost change "
        "with the cluster size (with `-o chart.html`: as a chart).",
    ),
) -> None:
    """Estimate FLOPs, the fewest chips, the layout, predicted MFU, chip-hours, days, cost and
    energy of a training stage (or the chips of a serving stage), with a central 80% interval,
    the efficiency factors applied and the nearest published runs with the estimator's error
    on each.

    Reads {"model": {"params": 7.2e10, "layers": 80, "d_model": 8192, "heads": 64,
    "seq_len": 8192}, "tokens": 1.5e13, "chip": "H100-SXM", "chips": 4096}
    (examples/estimate.json); `chips` defaults to the cluster size published runs of this size
    typically used, `software_year` to 2025, `usd_per_chip_hour` to the catalog's reference
    price; `mfu` (a per-step MFU measured on your stack, 0.01-1) replaces the predicted one and
    narrows the interval. Serving: {"kind": "serve", "model": ..., "chip": ..., "days": 30,
    "tokens_per_s": 50000}.
    """
    try:
        chart = chart_target(output, json_out)
        if chart is not None and sweep != "chips":
            raise InputError(
                "a chart is drawn of a sweep",
                path="-o",
                expected="--sweep chips with -o FILE.html, or a format: table, json or yaml",
            )
        fmt = output_format(None if chart is not None else output, json_out)
        if sweep is not None and sweep != "chips":
            raise RequestError(f"cannot sweep {sweep!r}", path="--sweep", expected="chips")
        data, label, text = read_input_doc(request_file, what="an estimate request")
        if not isinstance(data, dict):
            raise RequestError("expected a JSON object", source=label)
        if chips is not None:
            data = {**data, "chips": chips}
        if state.server_url:
            _remote(data, sweep == "chips", fmt)
            return
        from straits.api import estimate_json, run_estimate
        from straits.loading import validate_as
        from straits.model.request import EstimateRequest

        # the file's line of a bad field (not with --chips: that field is the option's)
        req = validate_as(
            EstimateRequest,
            data,
            source=label,
            error=RequestError,
            text=text if chips is None else None,
        )
        if sweep == "chips" and req.kind != "train":
            # a serving estimate's days are its period: the sweep printed 30.0 days and 0.0%
            # MFU on every row (atk29)
            raise RequestError(
                "a serving estimate has no days or MFU to sweep: it holds its chips for its `days`",
                source=label,
                path="--sweep",
                expected='--sweep chips of a training request ("kind": "train"); a serving '
                "one is sized by its `tokens_per_s`",
            )
        est = run_estimate(req)
        if sweep == "chips":
            _sweep(req, est, fmt, chart)
            return
        answer = estimate_json(req, est)
    except InputError as exc:
        fail_every(exc)  # every problem of a bad request, a line each (cli65)
        return
    if fmt != "table":
        emit(answer, fmt)
    else:
        _view(req, est, answer)


def _remote(data: dict[str, Any], sweep: bool, fmt: Format) -> None:
    from straits.cli.remote import client

    if sweep:
        raise InputError(
            "--sweep runs on this machine only",
            path="--sweep",
            expected="no --server, or no --sweep",
        )
    answer = client().estimate(data)
    if fmt != "table":
        emit(answer, fmt)
        return
    from rich.table import Table

    t = Table(
        title=f"Estimate on {answer.get('chip')} (from {state.server_url})",
        title_justify="left",
        show_header=False,
    )
    t.add_column("figure")
    t.add_column("value", justify="right")
    for label, value in _remote_rows(answer):
        t.add_row(label, value)
    console.print(t)
    _guidance(answer.get("guidance") or [])


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


def _remote_rows(answer: dict[str, Any]) -> list[tuple[str, str]]:
    """The figures of a server's answer as the local table prints them (thousands separators,
    durations, money, each with its 80% interval), not Python's repr of the JSON floats."""

    def ranged(key: str, fmt: Callable[[float], str], scale: float = 1.0) -> str:
        central = _number(answer.get(key))
        if central is None:
            return "-"
        low, high = _number(answer.get(f"{key}_low")), _number(answer.get(f"{key}_high"))
        text = fmt(central * scale)
        if low is None or high is None or low == high:
            return text
        return f"{text} (80%: {fmt(low * scale)} - {fmt(high * scale)})"

    rows = []
    for key, label in (("min_chips", "fewest chips that fit"), ("chips", "chips")):
        n = _number(answer.get(key))
        rows.append((label, "-" if n is None else whole(n)))
    if answer.get("fits") is False:
        rows[-1] = ("chips", rows[-1][1] + " (does not fit)")
    if answer.get("kind") != "serve":  # serving has no layout or MFU (it printed 0.0%)
        rows.append(("layout", str(answer.get("layout") or "-")))
        mfu = _number(answer.get("mfu"))
        rows.append(("MFU (per step)", "-" if mfu is None else share(mfu)))
    rows.append(("chip-hours", ranged("chip_hours", whole)))
    rows.append(("wall-clock", ranged("days", duration, 24.0)))
    rows.append(("cost", ranged("cost_usd", money)))
    return rows


def _sweep(req: EstimateRequest, base: Estimate, fmt: Format, chart: Path | None) -> None:
    from rich.table import Table

    from straits.api import estimate_json, run_estimate, sweep_sizes

    sizes = sweep_sizes(base)
    rows = [run_estimate(req, n) for n in sizes]
    if chart is not None:
        from straits.fileio import write_output
        from straits.report import sweep_report

        docs = [
            estimate_json(req, r, chips=n, guidance=False) for n, r in zip(sizes, rows, strict=True)
        ]
        written = write_output(
            chart,
            sweep_report(docs, f"{req.model.params:.3g} parameters on {base.chip}"),
            option="-o",
        )
        err_console.print(f"wrote {written}")
        return
    if fmt != "table":
        emit(
            [
                estimate_json(req, r, chips=n, guidance=False)
                for n, r in zip(sizes, rows, strict=True)
            ],
            fmt,
        )
        return
    t = Table(
        title=f"How days and cost change with cluster size on {base.chip}", title_justify="left"
    )
    for col in ("chips", "layout", "MFU", "days (80%)", "chip-hours", "cost"):
        t.add_column(col, justify="left" if col == "layout" else "right")
    for r in rows:
        t.add_row(
            f"{r.chips:,}" + ("" if r.fits else " (does not fit)"),
            r.layout,
            share(r.mfu),
            f"{r.days:,.1f} ({r.hours_low / 24:,.1f}-{r.hours_high / 24:,.1f})",
            f"{r.chip_hours:,.0f}",
            money(r.cost_usd),
        )
    console.print(t)


def _serving_row(est: Estimate) -> str:
    """The replicas of the chips the estimate is for; where those are not the target's (chips
    given), the target's too: "19 replicas x 4 chips" beside "8 (as asked)" said 8 chips held
    19 replicas (atk29)."""
    s = est.serving
    each = (
        f"batch {s['batch']}, {s['tokens_per_s_per_replica']:,.0f} tok/s each ({s['bound']}-bound)"
    )
    target = s["replicas"] * s["replica_chips"]
    if est.chips == target:
        return f"{s['replicas']:,} replicas x {s['replica_chips']} chips, {each}"
    held = est.chips // s["replica_chips"]
    return (
        f"{held:,} replicas x {s['replica_chips']} chips on the {est.chips:,}, {each}; the "
        f"target needs {s['replicas']:,} ({target:,} chips)"
    )


def _ranged(central: str, low: str, high: str, est: Estimate) -> str:
    """``central (80%: low - high)``; the central figure alone without an interval, or
    without a figure (no price: '-', not '- (80%: - - -)')."""
    if est.interval is None or est.low_factor == est.high_factor or central == "-":
        return central
    return f"{central} (80%: {low} - {high})"


def _view(req: EstimateRequest, est: Estimate, answer: dict[str, Any]) -> None:
    from rich.table import Table

    from straits.api import chips_basis
    from straits.catalog import get_chip
    from straits.cli.explain import hanging
    from straits.estimate.flops import flops_per_token
    from straits.estimate.stack import stack

    t = Table(title=f"Estimate on {est.chip}", title_justify="left", show_header=False)
    t.add_column("figure")
    t.add_column("value", justify="right")
    if req.kind == "train":
        t.add_row("FLOPs per token", f"{flops_per_token(req.model):.3e}")
        t.add_row("training FLOPs", f"{est.flops:.3e}")
        t.add_row("global batch (tokens)", f"{est.batch_tokens:,.0f}")
    t.add_row("fewest chips that fit", f"{est.min_chips:,}")
    t.add_row(
        "chips",
        f"{est.chips:,} ({CHIPS_BASIS[chips_basis(req)]})"
        + ("" if est.fits else " (does not fit)"),
    )
    if req.kind == "train":
        t.add_row("software", stack(est.software_year).describe())
        t.add_row("layout", est.layout)
        mem = est.memory_gb
        t.add_row(
            "memory per chip",
            f"{mem.get('total_gb', 0):,.1f} GB (weights "
            f"{mem.get('weights_gb', 0):,.1f}, grads {mem.get('grads_gb', 0):,.1f}, "
            f"optimizer {mem.get('optimizer_gb', 0):,.1f}, activations "
            f"{mem.get('activations_gb', 0):,.1f})",
        )
        if est.efficiency_basis == "given":
            t.add_row(
                "MFU (per step)",
                f"{share(est.mfu)} given (predicted {share(est.predicted_mfu)}, not used)",
            )
        else:
            t.add_row("predicted MFU (per step)", share(est.mfu))
            factors = est.mfu_components.get("factors", {})
            t.add_row("  efficiency factors", " x ".join(f"{k} {v:g}" for k, v in factors.items()))
            shares = est.mfu_components.get("step_shares", {})
            t.add_row("  step time", ", ".join(f"{k} {v:.0%}" for k, v in shares.items() if v))
        t.add_row("step time", seconds(est.step_seconds))
        o = est.overheads
        kept = o.get("unstalled", 1.0)
        stalls = f"; {1 - kept:.0%} lost to an older stack's stalls" if kept < 1 else ""
        t.add_row(
            "whole-run overheads",
            f"goodput {o['goodput']:.1%} (~{o['interruptions']:,.0f} interruptions"
            f"{stalls}), evaluation {o['evaluation']:.0%} "
            f"(+{o['overhead_chip_hours']:,.0f} chip-hours)",
        )
    if est.serving:
        t.add_row("serving", _serving_row(est))
    t.add_row(
        "chip-hours",
        _ranged(whole(est.chip_hours), whole(est.chip_hours_low), whole(est.chip_hours_high), est),
    )
    t.add_row(
        "wall-clock",
        _ranged(duration(est.hours), duration(est.hours_low), duration(est.hours_high), est),
    )
    price = f" at ${est.usd_per_chip_hour:.2f}/chip-hour" if est.usd_per_chip_hour else ""
    cost = est.cost_usd
    t.add_row(
        "cost" + price,
        _ranged(
            money(cost),
            money(None if cost is None else cost * est.low_factor),
            money(None if cost is None else cost * est.high_factor),
            est,
        ),
    )
    e = est.energy(
        get_chip(req.chip), pue=req.pue, gco2_per_kwh=req.grid_gco2_per_kwh, country=req.country
    )
    if e is not None:
        co2 = (
            f", {amount(e.tco2e)} tCO2e ({e.gco2_per_kwh:g} g/kWh, {e.grid_source})"
            if e.tco2e is not None
            else " (give `country` or `grid_gco2_per_kwh` for carbon)"
        )
        t.add_row("energy", f"{amount(e.kwh / 1000)} MWh at PUE {e.pue:g}{co2}")
    console.print(t)
    if req.kind == "train" and est.interval is not None:
        console.print(hanging("80% interval: ", f"{est.interval.basis}."))
        _nearest(req)
    for n in answer.get("notes", est.notes):
        console.print(hanging("note: ", n, style="yellow"))
    _guidance(answer.get("guidance") or [])


def _nearest(req: EstimateRequest) -> None:
    """The published runs nearest to the request, and how far off the estimator is on them."""
    from rich.table import Table

    from straits.catalog import get_chip
    from straits.estimate import nearest_runs

    assert req.tokens is not None
    t = Table(
        title="Nearest published runs (how far off the estimator is on runs like this)",
        title_justify="left",
    )
    for col in (
        "run",
        "chip",
        "chips",
        "tokens",
        "published chip-hours",
        "predicted",
        "error",
        "used for",
    ):
        t.add_column(col, justify="left" if col in ("run", "chip", "used for") else "right")
    for n in nearest_runs(req.model, req.tokens, get_chip(req.chip)):
        r = n.run
        t.add_row(
            r.id,
            r.chip,
            f"{r.chips:,}" if r.chips else "-",
            tokens_text(r.tokens),
            f"{r.value:,.0f}",
            "-" if n.predicted is None else f"{n.predicted:,.0f}",
            "-" if n.error is None else f"{n.error:+.0%}",
            _used_for(r),
        )
    console.print(t)


def _used_for(run: PublishedRun) -> str:
    """``fit``/``check``, with what the figure counts when it is not the whole run; a fit run
    the parameters were not fitted on (a distillation) says so."""
    if run.scope == "run":
        return run.used_for
    fitted = "" if run.fittable or run.used_for != "fit" else ", not fitted"
    return f"{run.used_for} ({run.scope}{fitted})"


def whole(x: float) -> str:
    """A count of chip-hours: thousands separators; below one, '< 1' rather than '0'."""
    return "< 1" if 0 < x < 0.5 else f"{x:,.0f}"


def share(x: float) -> str:
    """An MFU as a percentage: one decimal, two significant digits where that shows 0.0%."""
    return f"{x:.1%}" if x >= 0.0005 or x <= 0 else f"{x * 100:.2g}%"


def seconds(x: float) -> str:
    """A step time: 2 decimals, milliseconds where that shows 0.00 s (a 1-token step)."""
    return f"{x:,.2f} s" if x >= 0.005 or x <= 0 else f"{x * 1000:.2g} ms"


def tokens_text(tokens: float) -> str:
    """15.6T, 300B, 1,000,000T: token counts as people write them, never 1.56e+13."""
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if tokens >= size:
            v = tokens / size
            return f"{v:,.0f}{suffix}" if v >= 100 else f"{v:.3g}{suffix}"
    return f"{tokens:,.0f}" if tokens >= 1 else f"{tokens:.2g}"


def _guidance(hints: list[dict[str, Any]]) -> None:
    from straits.cli.explain import hanging

    for h in hints:
        console.print(hanging("hint: ", str(h.get("text", "")), style="bold cyan"))
