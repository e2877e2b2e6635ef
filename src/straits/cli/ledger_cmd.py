"""``straits ledger``: verify, show and export the hash-chained audit ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from straits.cli.common import (
    DbOption,
    Format,
    JsonOption,
    OutputOption,
    console,
    emit,
    fail,
    note,
    open_store,
    output_format,
    read_stdin_text,
    state,
    write_output,
)
from straits.errors import InputError, StraitsError

if TYPE_CHECKING:
    from straits.store.ledger import Entry, Verification

app = typer.Typer(help="Verify, show and export the audit ledger.", no_args_is_help=True)

EXIT_BROKEN = 1


def _report(result: Verification, fmt: Format, source: str) -> None:
    if fmt != "table":
        emit(result.to_json(), fmt)
    elif result.ok:
        console.print(f"[bold green]ledger verifies[/bold green]: {result.entries:,} entries "
                      f"in {source}; head {result.head_seq}:{result.head_hash}")
    else:
        console.print(f"[bold red]ledger broken at entry {result.first_bad}[/bold red]: "
                      f"{result.problem} ({result.entries:,} entries verified before it)")
    if not result.ok:
        raise typer.Exit(EXIT_BROKEN)


@app.command("verify")
def verify(
    db: str = DbOption,
    file: Path = typer.Option(None, "--file", help="Verify an export (JSON lines; `-` for "
                              "stdin) instead of the database; a removed tail cannot be seen "
                              "without the head."),
    head: str = typer.Option(None, "--head", help="With --file: the head hash published "
                             "when the export was made (SEQ:HASH), so a removed tail shows."),
    json_out: bool = JsonOption,
    output: str = OutputOption,
) -> None:
    """Walk the hash chain and name the first entry that was altered, removed or reordered.

    Exit status 0 when the ledger verifies, 1 when it does not, 2 on bad input.
    """
    from straits.store import ledger
    from straits.store.ledger import verify_chain

    try:
        fmt = output_format(output, json_out)
        if file is not None:
            result = verify_chain(_read_export(file), _parse_head(head) if head else None)
            _report(result, fmt, "<stdin>" if str(file) == "-" else str(file))
            return
        if state.server_url:
            from straits.cli.remote import client, remote_verification

            _report(remote_verification(client().ledger_verify()), fmt, state.server_url)
            return
        store = open_store(db)
        _report(ledger.verify(store), fmt, repr(store))
    except StraitsError as exc:
        fail(exc)


def _parse_head(text: str) -> tuple[int, str]:
    seq, _, value = text.partition(":")
    if not seq.isdigit() or len(value) != 64:
        raise InputError(f"{text!r} is not a ledger head", path="--head",
                         expected="SEQ:HASH as `straits ledger verify` prints it")
    return int(seq), value


def _read_export(path: Path) -> list[Entry]:
    from straits.store.ledger import Entry

    out = []
    label = "<stdin>" if str(path) == "-" else str(path)
    try:
        text = read_stdin_text("a ledger export") if str(path) == "-" else \
            path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", source=label) from None
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(Entry.from_json(json.loads(line)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a ledger entry: {exc}", source=label,
                             path=f"line {i}") from None
    return out


def _summary(e: Entry) -> str:
    body = e.content
    result = body.get("result")
    if e.kind == "check":
        answers = result if isinstance(result, list) else [result]
        return ", ".join(str(a.get("decision")) for a in answers if isinstance(a, dict))
    if e.kind == "admission":
        inputs = body.get("inputs") or {}
        verdict = "allowed" if (result or {}).get("allowed") else "rejected"
        return (f"{verdict} launch of {inputs.get('workload')}/{inputs.get('stage')} "
                f"(plan {str(inputs.get('plan_id', ''))[:8]})")
    plan: dict[str, Any] = (result or {}).get("plan") or {}
    return (f"{plan.get('status')} ${plan.get('total_cost_usd', 0):,.0f} "
            f"{len(plan.get('assignments', []))} placed, {len(plan.get('unplaced', []))} "
            f"unplaced (plan {str((result or {}).get('plan_id', ''))[:8]})")


@app.command("show")
def show(
    seq: int = typer.Argument(None, help="One entry in full; default: a table of entries."),
    db: str = DbOption,
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant's entries."),
    since: int = typer.Option(1, "--since", min=1, help="First entry number."),
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many entries."),
    json_out: bool = JsonOption,
    output: str = OutputOption,
) -> None:
    """Show ledger entries: who recorded what, when, under which rules, and the result."""
    from straits.store.ledger import Entry

    try:
        fmt = output_format(output, json_out)
        if state.server_url:
            from straits.cli.remote import client

            c = client()
            if seq is not None:
                emit(c.ledger_entry(seq), "yaml" if fmt == "yaml" else "json")
                return
            items = list(c.ledger_entries(since=since, limit=limit, tenant=tenant))
            rows = [Entry.from_json(dict(d)) for d in items]
        else:
            from straits.store import ledger

            store = open_store(db)
            if seq is not None:
                e = ledger.get_entry(store, seq)
                if e is None:
                    raise InputError(f"no ledger entry {seq}", path="SEQ")
                emit({**e.to_json(), "body": e.content}, "yaml" if fmt == "yaml" else "json")
                return
            rows = list(ledger.entries(store, tenant=tenant, since=since, limit=limit))
    except StraitsError as exc:
        fail(exc)
        return
    if fmt != "table":
        emit([{**e.to_json(), "body": e.content} for e in rows], fmt)
        return
    from rich.table import Table

    t = Table(title=f"Ledger ({len(rows)} entries from {since})", title_justify="left")
    for col in ("seq", "recorded (UTC)", "tenant", "actor", "kind", "result", "hash"):
        t.add_column(col, justify="right" if col == "seq" else "left")
    for e in rows:
        t.add_row(str(e.seq), e.recorded_at[:19], e.tenant, e.actor, e.kind, _summary(e),
                  e.hash[:12])
    console.print(t)


@app.command("export")
def export(
    db: str = DbOption,
    output: Path = typer.Option(None, "-o", "--output", help="File to write (default or `-`: "
                                "stdout)."),
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant's entries (such an "
                               "export cannot be verified as a chain on its own)."),
) -> None:
    """Export the ledger as JSON lines, one entry per line with every stored field, so that
    `straits ledger verify --file` can check it anywhere (with --server, the entries the
    token may read)."""
    from straits.store.ledger import Entry

    try:
        if state.server_url:
            from straits.cli.remote import client

            rows = [Entry.from_json(dict(d)) for d in client().ledger_entries(tenant=tenant)]
        else:
            from straits.store import ledger

            rows = list(ledger.entries(open_store(db), tenant=tenant))
        lines = [json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True) for e in rows]
        text = "".join(line + "\n" for line in lines)
        write_output(output, text)
    except StraitsError as exc:
        fail(exc)
        return
    except OSError as exc:
        fail(InputError(f"cannot write: {exc.strerror or exc}", source=str(output)))
        return
    if output is not None and str(output) != "-":
        note(f"wrote {len(lines):,} entries to {output}")
