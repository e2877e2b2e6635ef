"""Rich tables for ``straits market`` and ``straits market sweep``."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from straits.cli.common import console, visible
from straits.market.result import MarketResult, MonthRecord


def _m(v: float) -> str:
    """Chip-hours in millions; a positive figure that rounds to 0 is "<0.1M" (38,425
    chip-hours read "0.0M" beside the JSON's and the chart's positive value)."""
    text = f"{v / 1e6:,.1f}M"
    return "<0.1M" if v > 0 and text == "0.0M" else text


def _mw(v: float) -> str:
    """Megawatts in whole numbers; a positive figure that rounds to 0 is "<1" (2023-01's
    0.056 MW read "0" beside its "<0.1M" chip-hours and the JSON's positive `offshore_mw`)."""
    text = f"{v:,.0f}"
    return "<1" if v > 0 and text == "0" else text


def _price(usd: float | None) -> str:
    """A country's price, '-' in a month it has nothing to rent (no capacity, no price)."""
    return "-" if usd is None else f"{usd:.2f}"


def _pct(v: float) -> str:
    """A share in whole percent; a positive share that rounds to 0 is "<1%"."""
    text = f"{v:.0%}"
    return "<1%" if v > 0 and text == "0%" else text


def quarterly(months: list[MonthRecord]) -> list[MonthRecord]:
    """Every third month from the first, and always the last (a period of May and June showed
    no row: the table kept January, April, July and October only, and never the last month
    unless it was one of them)."""
    rows = months[::3]
    if months and (not rows or rows[-1] is not months[-1]):
        rows.append(months[-1])
    return rows


def show(result: MarketResult, other: MarketResult | None, label: str) -> None:
    m = result.market
    countries = list(m.supply.countries)
    console.print(
        f"[bold]Market {m.name}[/bold] ({visible(label)}): {m.start} to {m.end}, home {m.home}, "
        f"regime [bold]{result.regime}[/bold], seed {result.seed}, "
        f"{sum(result.firms.values()):,} firms, {result.rules_asked:,} rule questions"
    )
    t = Table(
        title="Home firms' compute, every third month from the first and the last (chip-hours "
        "per month; shares of demand in h100e-hours)",
        title_justify="left",
    )
    t.add_column("month")
    for c in countries:
        t.add_column(f"offshore {c}", justify="right")
    t.add_column("MW", justify="right")
    t.add_column("home", justify="right")
    t.add_column("domestic", justify="right")
    for c in countries:
        t.add_column(f"$/h {c}", justify="right")
        t.add_column(f"util {c}", justify="right")
    t.add_column("offshore / home / domestic / unmet", justify="right")
    for r in quarterly(result.months):
        s = r.shares()
        t.add_row(
            r.month,
            *[_m(r.offshore_chip_hours[c]) for c in countries],
            _mw(sum(r.offshore_mw.values())),
            _m(r.home_chip_hours),
            _m(r.domestic_accelerator_chip_hours),
            *[
                x
                for c in countries
                for x in (_price(r.price_usd_per_chip_hour[c]), _pct(r.utilisation[c]))
            ],
            " / ".join(_pct(s[k]) for k in ("offshore", "home", "domestic", "unmet")),
        )
    console.print(t)
    if other is not None:
        d = Table(
            title=f"Per year: {result.regime} vs {other.regime} (chip-hours)", title_justify="left"
        )
        for col in (
            "year",
            "offshore",
            f"offshore ({other.regime})",
            "home",
            f"home ({other.regime})",
            "domestic",
            f"domestic ({other.regime})",
            "unmet h100e",
            f"unmet ({other.regime})",
        ):
            d.add_column(col, justify="right")
        a, b = result.summary()["by_year"], other.summary()["by_year"]
        for y in a:
            d.add_row(
                y,
                _m(a[y]["offshore_chip_hours"]),
                _m(b[y]["offshore_chip_hours"]),
                _m(a[y]["home_chip_hours"]),
                _m(b[y]["home_chip_hours"]),
                _m(a[y]["domestic_accelerator_chip_hours"]),
                _m(b[y]["domestic_accelerator_chip_hours"]),
                _m(a[y]["unmet_h100e_hours"]),
                _m(b[y]["unmet_h100e_hours"]),
            )
        console.print(d)
    e = Table(title=f"Rule events ({result.regime}, from the packs)", title_justify="left")
    e.add_column("date")
    e.add_column("added", overflow="fold")
    e.add_column("removed", overflow="fold")
    for ev in result.events:
        e.add_row(ev.date.isoformat(), ", ".join(ev.added), ", ".join(ev.removed))
    console.print(e)
    doc = result.to_json()
    console.print(
        f"[yellow]assumptions:[/yellow] {len(doc['midpoints_used'])} parameters are "
        f"ranges (midpoints used); {len(doc['unpublished'])} of them have no published "
        "figure: " + escape(", ".join(doc["unpublished"])),
        soft_wrap=True,
    )
    for note in doc.get("notes", []):
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    if other is not None:  # the compared regime's own notes, as its figures are shown
        for note in result.notes_beside(other):
            console.print(f"[yellow]note ({other.regime}):[/yellow] {escape(note)}", soft_wrap=True)
    console.print(
        "Sweep them: `straits market sweep`; list them: `straits market "
        "--list-params`; chart them: `straits market -o market.html`."
    )


def show_sweep(summary: dict[str, Any]) -> None:
    console.print(
        f"[bold]Sweep[/bold] {summary['runs']} runs ({summary['method']}, backend "
        f"{summary['backend']}) over {len(summary['parameters'])} parameters; "
        f"results in {summary['out']}"
    )
    t = Table(
        title=f"What drives {summary['metric']} (Spearman rank correlation)", title_justify="left"
    )
    for col in ("rank", "parameter", "rho", "low", "high", "unpublished"):
        t.add_column(col, justify="left" if col == "parameter" else "right")
    for i, s in enumerate(summary["sensitivity"][:15], 1):
        t.add_row(
            str(i),
            escape(s["path"]),
            "n/a" if s["rho"] is None else f"{s['rho']:+.2f}",
            f"{s['low']:g}",
            f"{s['high']:g}",
            "yes" if s["unpublished"] else "",
        )
    console.print(t)
    prim = summary.get("prim")
    if prim:
        console.print(
            f"PRIM: {summary['metric']} > {prim['threshold']:,.4g} in "
            f"{prim['base_rate']:.0%} of runs; inside this box in "
            f"{prim['density']:.0%} of runs (covering {prim['coverage']:.0%} of the "
            "cases):"
        )
        b = Table(show_header=True)
        b.add_column("parameter")
        b.add_column("from", justify="right")
        b.add_column("to", justify="right")
        for r in prim["box"]:
            b.add_row(escape(r["path"]), f"{r['low']:g}", f"{r['high']:g}")
        console.print(b)
    elif summary.get("prim_note"):
        console.print(f"[yellow]PRIM: no box[/yellow]: {escape(summary['prim_note'])}")
    stats = summary.get("metric_stats", {})
    if stats:
        console.print(
            f"{summary['metric']}: min {stats['min']:,.4g}, median "
            f"{stats['median']:,.4g}, max {stats['max']:,.4g}"
        )
