"""``straits rules``: list, show, diff, test and replay the rule packs, and their versions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from straits.cli.choices import Regime
from straits.cli.common import (
    ActorOption,
    DbOption,
    JsonOption,
    OutputOption,
    RulesOption,
    actor_name,
    console,
    emit,
    err_console,
    fail,
    finite_float,
    open_store,
    output_format,
    rule_dirs,
    state,
    working,
)
from straits.cli.dates import check_date, iso_date
from straits.errors import InputError, RequestError, StraitsError

if TYPE_CHECKING:
    from straits.rules import Rule, RuleSet
    from straits.rules.replay import Replay
    from straits.store import Store
    from straits.store.ledger import Entry

app = typer.Typer(help="List, show, diff, test and replay the rule packs.", no_args_is_help=True)

EXIT_TESTS_FAILED = 1
#: `rules replay --exit-code`: some recorded decision would change
EXIT_CHANGED = 4

PacksOption = typer.Option(
    None,
    "--packs",
    help="A directory of candidate packs (repeatable), loaded over the shipped "
    "packs and --rules: a pack with the name of a loaded one replaces it.",
)


def _window(r: Rule | dict[str, Any]) -> str:
    """A rule's window, from a :class:`Rule` or its JSON."""
    if isinstance(r, dict):
        return f"{r['effective_from']} .. {r.get('effective_until') or ''}".rstrip()
    return f"{r.effective_from} .. {r.effective_until or ''}".rstrip()


def _rules(rules: list[Path] | None, packs: list[Path] | None = None) -> RuleSet:
    from straits.rules import ruleset

    return ruleset((*rule_dirs(rules), *(packs or ())))


def _local_only(what: str) -> None:
    if state.server_url:
        raise InputError(
            f"`straits rules {what}` reads the rule packs on this machine",
            path="--server",
            expected="no --server (`rules list` asks the server)",
        )


@app.command("list")
def list_rules(
    date: dt.datetime = typer.Option(
        None, "--date", click_type=iso_date(), help="Only rules in force on this date (YYYY-MM-DD)."
    ),
    regime: Regime = typer.Option("enacted", "--regime", help="enacted | ai-diffusion."),
    pack: list[str] = typer.Option(None, "--pack", help="Only these packs (repeatable)."),
    json_out: bool = JsonOption,
    output: str = OutputOption,
    rules: list[Path] = RulesOption,
) -> None:
    """List the rules, or those in force on --date under --regime."""
    try:
        fmt = output_format(output, json_out)
        day = check_date(date) if date is not None else None
        if state.server_url:
            from straits.cli.remote import client

            selected = client().rules(date=day, regime=regime, packs=pack or [])
        else:
            from straits.api import rule_json, select_rules

            selected = [rule_json(r) for r in select_rules(_rules(rules), day, regime, pack)]
    except StraitsError as exc:
        if isinstance(exc, InputError) and exc.path == "pack":  # the API's name: here, --pack
            exc = exc.replaced(path="--pack", problems=None)
        fail(exc)
        return
    if fmt != "table":
        emit(selected, fmt)
        return
    from rich.table import Table

    title = f"{len(selected)} rules" + (f" in force on {day} ({regime})" if day else "")
    t = Table(title=title, title_justify="left")
    t.add_column("rule", no_wrap=True)
    t.add_column("effect")
    t.add_column("requires", no_wrap=True)  # an id a user types: never cut
    t.add_column("in force")
    t.add_column("conf", no_wrap=True)
    t.add_column("title")
    for r in selected:
        effect = r["effect"] + (f" ({r['presumption']})" if r.get("presumption") else "")
        t.add_row(
            r["rule"], effect, r.get("requires") or "", _window(r), r["confidence"], r["title"]
        )
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
    from straits.rules.listing import rule_regimes

    try:
        fmt = output_format(output, json_out)
        _local_only("show")
        r = _rules(rules).rule(rule_id)
    except InputError as exc:
        fail(exc)
        return
    if fmt != "table":
        emit({**rule_json(r), "text": r.text}, fmt)
        return
    console.print(Text(f"{r.id}  ({r.pack}, {r.file}:{r.line})", style="bold"))
    rows = [
        ("title", r.title),
        ("citation", r.citation),
        ("confidence", r.confidence),
        (
            "effect",
            r.effect
            + (f", requires {r.requires}" if r.requires else "")
            + (f", presumption of {r.presumption}" if r.presumption else ""),
        ),
        ("in force", _window(r)),
        ("regimes", ", ".join(rule_regimes(r))),
        ("reason", r.reason),
        ("reading", r.reading or "-"),
    ]
    for k, v in rows:
        console.print(Text(f"  {k:<11}", style="bold").append(v, style=""))
    console.print()
    console.print(r.text, markup=False, highlight=False)


@app.command("packs")
def packs(
    json_out: bool = JsonOption,
    output: str = OutputOption,
    rules: list[Path] = RulesOption,
) -> None:
    """The loaded packs: version, whether the policies are those the newest changelog entry
    released (its policy digest), and the latest change."""
    from straits.cli import rules_views as views

    try:
        fmt = output_format(output, json_out)
        _local_only("packs")
        loaded = _rules(rules).packs
    except InputError as exc:
        fail(exc)
        return
    if fmt != "table":
        emit(
            [
                {
                    "name": p.name,
                    "version": p.version,
                    "jurisdiction": p.jurisdiction,
                    "rules": len(p.rules),
                    "digest": p.digest,
                    "policy_digest": p.policy_digest,
                    "released": p.released,
                    "changelog": [r.to_json() for r in p.changelog],
                }
                for p in loaded
            ],
            fmt,
        )
        return
    console.print(views.packs_table(loaded))


@app.command("diff")
def diff(
    first: dt.datetime = typer.Argument(
        None, metavar="[DATE1]", click_type=iso_date(), help="The earlier date (YYYY-MM-DD)."
    ),
    second: dt.datetime = typer.Argument(
        None,
        metavar="[DATE2]",
        click_type=iso_date(),
        help="The later date (omit with --vs to compare regimes).",
    ),
    regime: Regime = typer.Option(
        "enacted", "--regime", help="Regime for both dates, or the first regime with --vs."
    ),
    vs: Regime = typer.Option(None, "--vs", help="Compare --regime with this regime on DATE1."),
    candidate: list[Path] = PacksOption,
    base: list[Path] = typer.Option(
        None,
        "--base",
        help="With --packs: the pack versions to compare from (default: the packs loaded now).",
    ),
    json_out: bool = JsonOption,
    output: str = OutputOption,
    rules: list[Path] = RulesOption,
) -> None:
    """What changed between two dates (`rules diff 2025-04-08 2025-04-10`), two regimes
    (`rules diff 2025-06-01 --regime enacted --vs ai-diffusion`) or two pack versions
    (`rules diff --packs NEW_DIR [--base OLD_DIR]`): policies added, removed, changed in
    effect or in annotations only, with the changelog of each new version."""
    from straits.rules.listing import diff as rules_diff

    try:
        fmt = output_format(output, json_out)
        _local_only("diff")
        if candidate or base:
            if first is not None or vs is not None:
                raise RequestError("compare pack versions (--packs/--base) or dates, not both")
            if not candidate:
                raise RequestError("give the newer packs with --packs", path="--packs")
            _pack_diff(rules, base, candidate, fmt)
            return
        if first is None:
            raise RequestError(
                "give a date, two dates, or --packs DIR",
                expected="rules diff DATE1 DATE2 | DATE1 --vs REGIME | --packs DIR [--base DIR]",
            )
        rs = _rules(rules)
        d1 = check_date(first, "DATE1")
        if vs is not None:
            if second is not None:
                raise RequestError("give one date with --vs, or two dates without it")
            result = rules_diff(rs.rules, (d1, regime), (d1, vs))
        else:
            if second is None:
                raise RequestError(
                    "give a second date, or --vs REGIME",
                    expected="rules diff DATE1 DATE2 | DATE1 --vs REGIME",
                )
            result = rules_diff(rs.rules, (d1, regime), (check_date(second, "DATE2"), regime))
    except InputError as exc:
        fail(exc)
        return
    if fmt != "table":
        emit(result.to_json(), fmt)
        return
    from straits.cli import rules_views as views

    views.rule_diff(result)


def _pack_diff(
    rules: list[Path] | None, base: list[Path] | None, candidate: list[Path], fmt: str
) -> None:
    from straits.cli import rules_views as views
    from straits.rules.versions import diff_packs

    before = _rules(rules, base).packs
    after = _rules(rules, candidate).packs
    d = diff_packs(before, after)
    if fmt != "table":
        emit(d.to_json(), fmt)  # type: ignore[arg-type]
    else:
        views.pack_diff(d)


@app.command("test")
def test(
    packs: list[str] = typer.Argument(
        None, metavar="[PACK]...", help="Packs to test (default: all loaded)."
    ),
    show_coverage: bool = typer.Option(
        False,
        "--coverage",
        help="Print every policy and condition with how the cases exercised it.",
    ),
    min_conditions: float = typer.Option(
        0.0,
        "--min-condition-coverage",
        click_type=finite_float(0.0, 100.0),
        help="Fail when the tested packs' condition coverage is below this percentage.",
    ),
    json_out: bool = JsonOption,
    output: str = OutputOption,
    rules: list[Path] = RulesOption,
) -> None:
    """Run the packs' case tables (request -> decision, requires, rule ids), like `opa test`,
    and measure how they cover each policy and condition. Exit status 1 when a case fails,
    a policy applies in no case of its own pack, or conditions are covered below
    --min-condition-coverage."""
    from rich.text import Text

    from straits.cli import rules_views as views
    from straits.rules.cases import run_cases
    from straits.rules.coverage import coverage

    try:
        fmt = output_format(output, json_out)
        _local_only("test")
        rs = _rules(rules)
        results = run_cases(rs, list(packs or []))
        report = coverage(rs, results, list(packs or []) or [p.name for p in rs.packs])
    except InputError as exc:
        fail(exc)
        return
    failed = [r for r in results if not r.ok]
    too_low = report.conditions_below(min_conditions)
    bad = bool(failed or report.uncovered or too_low)
    if fmt != "table":
        emit(
            {
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "cases": [r.to_json() for r in results],
                "coverage": report.to_json(),
            },
            fmt,
        )
    else:
        by_pack: dict[str, list[int]] = {}
        for r in results:
            by_pack.setdefault(r.case.pack, [0, 0])[0 if r.ok else 1] += 1
        for name, (ok, wrong) in by_pack.items():
            console.print(
                Text(f"{name}: {ok}/{ok + wrong} cases pass", style="red" if wrong else "green")
            )
        for r in failed:
            console.print(views.failure(r))
        console.print(Text("coverage", style="bold"))
        views.coverage_lines(report, detail=show_coverage)
        summary = f"{len(results) - len(failed)} passed, {len(failed)} failed"
        summary += (
            f"; policy coverage {report.policy_pct:g}%, condition coverage "
            f"{report.condition_pct:g}%"
        )
        console.print(Text(summary, style="bold red" if bad else "bold green"))
        if report.uncovered:
            console.print(
                Text(
                    "every policy must apply in some case of its own pack: "
                    + ", ".join(p.rule.id for p in report.uncovered),
                    style="red",
                ),
                soft_wrap=True,
            )
        if too_low:
            console.print(
                Text(
                    f"condition coverage {report.condition_pct:g}% is below "
                    f"--min-condition-coverage {min_conditions:g}%",
                    style="red",
                )
            )
    if bad:
        raise typer.Exit(EXIT_TESTS_FAILED)


@app.command("replay")
def replay(
    since: dt.datetime = typer.Option(
        ...,
        "--since",
        click_type=iso_date(),
        help="Replay the entries recorded on or after this date (YYYY-MM-DD; a day in UTC, "
        "as entries record their times).",
    ),
    candidate: list[Path] = PacksOption,
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant's entries."),
    record: bool = typer.Option(
        False,
        "--record",
        help="Append the replay (candidate packs, "
        "what was replayed, what would change) to the ledger.",
    ),
    exit_code: bool = typer.Option(
        False,
        "--exit-code",
        help=f"Exit {EXIT_CHANGED} when a recorded decision would change or an entry could not "
        "be replayed (for scripts and CI).",
    ),
    verify: bool = typer.Option(
        True,
        "--verify/--no-verify",
        help="Verify the ledger before reading it (a replay of altered entries would mislead).",
    ),
    json_out: bool = JsonOption,
    output: str = OutputOption,
    rules: list[Path] = RulesOption,
    db: str = DbOption,
    actor: str = ActorOption,
) -> None:
    """Re-evaluate every decision and plan recorded in the ledger since --since against the
    candidate packs (the loaded packs, with --packs over them) and list exactly which would
    change: before -> after, the rule, the tenant. Decisions are asked on their own date and
    regime; plans are re-checked placement by placement."""
    from straits.cli import rules_views as views
    from straits.cli.common import refuse_unread
    from straits.rules.replay import Replayer
    from straits.store import ledger as ledger_mod

    try:
        fmt = output_format(output, json_out)
        _local_only("replay")
        if not record:  # --actor names who records: without --record it was dropped (h49)
            refuse_unread(("actor",), when="without --record", expected="--record")
        ledger_mod.check_who(tenant, None)  # --tenant '' replayed nothing, "no change"
        day = check_date(since, "--since")
        store = open_store(db, existing=True)
        if verify:
            with working("verifying the ledger before replaying it"):
                v = ledger_mod.verify(store)
            if not v.ok:
                raise InputError(
                    f"the ledger does not verify ({v.problem}): replaying it "
                    "would compare against altered records",
                    path="--db",
                    expected="a ledger that `straits ledger verify` accepts "
                    "(or --no-verify to replay it as it is)",
                )
        cand = _rules(rules, candidate)
        with working(f"replaying the decisions and plans recorded since {day}"):
            replayer = Replayer(store, cand, _rules(rules) if candidate else None)
            result = replayer.run(day, tenant=tenant)
        entry = None
        if record:
            entry = _record(store, cand, result, candidate, tenant, actor_name(actor))
    except StraitsError as exc:
        fail(exc)
        return
    if entry is not None:
        err_console.print(f"recorded as ledger entry {entry.seq} ({entry.hash[:12]})")
    if fmt != "table":
        emit(
            {
                **result.to_json(),
                "recorded": None if entry is None else {"seq": entry.seq, "hash": entry.hash},
            },
            fmt,
        )
    else:
        views.replay_view(result)
    # an entry the candidate could not replay is no evidence that nothing changes: a candidate
    # whose rules fail on every recorded request skipped them all and passed the gate (exit 0)
    if exit_code and (result.changes or result.skipped):
        raise typer.Exit(EXIT_CHANGED)


def _record(
    store: Store,
    cand: RuleSet,
    result: Replay,
    candidate: list[Path] | None,
    tenant: str | None,
    actor: str,
) -> Entry:
    from straits.store.records import record_replay

    regimes = sorted(result.regimes)
    inputs = {
        "since": result.since.isoformat(),
        "tenant": tenant,
        "packs_dirs": [str(p) for p in candidate or ()],
        "entries": [result.first_seq, result.last_seq],
    }
    return record_replay(
        store,
        cand,
        inputs,
        result.to_json(),
        regime=regimes[0] if len(regimes) == 1 else regimes,
        date=result.since,
        tenant=tenant or "*",
        actor=actor,
    )
