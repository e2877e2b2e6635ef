"""``straits market``: the market view (a monthly simulation) and ``straits market sweep``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from straits.cli.common import (
    JsonOption,
    RulesOption,
    console,
    err_console,
    fail,
    finite_float,
    nonempty_path,
    print_json,
    refuse_unread,
    visible,
    whole,
    working,
)
from straits.errors import InputError

#: as a market file's own `seed` (a 29-digit --seed ran, and went into JSON as an integer no
#: 64-bit reader holds)
MAX_SEED = 2**63 - 1


class MarketGroup(TyperGroup):
    """``straits market [MARKET]`` runs the simulation; ``straits market sweep`` sweeps it."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and (args[0] in self.commands or args[0] in ("--help", "-h")):
            return super().parse_args(ctx, args)
        return super().parse_args(ctx, ["run", *args])


app = typer.Typer(
    cls=MarketGroup,
    no_args_is_help=False,
    rich_markup_mode="markdown",
    help="Simulate how the rules move AI compute demand between home and "
    "offshore, month by month (`straits market [MARKET.yaml] [OPTIONS]`, "
    "the same as `straits market run`), or sweep its uncertain parameters "
    "(`straits market sweep`). See docs/market.md.",
)


@app.command("run")
def run(
    market_file: Path = typer.Argument(
        None,
        metavar="[MARKET]",
        help="A market file (YAML/JSON; - reads stdin); default: the shipped example "
        "(catalog/market.yaml).",
    ),
    regime: str = typer.Option(
        None, "--regime", help="enacted | ai-diffusion (default: the file's)."
    ),
    json_out: bool = JsonOption,
    output: Path = typer.Option(
        None,
        "-o",
        "--output",
        click_type=nonempty_path(file=True),
        help="Write FILE.json, .csv, .parquet or .html (the offline report).",
    ),
    firms: int = typer.Option(
        None,
        "--firms",
        click_type=whole(1, 100_000),
        help="Number of firms (the file's types rescaled).",
    ),
    seed: int = typer.Option(
        None, "--seed", click_type=whole(0, MAX_SEED), help="Seed (default: the file's)."
    ),
    compare: bool = typer.Option(
        None,
        "--compare/--no-compare",
        help="Also run the other regime and report the difference "
        "(default: on for tables and HTML, off for --json).",
    ),
    sets: list[str] = typer.Option(
        [],
        "--set",
        help="Override a parameter: PATH=NUMBER (repeatable), e.g. demand.shift_speed=0.3.",
    ),
    list_params: bool = typer.Option(
        False, "--list-params", help="List every parameter with its source and exit."
    ),
    rules_dirs: list[Path] = RulesOption,
) -> None:
    """Simulate the market month by month: offshore rental by country (chip-hours, MW),
    prices and utilisation, the home firms' compute at home / on domestic accelerators /
    offshore, what data residency keeps at home, and the difference between regimes."""
    from straits.market.loading import load_market, parse_overrides

    try:
        if list_params:  # it lists the file's parameters (after --set), and runs nothing
            refuse_unread(
                ("regime", "output", "firms", "seed", "compare", "rules_dirs"),
                when="with --list-params",
                expected="--list-params [MARKET] [--set PATH=VALUE] [--json]",
            )
        if regime is not None and regime not in ("enacted", "ai-diffusion"):
            raise InputError(
                f"unknown regime {regime!r}", path="--regime", expected="enacted or ai-diffusion"
            )
        overrides = parse_overrides(sets)
        m, raw, label = load_market(market_file, overrides)
        if list_params:
            _list_params(raw, json_out)
            return
        from straits.market import outputs
        from straits.market.firms import check_firm_count
        from straits.market.loading import digest
        from straits.market.simulation import simulate
        from straits.rules import ruleset

        check_firm_count(m, firms)
        if output is not None:
            from straits.fileio import refuse_input_as_output

            outputs.check_target(output)
            refuse_input_as_output(market_file, output, "-o")

        rules = ruleset(tuple(rules_dirs or ()))
        regime = regime or m.regime
        with working(f"simulating the market under the {regime} rules"):
            result = simulate(m, regime=regime, seed=seed, firms=firms, rules=rules)
        want_other = compare if compare is not None else not json_out
        other = None
        if want_other:
            counter = "ai-diffusion" if regime == "enacted" else "enacted"
            with working(f"simulating the market under the {counter} rules, to compare"):
                other = simulate(m, regime=counter, seed=seed, firms=firms, rules=rules)
        if output is not None:
            outputs.write(result, output, other, digest(raw), overrides)
    except InputError as exc:
        fail(exc)
        return
    if json_out:
        print_json(outputs.document(result, other, overrides))
        return
    from straits.cli.market_view import show

    show(result, other, label)
    if output is not None:
        err_console.print(f"wrote {visible(output)}")


def _list_params(raw: dict[str, Any], json_out: bool) -> None:
    from rich.markup import escape
    from rich.table import Table

    from straits.market.loading import walk_params

    rows = []
    for path, node in walk_params(raw):
        value = node.get("value")
        rows.append(
            {
                "path": path,
                "value": value,
                "low": node.get("low"),
                "high": node.get("high"),
                "confidence": node["confidence"],
                "unpublished": bool(node.get("unpublished", False)),
                "source": node["source"],
            }
        )
    if json_out:
        print_json(rows)
        return
    t = Table(
        title="Market parameters (ranges are swept by `straits market sweep`)", title_justify="left"
    )
    for col in ("parameter", "value / range", "conf", "source"):
        t.add_column(col, overflow="fold")
    for r in rows:
        v = f"{r['value']:g}" if r["value"] is not None else f"{r['low']:g} - {r['high']:g}"
        if r["unpublished"]:
            v += " (unpublished)"
        t.add_row(escape(r["path"]), v, r["confidence"], escape(r["source"]))
    console.print(t)


@app.command("sweep")
def sweep(
    market_file: Path = typer.Argument(
        None,
        metavar="[MARKET]",
        help="A market file (- reads stdin); default: the shipped example.",
    ),
    runs: int = typer.Option(
        32, "--runs", click_type=whole(1, 100_000), help="Simulations (Latin hypercube samples)."
    ),
    method: str = typer.Option("lhs", "--method", help="lhs (Latin hypercube) | grid."),
    levels: int = typer.Option(
        3, "--levels", click_type=whole(2, 20), help="Grid levels per parameter (--method grid)."
    ),
    params: list[str] = typer.Option(
        [],
        "--param",
        help="Sweep this parameter path (repeatable; default: every range in the file).",
    ),
    out: Path = typer.Option(
        Path("market-sweep"),
        "--out",
        click_type=nonempty_path(),
        help="Directory for the results (Parquet parts, runs.parquet, "
        "summary.json); an interrupted sweep resumes from it.",
    ),
    backend: str = typer.Option(
        "auto",
        "--backend",
        help="auto (Ray when installed, else processes) | ray | processes | inline.",
    ),
    ray_address: str = typer.Option(
        None,
        "--ray-address",
        help="An existing Ray cluster (e.g. ray://host:10001 or auto); default: start a local Ray.",
    ),
    workers: int = typer.Option(
        2, "--workers", click_type=whole(1, 512), help="Processes (or local Ray CPUs)."
    ),
    firms: int = typer.Option(100, "--firms", click_type=whole(1, 100_000), help="Firms per run."),
    regime: str = typer.Option(None, "--regime", help="enacted | ai-diffusion."),
    seed: int = typer.Option(
        0, "--seed", click_type=whole(0, MAX_SEED), help="Seed of the design and the runs."
    ),
    metric: str = typer.Option(
        "offshore_demand_after_h20",
        "--metric",
        help="The outcome to rank parameters by (see docs/market.md).",
    ),
    threshold: float = typer.Option(
        None,
        "--threshold",
        click_type=finite_float(),
        help="PRIM: conditions under which the metric exceeds this (default: its median).",
    ),
    fresh: bool = typer.Option(False, "--fresh", help="Discard results already in --out."),
    json_out: bool = JsonOption,
) -> None:
    """Run many simulations over the parameters' ranges (on Ray, or local processes with
    identical results), stream them to Parquet, rank the parameters that drive the outcome and
    find (PRIM) the conditions under which it exceeds a threshold. Resumable."""
    from straits.market.sweep.cli import run_sweep

    try:
        # flags the chosen method or backend does not read were accepted and ignored
        if method != "grid":
            refuse_unread(("levels",), when=f"with --method {method}", expected="--method grid")
        if backend in ("inline", "processes"):
            unread = ("workers", "ray_address") if backend == "inline" else ("ray_address",)
            refuse_unread(unread, when=f"with --backend {backend}", expected="--backend ray")
        summary = run_sweep(
            market_file=market_file,
            runs=runs,
            method=method,
            levels=levels,
            params=params,
            out=out,
            backend=backend,
            ray_address=ray_address,
            workers=workers,
            firms=firms,
            regime=regime,
            seed=seed,
            metric=metric,
            threshold=threshold,
            fresh=fresh,
            quiet=json_out,
        )
    except InputError as exc:
        fail(exc)
        return
    except OSError as exc:  # --out in a place that cannot hold a directory
        fail(
            InputError(
                f"cannot write {out}: {exc.strerror or exc}",
                path="--out",
                expected="a writable directory",
            )
        )
        return
    if json_out:
        print_json(summary)
    else:
        from straits.cli.market_view import show_sweep

        show_sweep(summary)
