"""``straits ledger``: verify, show and export the ledger (a Merkle tree log with a hash chain);
keys, checkpoints, receipts and witnessing are in ``ledger_proof_cmd.py``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from straits.cli.common import (
    DbOption,
    JsonOption,
    OutputOption,
    console,
    emit,
    esc,
    fail,
    note,
    open_store,
    output_format,
    read_stdin_text,
    refuse_unread,
    state,
    whole,
)
from straits.cli.ledger_summary import (
    entry_or_removed,
    first_of,
    readable_body,
    removed_rows,
    show_tenant_view,
    shown_json,
    summary,
    unproven,
)
from straits.cli.ledger_verdicts import EXIT_BROKEN, report, report_tenant
from straits.errors import InputError, LedgerError, StraitsError

if TYPE_CHECKING:
    from straits.store.integrity import Head
    from straits.store.keys import Keys
    from straits.store.ledger import Entry

app = typer.Typer(
    help="The ledger: verify, show, export; keys, checkpoints, receipts, witnesses.",
    no_args_is_help=True,
)

KeyOption = typer.Option(
    None,
    "--key",
    envvar="STRAITS_LEDGER_KEY",
    show_envvar=True,
    help="The ledger's signing key file (`straits ledger keygen`).",
)
PubkeyOption = typer.Option(
    None,
    "--pubkey",
    help="The log's public key: a .pub file or "
    "NAME+KEYID+BASE64 (repeatable; default $STRAITS_LEDGER_PUBKEY).",
)
HEAD_RE = re.compile(r"^([0-9]+):([0-9a-fA-F]{64})$")


def keys_from(key: Path | None, pubkeys: list[str] | None) -> Keys:
    """The keys of --key / --pubkey, else of their variables. A key click took from
    STRAITS_LEDGER_KEY is left to ``configured`` to read, so its errors name the variable the
    user set, not a --key never typed (user32)."""
    import click

    from straits.store.keys import configured

    ctx = click.get_current_context(silent=True)
    if (
        ctx is not None
        and ctx.get_parameter_source("key") is click.core.ParameterSource.ENVIRONMENT
    ):
        key = None
    return configured(key, pubkeys)


def parse_heads(values: list[str], keys: Keys) -> list[Head]:
    """``SEQ:HASH`` values and signed checkpoints (files, or '-' for stdin) given as heads;
    a checkpoint's signature is checked with the keys (none given: an input error)."""
    from straits.fileio import is_file
    from straits.store.integrity import ChainHead
    from straits.store.note import MAX_SIZE, NoteError, open_checkpoint
    from straits.store.witness import parse_offer

    heads: list[Head] = []
    for value in values:
        m = HEAD_RE.match(value.strip())
        if m:
            if len(m.group(1)) > len(str(MAX_SIZE)) or int(m.group(1)) > MAX_SIZE:
                raise InputError(
                    f"{value[:40]!r}...: no log has more than {MAX_SIZE} entries",
                    path="--head",
                    expected="SEQ:HASH with SEQ at most 2^63 - 1",
                )
            heads.append(ChainHead(int(m.group(1)), m.group(2).lower()))
            continue
        if value.strip() != "-" and not is_file(value):
            raise InputError(
                f"{value!r} is neither SEQ:HASH nor a checkpoint file",
                path="--head",
                expected="SEQ:HASH as `straits ledger verify` "
                "printed it, or a file holding a signed checkpoint",
            )
        text = (
            read_stdin_text("a signed checkpoint")
            if value.strip() == "-"
            else _read(Path(value), "--head")
        )
        offer = parse_offer(text, value)
        if not keys.checks_signatures:
            raise InputError(
                "cannot check the checkpoint's signature: no public key",
                path="--head",
                expected="--pubkey KEY or STRAITS_LEDGER_PUBKEY (the log's .pub file)",
            )
        try:
            heads.append(open_checkpoint(offer.note, keys.trusted))
        except NoteError as exc:
            from straits.errors import LedgerError

            raise LedgerError(f"the checkpoint {value} is forged or unsigned: {exc}") from None
        bad_receipt = offer.receipt_problem(keys.trusted)
        if bad_receipt is not None:
            from straits.errors import LedgerError

            raise LedgerError(f"the receipt {value} does not verify: {bad_receipt}")
    return heads


def _read(path: Path, option: str) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(2 * 1024 * 1024 + 1)
    except OSError as exc:
        raise InputError(
            f"cannot read: {exc.strerror or exc}", source=str(path), path=option
        ) from None
    if len(raw) > 2 * 1024 * 1024:
        raise InputError("over 2 MiB: not a checkpoint", source=str(path), path=option)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", source=str(path), path=option) from None


@app.command("verify")
def verify(
    db: str = DbOption,
    file: Path = typer.Option(
        None, "--file", help="Verify an export (JSON lines; `-` for stdin) instead of the database."
    ),
    head: list[str] = typer.Option(
        None,
        "--head",
        help="An older head to prove the log "
        "extends: SEQ:HASH (a chain hash or a Merkle root), or a "
        "signed checkpoint file (repeatable).",
    ),
    key: Path = KeyOption,
    pubkey: list[str] = PubkeyOption,
    quick: bool = typer.Option(
        False,
        "--quick",
        help="Database only: check the heads and "
        "the latest checkpoint by consistency proofs, without "
        "rescanning every entry.",
    ),
    tenant: str = typer.Option(
        None,
        "--tenant",
        help="Database only: check this tenant's entries and records only (each entry "
        "proven against the tree and the latest checkpoint, its numbers without a gap, its "
        "plan and decision rows against their entries), numbered as the tenant numbers them: "
        "what the tenant's own GET /v1/ledger/verify answers.",
    ),
    progress: bool = typer.Option(
        None,
        "--progress/--no-progress",
        help="Show a full database check's progress on stderr (default: on a terminal).",
    ),
    json_out: bool = JsonOption,
    output: str = OutputOption,
) -> None:
    """Check the log: the hash chain, the Merkle tree, every signed checkpoint, every older
    head given (through a consistency proof), and every recorded plan and decision against its
    entry. Names the first entry that was altered, removed or reordered.

    Exit status 0 when the ledger verifies, 1 when it does not (or a head is forged), 2 on bad
    input."""
    from straits.errors import LedgerError
    from straits.store.ledger import check_who

    try:
        fmt = output_format(output, json_out)
        check_who(tenant, None)  # --tenant '' verified nothing and said so as a success
        keys = keys_from(key, pubkey)
        stdin = sum(h.strip() == "-" for h in head or []) + (str(file) == "-")
        if stdin > 1:  # the second read found nothing: a head 'forged', entries 'removed'
            raise InputError(
                "standard input is read once, but it was given more than once",
                path="--head",
                expected="at most one of --file - and --head - (write the others to files)",
            )
        try:
            heads = parse_heads(head or [], keys)
        except LedgerError as exc:
            if fmt != "table":
                emit({"ok": False, "problem": str(exc)}, fmt)
            else:
                console.print(f"[bold red]head rejected[/bold red]: {esc(exc)}", soft_wrap=True)
            raise typer.Exit(EXIT_BROKEN) from None
        if tenant is not None and (file is not None or state.server_url):
            raise InputError(
                "--tenant checks one tenant's entries in a database",
                path="--tenant",
                expected="--db (a server verifies the tenant of its token: no --tenant)",
            )
        if file is not None:
            from straits.store.exported import refuse_one_tenants_part, verify_export

            refuse_unread(  # a database's: --file --quick rescanned every entry, exit 0 (h49)
                ("quick", "db"),
                when="with --file: it checks the export, not a database",
                expected="--file, or --db and --quick",
            )

            label = "<stdin>" if str(file) == "-" else str(file)
            entries = _read_export(file)
            refuse_one_tenants_part(entries, label)  # an honest --tenant export: not a log
            report(verify_export(entries, heads), fmt, label)
            return
        if state.server_url:
            if heads or quick:
                raise InputError(
                    "--head and --quick check a database or an export here",
                    path="--server",
                    expected="no --server, or neither option",
                )
            from straits.cli.remote import client, remote_verification

            report(remote_verification(client().ledger_verify()), fmt, state.server_url)
            return
        from straits.store.integrity import verify_heads, verify_store

        if tenant is not None:
            if heads or quick:
                raise InputError(
                    "--tenant checks one tenant's entries against the latest checkpoint",
                    path="--tenant",
                    expected="no --head and no --quick with --tenant",
                )
            from straits.store.tenant_verify import verify_tenant

            report_tenant(verify_tenant(open_store(db, existing=True), keys, tenant), tenant, fmt)
            return
        store = open_store(db, existing=True)
        if quick:
            result = verify_heads(store, keys, heads)
        else:
            from straits.cli.verify_progress import shown, verify_progress

            with verify_progress(shown(progress)) as on_progress:
                result = verify_store(store, keys, heads, on_progress)
        report(result, fmt, repr(store))
    except StraitsError as exc:
        fail(exc)


def _read_export(path: Path) -> list[Entry]:
    from straits.loading import parse_json, read_text
    from straits.store.ledger import Entry

    out = []
    label = "<stdin>" if str(path) == "-" else str(path)
    # capped either way: /dev/zero is an error, not a hang
    text = read_stdin_text("a ledger export") if str(path) == "-" else read_text(path)
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            # strict: a key given twice (`{"tenant": "evil", ..., "tenant": "acme"}`) verified
            # as its last value, what a reader that takes the first would not see
            doc = parse_json(line, source=label)
            if not isinstance(doc, dict):
                raise TypeError("not a JSON object")
            if "hash" not in doc and "receipt" in doc:
                # what a tenant sees (through --server): its own entries, numbered 1, 2, 3,
                # without the log's hashes; reporting them as "altered" would be a false alarm
                raise InputError(
                    "a tenant's view of the ledger, not a log export: it has no hashes to verify",
                    source=label,
                    path=f"line {i}",
                    expected="an operator's export (`straits ledger export` on the database "
                    "or with an admin token); a tenant verifies its entries' receipts: "
                    "`straits ledger receipt N -o r.json`, then `straits ledger "
                    "verify-receipt r.json --pubkey KEY.pub`",
                )
            out.append(Entry.from_json(doc))
        except InputError as exc:
            if exc.path is not None:
                raise
            raise InputError(
                f"not a ledger entry: {exc.detail}", source=label, path=f"line {i}"
            ) from None
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise InputError(f"not a ledger entry: {exc}", source=label, path=f"line {i}") from None
    return out


@app.command("show")
def show(
    seq: int = typer.Argument(
        None, click_type=whole(1, 2**53), help="One entry in full; default: a table of entries."
    ),
    db: str = DbOption,
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant's entries."),
    since: int = typer.Option(1, "--since", click_type=whole(1, 2**53), help="First entry number."),
    limit: int = typer.Option(
        50, "--limit", click_type=whole(1, 100_000), help="At most this many entries."
    ),
    json_out: bool = JsonOption,
    output: str = OutputOption,
) -> None:
    """Show ledger entries: who recorded what, when, under which rules, and the result."""
    from straits.store.ledger import Entry, check_who

    bad: set[int] = set()  # entries shown that the log does not prove, and the first problem
    problem: LedgerError | None = None
    try:
        fmt = output_format(output, json_out)
        check_who(tenant, None)  # --tenant '' or 'a\tb': an empty table, as of a tenant
        if seq is not None:  # `ledger show 1 --tenant x` showed entry 1, another tenant's
            refuse_unread(
                ("tenant", "since", "limit"), when="with SEQ", expected="SEQ or the filters"
            )
        if state.server_url:
            from straits.cli.remote import client

            c = client()
            if seq is not None:
                emit(c.ledger_entry(seq), "yaml" if fmt == "yaml" else "json")
                return
            items = [dict(d) for d in c.ledger_entries(since=since, limit=limit, tenant=tenant)]
            if any("hash" not in d for d in items):
                # a tenant's view: its own numbers, no global ones, no hashes (receipts prove
                # its entries): shown as the server gave them, never as zeros and blanks
                show_tenant_view(items, fmt, since)
                return
            rows = [Entry.from_json(d) for d in items]
            listed: list[Entry | int] = list(rows)  # an admin's rows as stored: verify checks
        else:
            from straits.store import ledger

            store = open_store(db, existing=True)
            if seq is not None:
                e = entry_or_removed(store, seq)
                bad, problem = unproven(store, [e])
                emit(shown_json(e, bad), "yaml" if fmt == "yaml" else "json")
                _fail_unproven(problem)
                return
            rows = list(ledger.entries(store, tenant=tenant, since=since, limit=limit))
            bad, problem = unproven(store, rows)
            listed, gone = removed_rows(store, rows, since=since, limit=limit, tenant=tenant)
            problem = first_of(problem, gone)
    except StraitsError as exc:
        fail(exc)
        return
    if fmt != "table":
        emit([shown_json(e, bad) for e in listed], fmt)
        _fail_unproven(problem)
        return
    from rich.markup import escape
    from rich.table import Table

    def shown(text: str) -> str:
        """A name as text: Rich markup escaped, control characters (entries recorded before
        names were checked) shown as escapes, never sent to the terminal."""
        return escape("".join(c if c.isprintable() else ascii(c)[1:-1] for c in text))

    t = Table(title=f"Ledger ({len(rows)} entries from {since})", title_justify="left")
    for col in ("seq", "tenant #", "recorded (UTC)", "tenant", "actor", "kind", "result", "hash"):
        t.add_column(col, justify="right" if col in ("seq", "tenant #") else "left")
    for e in listed:
        if isinstance(e, int):  # the log holds it; its row was deleted
            t.add_row(str(e), "", "", "", "", "", "[red]REMOVED from the database[/red]", "")
            continue
        t.add_row(
            str(e.seq),
            str(e.tenant_seq),
            e.recorded_at[:19],
            shown(e.tenant),
            shown(e.actor),
            e.kind,
            "[red]ALTERED: not what the log proves[/red]"
            if e.seq in bad or readable_body(e) is None
            else shown(summary(e)),
            e.hash[:12],
        )
    console.print(t)
    _fail_unproven(problem)


def _fail_unproven(problem: StraitsError | None) -> None:
    """Exit 1 naming the first entry shown that the log does not prove."""
    if problem is not None:
        fail(LedgerError(f"{problem} (`straits ledger verify` says what else changed)"))


def _refuse_compressed(output: str | None) -> None:
    """``-o ledger.jsonl.gz`` wrote plain JSON lines under a name that says gzip (exit 0)."""
    from straits.archive import other_archive
    from straits.fileio import is_dir

    suffix = other_archive(output or "")
    if suffix is not None and output != "-" and not is_dir(output or ""):
        raise InputError(
            f"{output}: ledger export writes JSON lines, not {suffix}",
            path="-o",
            expected="FILE.jsonl, a directory, or - (to compress: -o - | gzip > FILE.jsonl.gz)",
        )


@app.command("export")
def export(
    db: str = DbOption,
    output: str = typer.Option(
        None,
        "-o",
        "--output",
        help="File to write, or a directory "
        "(ledger.jsonl inside it); '-' or none: stdout. Only a regular "
        "file is ever replaced.",
    ),
    tenant: str = typer.Option(
        None,
        "--tenant",
        help="Only this tenant's entries (such an "
        "export cannot be verified as a log on its own: give the "
        "tenant its receipts instead).",
    ),
) -> None:
    """Export the ledger as JSON lines, one entry per line with every stored field, so that
    `straits ledger verify --file` can check the chain and the Merkle tree anywhere (with
    --server, the entries the token may read)."""
    from straits.fileio import output_path, write_output
    from straits.store.ledger import Entry, check_who

    try:
        check_who(tenant, None)  # a name no entry can have: an empty export, as of a tenant
        output_path(output, default_name="ledger.jsonl")  # refuse a bad target before reading
        _refuse_compressed(output)
        if state.server_url:
            from straits.cli.remote import client

            docs = list(client().ledger_entries(tenant=tenant))  # pages, read once
            if any("hash" not in d for d in docs):
                # a tenant's view: written as the server gave it (the entries' contents, the
                # tenant's numbers, links to receipts), not as a log that verifies on its own
                lines = [json.dumps(dict(d), ensure_ascii=False, sort_keys=True) for d in docs]
                written = write_output(
                    output, "".join(line + "\n" for line in lines), default_name="ledger.jsonl"
                )
                if written is not None:
                    note(
                        f"wrote {len(lines):,} entries to {written} (a tenant's view: verify "
                        "their receipts, `straits ledger receipt N`, not the file)"
                    )
                return
            rows = [Entry.from_json(dict(d)) for d in docs]
        else:
            from straits.store import ledger

            rows = list(ledger.entries(open_store(db, existing=True), tenant=tenant))
        lines = [json.dumps(e.to_json(), ensure_ascii=False, sort_keys=True) for e in rows]
        written = write_output(
            output, "".join(line + "\n" for line in lines), default_name="ledger.jsonl"
        )
    except StraitsError as exc:
        fail(exc)
        return
    if written is not None:
        note(f"wrote {len(lines):,} entries to {written}")


from straits.cli import ledger_proof_cmd  # noqa: E402  (registers keygen, checkpoint, ...)

ledger_proof_cmd.register(app)
