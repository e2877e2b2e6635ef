"""``straits rules``: list, show, diff and test the rule packs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from straits.cli.choices import Regime
from straits.cli.common import (
    JsonOption,
    OutputOption,
    RulesOption,
    console,
    emit,
    fail,
    output_format,
    rule_dirs,
    state,
)
from straits.errors import InputError, RequestError

if TYPE_CHECKING:
    from rich.text import Text

    from straits.rules.cases import CaseResult

app = typer.Typer(help="List, show, diff and test the rule packs.", no_args_is_help=True)


def _local_only(what: str) -> None:
    if state.server_url:
        raise InputError(f"`straits rules {what}` reads the rule packs on this machine",
                         path="--server", expected="no --server (`rules list` asks the server)")

EXIT_TESTS_FAILED = 1


def _date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{value!r} is not a date", path=name,
                           expected="YYYY-MM-DD") from None


def _window(r: Any) -> str:
    """A rule's window, from a :class:`Rule` or its JSON."""
    if isinstance(r, dict):
        return f"{r['effective_from']} .. {r.get('effective_until') or ''}".rstrip()
    return f"{r.effective_from} .. {r.effective_until or ''}".rstrip()


@app.command("list")
def list_rules(
    date: str = typer.Option(None, "--date", help="Only rules in force on this date."),
    regime: Regime = typer.Option("enacted", "--regime", help="enacted | ai-diffusion."),
    pack: list[str] = typer.Option(None, "--pack", help="Only these packs (repeatable)."),
    json_out: bool = JsonOption,
    output: str = OutputOption,
    rules: list[Path] = RulesOption,
) -> None:
    """List the rules, or those in force on --date under --regime."""
    from straits.errors import StraitsError

    try:
        fmt = output_format(output, json_out)
        day = _date(date, "--date") if date is not None else None
        if state.server_url:
            from straits.cli.remote import client

            selected = client().rules(date=day, regime=regime, packs=pack or [])
        else:
            from straits.api import rule_json, select_rules
            from straits.rules import ruleset

            selected = [rule_json(r) for r in select_rules(ruleset(rule_dirs(rules)), day,
                                                           regime, pack)]
    except StraitsError as exc:
        fail(exc)
        return
    if fmt != "table":
        emit(selected, fmt)
        return
    from rich.table import Table

    title = f"{len(selected)} rules" + (f" in force on {date} ({regime})" if date else "")
    t = Table(title=title, title_justify="left")
    t.add_column("rule", no_wrap=True)
    t.add_column("effect")
    t.add_column("requires", no_wrap=True)  # an id a user types: never cut
    t.add_column("in force")
    t.add_column("conf", no_wrap=True)
    t.add_column("title")
    for r in selected:
        effect = r["effect"] + (f" ({r['presumption']})" if r.get("presumption") else "")
        t.add_row(r["rule"], effect, r.get("requires") or "", _window(r), r["confidence"],
                  r["title"])
    console.print(t)


@app.command("show")
def show(
    rule_id: str = typer.Argument(..., help="A rule id, e.g. cn-cbdf-2024-assessment."),
    json_out: bool = JsonOption,
    output: str = OutputOption,
    rules: list[Path] = RulesOption,
) -> None:
    """Print one rule: citation, confidence, window, plain-language reason and its Cedar text."""
    from rich.text import Text

    from straits.api import rule_json
    from straits.rules import ruleset
    from straits.rules.listing import rule_regimes

    try:
        fmt = output_format(output, json_out)
        _local_only("show")
        r = ruleset(rule_dirs(rules)).rule(rule_id)
    except InputError as exc:
        fail(exc)
        return
    if fmt != "table":
        emit({**rule_json(r), "text": r.text}, fmt)
        return
    console.print(Text(f"{r.id}  ({r.pack}, {r.file}:{r.line})", style="bold"))
    rows = [("title", r.title), ("citation", r.citation), ("confidence", r.confidence),
            ("effect", r.effect + (f", requires {r.requires}" if r.requires else "")
             + (f", presumption of {r.presumption}" if r.presumption else "")),
            ("in force", _window(r)), ("regimes", ", ".join(rule_regimes(r))),
            ("reason", r.reason), ("reading", r.reading or "-")]
    for k, v in rows:
        console.print(Text(f"  {k:<11}", style="bold").append(v, style=""))
    console.print()
    console.print(r.text, markup=False, highlight=False)


@app.command("diff")
def diff(
    first: str = typer.Argument(..., metavar="DATE1", help="The earlier date."),
    second: str = typer.Argument(None, metavar="[DATE2]",
                                 help="The later date (omit with --vs to compare regimes)."),
    regime: Regime = typer.Option("enacted", "--regime", help="Regime for both dates, or the "
                                  "first regime with --vs."),
    vs: Regime = typer.Option(None, "--vs", help="Compare --regime with this regime on DATE1."),
    json_out: bool = JsonOption,
    output: str = OutputOption,
    rules: list[Path] = RulesOption,
) -> None:
    """What changed between two dates (`rules diff 2025-04-08 2025-04-10`) or two regimes
    (`rules diff 2025-06-01 --regime enacted --vs ai-diffusion`)."""
    from rich.text import Text

    from straits.rules import ruleset
    from straits.rules.listing import diff as rules_diff

    try:
        fmt = output_format(output, json_out)
        _local_only("diff")
        rs = ruleset(rule_dirs(rules))
        d1 = _date(first, "DATE1")
        if vs is not None:
            if second is not None:
                raise RequestError("give one date with --vs, or two dates without it")
            result = rules_diff(rs.rules, (d1, regime), (d1, vs))
        else:
            if second is None:
                raise RequestError("give a second date, or --vs REGIME",
                                   expected="rules diff DATE1 DATE2 | DATE1 --vs REGIME")
            result = rules_diff(rs.rules, (d1, regime), (_date(second, "DATE2"), regime))
    except InputError as exc:
        fail(exc)
        return
    if fmt != "table":
        emit(result.to_json(), fmt)
        return
    console.print(Text(f"From {result.before} to {result.after}: {len(result.added)} added, "
                       f"{len(result.removed)} removed, {result.unchanged} unchanged.",
                       style="bold"))
    for sign, style, group in (("+", "green", result.added), ("-", "red", result.removed)):
        for r in group:
            line = Text(f"  {sign} {r.id}", style=style)
            line.append(f"  [{r.effect}{' ' + r.requires if r.requires else ''}] {r.title}")
            line.append(f" ({r.citation}; confidence {r.confidence})", style="dim")
            console.print(line)


def _failure_view(res: CaseResult) -> Text:
    from rich.text import Text

    t = Text(f"FAIL {res.case.file}: {res.case.name}\n", style="bold red")
    for p in res.problems:
        t.append(f"  {p}\n", style="red")
    t.append(f"  request:  {res.case.raw_request}\n", style="dim")
    t.append(f"  expected: {res.case.expect.model_dump(exclude_none=True)}\n")
    actual = res.actual
    applied = [r.rule for r in (*actual.reasons, *actual.warnings, *actual.notes)]
    t.append(f"  actual:   decision={actual.decision} requires={list(actual.requires)} "
             f"rules={applied}")
    return t


@app.command("test")
def test(
    packs: list[str] = typer.Argument(None, metavar="[PACK]...",
                                      help="Packs to test (default: all loaded)."),
    json_out: bool = JsonOption,
    output: str = OutputOption,
    rules: list[Path] = RulesOption,
) -> None:
    """Run the packs' case tables (request -> decision, requires, rule ids), like `opa test`.
    Exit status 1 when a case fails."""
    from rich.text import Text

    from straits.rules import ruleset
    from straits.rules.cases import run_cases

    try:
        fmt = output_format(output, json_out)
        _local_only("test")
        results = run_cases(ruleset(rule_dirs(rules)), list(packs or []))
    except InputError as exc:
        fail(exc)
        return
    failed = [r for r in results if not r.ok]
    if fmt != "table":
        emit({"passed": len(results) - len(failed), "failed": len(failed),
              "cases": [r.to_json() for r in results]}, fmt)
    else:
        by_pack: dict[str, list[CaseResult]] = {}
        for r in results:
            by_pack.setdefault(r.case.pack, []).append(r)
        for name, rs in by_pack.items():
            bad = sum(not r.ok for r in rs)
            style = "red" if bad else "green"
            console.print(Text(f"{name}: {len(rs) - bad}/{len(rs)} cases pass", style=style))
        for r in failed:
            console.print(_failure_view(r))
        summary = f"{len(results) - len(failed)} passed, {len(failed)} failed"
        console.print(Text(summary, style="bold red" if failed else "bold green"))
    if failed:
        raise typer.Exit(EXIT_TESTS_FAILED)
