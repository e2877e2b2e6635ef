"""``straits report``: a plan as one self-contained HTML file a reviewer opens from an e-mail."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from straits.cli.choices import Regime
from straits.cli.common import (
    DbOption,
    JsonOption,
    RulesOption,
    err_console,
    esc,
    fail,
    finite_float,
    nonempty_path,
    note,
    open_store,
    print_json,
    rule_dirs,
    state,
    visible,
    whole,
    working,
)
from straits.errors import InputError, StraitsError

if TYPE_CHECKING:
    from straits.cli.plan_source import PlanSource
    from straits.model.scenario import Scenario
    from straits.report.view import Recorded
    from straits.rules import RuleSet

KINDS = {".html": "html", ".htm": "html", ".pdf": "pdf", ".png": "png"}


def output_kind(out: Path) -> str:
    if str(out) == "-":
        return "html"
    kind = KINDS.get(out.suffix.lower())
    if kind is None:
        shown = out.name or str(out)  # '.' has no name
        raise InputError(
            f"cannot tell what to write from {shown!r}",
            path="--out",
            expected="a file ending in .html (or .pdf / .png, printed by a local "
            "Chromium), or - for HTML on stdout",
        )
    return kind


def write_page(html: str, out: Path) -> dict[str, Any]:
    """Write the page (or its PDF/PNG print) and say what was written: only a regular file is
    replaced, atomically; ``-`` is stdout (``fileio.write_output``)."""
    from straits.fileio import output_path, write_output

    kind = output_kind(out)
    path = output_path(out, option="--out")  # refuse a directory, a device... before rendering
    if path is None:
        write_output(None, html)
        return {"path": "-", "kind": kind, "bytes": len(html.encode("utf-8"))}
    if kind == "html":
        write_output(path, html, option="--out")
    else:
        from straits.report.static import print_page

        print_page(html, path, kind)
    return {"path": str(path), "kind": kind, "bytes": path.stat().st_size}


def report(
    plan: str = typer.Argument(
        ...,
        metavar="PLAN",
        help="A recorded plan id (or unique prefix), a plan document "
        "(`straits plan -o json`), a scenario file to plan now, or "
        "`-` for stdin.",
    ),
    out: Path = typer.Option(
        ...,
        "-o",
        "--out",
        click_type=nonempty_path(file=True),
        help="The file to write: .html (self-contained, no network), or "
        ".pdf / .png printed by a local Chromium; - for HTML on "
        "stdout.",
    ),
    regime: Regime = typer.Option(
        None,
        "--regime",
        help="With a scenario: plan under this regime (enacted | "
        "ai-diffusion) instead of the scenario's.",
    ),
    pareto: int = typer.Option(
        None,
        "--pareto",
        click_type=whole(2, 50),
        help="With a scenario: chart the cost / time frontier of N points instead of one plan.",
    ),
    time_limit: float = typer.Option(
        20.0,
        "--time-limit",
        click_type=finite_float(0.5, 3600),
        help="With a scenario: seconds for the search.",
    ),
    db: str = DbOption,
    key: Path = typer.Option(
        None,
        "--key",
        envvar="STRAITS_LEDGER_KEY",
        show_envvar=True,
        help="A recorded plan: the ledger's signing key, to sign a "
        "checkpoint for the receipt when none covers the entry yet.",
    ),
    rules: list[Path] = RulesOption,
    json_out: bool = JsonOption,
) -> None:
    """Write a plan report: summary, Gantt per site and pool with capacity and use, a map of
    sites and what moves between them, costs, **why not** for every stage with the rule and
    citation, the rules in force on the plan's date on a timeline, warnings, and the ledger
    entry of a recorded plan with its receipt (when a signed checkpoint covers it or --key
    can sign one)."""
    from straits.report import pareto_report, plan_report
    from straits.rules import ruleset

    try:
        # a bad -o (no known suffix, a directory, a device...) is refused before a plan is
        # read, made or rendered, not after
        from straits.fileio import output_path, refuse_input_as_output

        output_kind(out)
        if json_out and str(out) == "-":
            raise InputError(
                "--json and -o - both want stdout",
                path="--json",
                expected="-o FILE.html with --json",
            )
        output_path(out, option="--out")
        refuse_input_as_output(plan, out, "--out")
        rs = ruleset(rule_dirs(rules))
        if pareto is not None:
            from straits.plan.candidates import Candidates
            from straits.plan.pareto import frontier

            source = _scenario_only(plan, db, "--pareto")
            from straits.cli.common import refuse_unread

            refuse_unread(  # they read a recorded plan's ledger; a frontier has none
                ("key", "db"),
                when=f"with --pareto: {source.label} is planned now, not a recorded plan",
                expected="no --key or --db with --pareto",
            )
            cand = Candidates(
                source.scenario,
                rs,
                regime=regime or source.scenario.regime,
                date=source.scenario.date,
            )
            points = frontier(cand, points=pareto, time_limit=time_limit)
            html = pareto_report(
                [p.to_json() for p in points], source.scenario.name, source.scenario.risk
            )
        elif state.server_url and _recorded_ref(plan):
            # a recorded plan is the server's: its report route renders what its log proves
            from straits.cli.common import refuse_unread
            from straits.cli.remote import client

            refuse_unread(
                ("time_limit",),
                when="with a recorded plan: it is a plan already",
                expected="a scenario file with --time-limit",
            )
            if regime is not None:
                raise InputError(
                    "--regime applies to a scenario planned now",
                    path="--regime",
                    expected="a scenario file with --regime, or no --regime",
                )
            c = client()
            plan_id = str(c.plan_job(plan)["id"])  # a prefix resolved as `plan --show` does
            html = c.plan_report(plan_id)
            note(f"[dim]read the report of plan {esc(plan_id)} from {esc(state.server_url)}[/dim]")
        else:
            plan_json, sc, describe, recorded = _plan_of(plan, db, rs, regime, time_limit, key)
            html = plan_report(plan_json, sc, rs, source=describe, recorded=recorded)
        written = write_page(html, out)
    except StraitsError as exc:
        fail(exc)
        return
    except OSError as exc:
        fail(
            InputError(
                f"cannot write {out}: {exc.strerror or exc}",
                path="--out",
                expected="a writable file path",
            )
        )
        return
    if json_out:
        print_json(written)
    elif written["path"] != "-":
        err_console.print(f"wrote {visible(written['path'])} ({written['bytes'] / 1e6:,.1f} MB)")


def _scenario_only(ref: str, db: str | None, option: str) -> PlanSource:
    from straits.cli.plan_source import load_source

    source = load_source(ref, db=db)
    if source.document is not None:
        raise InputError(
            f"{option} plans a scenario; {source.label} is a plan already",
            path="PLAN",
            expected=f"a scenario file with {option}",
        )
    return source


def _recorded_ref(ref: str) -> bool:
    """Whether PLAN names a recorded plan (an id), not stdin or a file read here."""
    from straits.cli.plan_source import looks_like_path

    return ref != "-" and not Path(ref).expanduser().exists() and not looks_like_path(ref)


def _plan_of(
    ref: str,
    db: str | None,
    rules: RuleSet,
    regime: str | None,
    time_limit: float,
    key: Path | None = None,
) -> tuple[dict[str, Any], Scenario, str, Recorded | None]:
    """(plan JSON with every option's diagnosis where it can be had, its scenario, what was
    read, the ledger entry of a recorded plan)."""
    from straits.cli.plan_source import load_source
    from straits.report.view import Recorded

    source = load_source(ref, db=db)
    doc = source.document
    if source.kind != "recorded":  # they read the ledger of a recorded plan: accepted, unread
        from straits.cli.common import refuse_unread

        refuse_unread(
            ("key", "db"),
            when=f"with {source.label}: it is not a recorded plan",
            expected="a recorded plan id with --key or --db",
        )
    if doc is None:  # a scenario: planned now, with the diagnosis of every option
        from straits.plan import make_plan

        note(f"[dim]read {esc(source.label)}; planning it now[/dim]")
        with working(f"planning {esc(source.label)}"):
            made = make_plan(source.scenario, rules=rules, regime=regime, time_limit=time_limit)
        return (
            made.to_json(details=True),
            source.scenario,
            # the page's text (HTML-escaped by its template), not Rich markup: esc() put a
            # backslash before every '[' of the file's name into the report
            f"{_on_the_page(source.label, ref)}, planned now under the {made.regime} rules",
            None,
        )
    from straits.cli.common import refuse_unread

    refuse_unread(  # a plan document or a recorded plan is reported as it is, not planned
        ("time_limit",),
        when=f"with {source.label}: it is a plan already",
        expected="a scenario file with --time-limit",
    )
    if regime is not None and regime != doc.plan.get("regime"):
        raise InputError(
            f"{source.label} was planned under the {doc.plan.get('regime')} "
            "rules; --regime applies to a scenario planned now",
            path="--regime",
            expected="a scenario file with --regime, or no --regime",
        )
    note(f"[dim]read {esc(source.label)}[/dim]")
    recorded = None
    if source.kind == "recorded" and doc.ledger_seq is not None:
        from straits.store.ledger import get_entry

        store = open_store(db)
        entry = get_entry(store, doc.ledger_seq)
        receipt, why = _receipt(store, doc.ledger_seq, key)
        recorded = Recorded(
            plan_id=doc.id,
            seq=doc.ledger_seq,
            hash=entry.hash if entry else None,
            recorded_at=entry.recorded_at if entry else None,
            tenant=entry.tenant if entry else None,
            receipt=receipt,
            receipt_note=why,
        )
    # the page travels by e-mail: it names the plan and entry, not this machine's database
    shown = (
        f"recorded plan {doc.id}, ledger entry {doc.ledger_seq}"
        if recorded is not None
        else _on_the_page(source.label, ref)
    )
    return doc.plan, doc.scenario, shown, recorded


def _on_the_page(label: str, ref: str) -> str:
    """``label`` with the file read named by its name only, its controls written as escapes:
    the page travels by e-mail, and ``/home/ana/deals/acme/scenario.yaml`` told every reader
    this machine's user and folders (and two reports of one plan written from two folders
    differed, SOURCE_DATE_EPOCH or not)."""
    from straits.controls import shown

    if ref != "-":
        path = str(Path(ref).expanduser())
        label = label.replace(path, Path(path).name, 1)
    # a file's name is the one text of the page no model checked: U+202E in it reversed the
    # rest of the source line on screen ("Trojan Source"), as it would on a terminal
    return shown(label)


def _receipt(store: Any, seq: int, key: Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """The entry's receipt (as `straits ledger receipt` makes it: a stored signed checkpoint
    that covers the entry, else one signed now with ``key``), or why there is none. A log that
    does not prove the entry is said on stderr, loudly, and in the report."""
    from straits.cli.ledger_cmd import keys_from
    from straits.errors import LedgerError
    from straits.store.receipts import make_receipt

    keys = keys_from(key, None)  # a bad key is the user's error (exit 2), not "no receipt"
    try:
        return make_receipt(store, seq, keys), None
    except LedgerError as exc:
        err_console.print(f"[bold red]no receipt[/bold red]: {esc(str(exc))}", soft_wrap=True)
        return None, f"the ledger does not prove entry {seq}: {exc}"
    except InputError as exc:  # no checkpoint covers it and no key to sign one
        note(f"[dim]no receipt in the report: {esc(exc.detail)}[/dim]")
        return None, exc.detail
