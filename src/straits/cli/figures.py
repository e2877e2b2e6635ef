"""How a figure is written for a person in the CLI's tables and stories: money, durations,
energy and carbon amounts, a decision's style. Re-exported by :mod:`straits.cli.common`."""

from __future__ import annotations


def amount(x: float) -> str:
    """An energy or carbon figure: whole units, two significant digits below one (a small run's
    0.0065 MWh and 0.00036 tCO2e are not '0 MWh' and '0 tCO2e')."""
    return f"{x:,.0f}" if x >= 1 or x <= 0 else f"{x:.2g}"


def money(usd: float | None) -> str:
    if usd is None:
        return "-"
    if 0 < usd < 0.5:  # a run of a few tokens: not "$0"
        return "< $1"
    if abs(usd) >= 1e6:
        return f"${usd / 1e6:,.2f}M"
    if abs(usd) >= 1e3:
        return f"${usd / 1e3:,.1f}K"
    return f"${usd:,.0f}"


def duration(hours: float) -> str:
    if hours >= 48:
        return f"{hours / 24:,.1f} d"
    if hours >= 1:
        return f"{hours:,.1f} h"
    if 0 < hours * 60 < 0.5:  # a run of a few tokens: not "0 min"
        return "< 1 min"
    return f"{hours * 60:,.0f} min"


def decision_style(decision: str) -> str:
    return {"allow": "bold green", "conditional": "bold yellow", "deny": "bold red"}.get(
        decision, "bold"
    )
