"""``straits ledger keygen | checkpoint | receipt | verify-receipt | witness``."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import typer

from straits.cli.common import (
    DbOption,
    JsonOption,
    console,
    err_console,
    esc,
    fail,
    nonempty_path,
    open_store,
    print_json,
    read_stdin_text,
    state,
    whole,
)
from straits.cli.ledger_fetch import fetch_checkpoint, http_get, read_text
from straits.errors import InputError, LedgerError, StraitsError
from straits.fileio import FULL, full_error, output_path, write_output
from straits.limits import max_input_bytes

EXIT_BROKEN = 1


def register(app: typer.Typer) -> None:
    from straits.cli.ledger_cmd import KeyOption, PubkeyOption, keys_from

    @app.command("keygen")
    def keygen(
        origin: str = typer.Option(
            None,
            "--origin",
            help="The log's name, in its checkpoints "
            "and its key (default: HOSTNAME/straits-ledger).",
        ),
        output: Path = typer.Option(
            Path("straits-ledger.key"),
            "-o",
            "--output",
            click_type=nonempty_path(file=True),
            help="The signing key file to write (mode 0600); the public key goes to FILE.pub.",
        ),
        force: bool = typer.Option(False, "--force", help="Replace an existing key."),
        json_out: bool = JsonOption,
    ) -> None:
        """Make the ledger's Ed25519 signing key (a C2SP signed-note key). Keep FILE away from
        the database; give FILE.pub (or the printed key) to auditors, tenants and witnesses."""
        from straits.store.keys import write_keys
        from straits.store.note import NoteError, Signer

        try:
            name = origin or f"{socket.gethostname() or 'localhost'}/straits-ledger"
            try:
                signer = Signer.generate(name)
            except NoteError as exc:
                raise InputError(str(exc), path="--origin") from None
            pub = write_keys(output, signer, force=force)
        except StraitsError as exc:
            fail(exc)
            return
        except OSError as exc:
            why = f"cannot write: {exc}"  # a full disk is exit 1 (fileio.FULL), not bad input
            fail(full_error(output, exc) if exc.errno in FULL else InputError(why, path="-o"))
            return
        vkey = signer.verifier.vkey
        if json_out:
            print_json(
                {"origin": name, "key_file": str(output), "pubkey_file": str(pub), "pubkey": vkey}
            )
            return
        console.print(f"signing key: {output} (keep it secret, away from the database)")
        console.print(f"public key:  {pub}")
        console.print(vkey, soft_wrap=True, markup=False)

    @app.command("checkpoint")
    def checkpoint(
        db: str = DbOption,
        key: Path = KeyOption,
        pubkey: list[str] = PubkeyOption,
        output: Path = typer.Option(
            None,
            "-o",
            "--output",
            click_type=nonempty_path(file=True),
            help="Write the checkpoint here (e.g. where it is published) instead of stdout.",
        ),
        since: int = typer.Option(
            None,
            "--since",
            click_type=whole(0),
            help="Also print a consistency proof from this size (JSON).",
        ),
        json_out: bool = JsonOption,
    ) -> None:
        """Sign the log's current head (origin, size, Merkle root) as a C2SP checkpoint and
        print it; without a signing key, print the latest one the log issued."""
        from straits.store import checkpoints

        if state.server_url:
            _remote_checkpoint(output, since, json_out)
            return
        try:
            keys = keys_from(key, pubkey)
            store = open_store(db, existing=True)
            # the output and --since before signing: refused after it, a checkpoint had been
            # stored and the signer's record moved on (exit 2 means nothing was done). After
            # the key and the store are opened: they hold their files from -o (held files)
            output_path(output)
            if keys.signer is not None and since is not None:
                with store.session() as s:
                    head = checkpoints.tree_head_size(s)
                if since > head:
                    raise InputError(f"{since} is beyond the log's {head} entries", path="--since")
            if keys.signer is not None:
                cp = checkpoints.issue(store, keys.signer, keys.verifiers, keys.record)
            else:
                found = checkpoints.latest(store, keys)
                if found is None:
                    raise InputError(
                        "the log has issued no checkpoint and no signing key is configured",
                        path="--key",
                        expected="--key FILE or STRAITS_LEDGER_KEY (`straits "
                        "ledger keygen` makes one)",
                    )
                cp = found
            doc: dict[str, Any] = {
                "checkpoint": cp.note,
                "origin": cp.checkpoint.origin,
                "size": cp.checkpoint.size,
                "root_hash": cp.checkpoint.root_hex,
                "consistency": None,
            }
            if since is not None:
                size = cp.checkpoint.size
                if since > size:
                    raise InputError(
                        f"{since} is beyond the checkpoint's {size} entries", path="--since"
                    )
                with store.session() as s:
                    proof = checkpoints.consistency_proof(s, since, size)
                import base64

                doc["consistency"] = {
                    "from": since,
                    "to": size,
                    "proof": [base64.b64encode(h).decode() for h in proof],
                }
        except StraitsError as exc:
            fail(exc)
            return
        text = (json.dumps(doc, indent=2) + "\n") if (json_out or since is not None) else cp.note
        try:
            written = write_output(output, text)
        except StraitsError as exc:
            fail(exc)
            return
        if written is not None:
            err_console.print(f"wrote checkpoint {cp.checkpoint.size} to {esc(written)}")

    @app.command("receipt")
    def receipt(
        seq: int = typer.Argument(
            ...,
            click_type=whole(
                1, 2**53
            ),  # as ledger show and the API: more overflowed SQLite's INTEGER (traceback)
            help="The entry (its global number, as `ledger "
            "show` lists it; with --server, as the server numbers the "
            "token's entries).",
        ),
        db: str = DbOption,
        key: Path = KeyOption,
        pubkey: list[str] = PubkeyOption,
        output: Path = typer.Option(
            None,
            "-o",
            "--output",
            click_type=nonempty_path(file=True),
            help="File to write (default: stdout).",
        ),
    ) -> None:
        """A receipt for one entry: the entry, its inclusion proof and a signed checkpoint,
        which its tenant verifies offline with `straits ledger verify-receipt`."""
        from straits.store.receipts import make_receipt

        try:
            if state.server_url:  # the server's receipt of the token's entry SEQ
                from straits.cli.remote import client

                doc = client().ledger_receipt(seq)
            else:
                doc = make_receipt(open_store(db, existing=True), seq, keys_from(key, pubkey))
        except LedgerError as exc:
            err_console.print(f"[bold red]no receipt[/bold red]: {esc(exc)}", soft_wrap=True)
            raise typer.Exit(EXIT_BROKEN) from None
        except StraitsError as exc:
            fail(exc)
            return
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        try:
            written = write_output(output, text)
        except StraitsError as exc:
            fail(exc)
            return
        if written is not None:
            err_console.print(f"wrote the receipt of entry {seq} to {esc(written)}")

    @app.command("verify-receipt")
    def verify_receipt_cmd(
        file: Path = typer.Argument(..., help="The receipt (JSON), or - for stdin."),
        pubkey: list[str] = PubkeyOption,
        json_out: bool = JsonOption,
    ) -> None:
        """Check a receipt offline, with nothing but the log's public key: the checkpoint's
        signature and the entry's inclusion proof. Exit 0 when it proves the entry is in the
        signed log, 1 when it does not, 2 on bad input."""
        from straits.store.receipts import verify_receipt

        try:
            keys = keys_from(None, pubkey)
            if not keys.checks_signatures:
                raise InputError(
                    "a receipt is checked against the log's public key",
                    path="--pubkey",
                    expected="--pubkey FILE|KEY or STRAITS_LEDGER_PUBKEY",
                )
            # a receipt holds its entry: the input cap, as on stdin (1 MiB refused the receipt
            # of a 1,000-request check the API records)
            text = (
                read_stdin_text("a receipt")
                if str(file) == "-"
                else read_text(file, "RECEIPT", max_input_bytes())
            )
            from straits.loading import parse_json

            # strict JSON (each key once: a second `tenant` or `tree_size` verified as the
            # last, what a reader that takes the first would not see); a BOM: Notepad
            doc = parse_json(text.removeprefix("\ufeff"), source=str(file))
            try:
                check = verify_receipt(doc, keys.trusted)
            except LedgerError as exc:
                if json_out:
                    print_json({"ok": False, "seq": exc.seq, "problem": str(exc)})
                else:
                    console.print(
                        f"[bold red]receipt does not verify[/bold red]: {esc(exc)}", soft_wrap=True
                    )
                raise typer.Exit(EXIT_BROKEN) from None
            except InputError as exc:
                # a field of the receipt: named with the file and its line, as every other
                # command names them (it was "error: entry.seq: ..."; a hostile-input review)
                from straits.loading import located

                raise located(exc, text, "<stdin>" if str(file) == "-" else str(file)) from None
        except StraitsError as exc:
            fail(exc)
            return
        if json_out:
            print_json(check.to_json())
            return
        j = check.to_json()
        console.print(
            f"[bold green]receipt verifies[/bold green]: entry {j['seq']} ("
            f"{esc(j['kind'])} of tenant {esc(j['tenant'])}, its entry {j['tenant_seq']}, "
            f"recorded {esc(j['recorded_at'][:19])}) is in log {esc(j['log'])} of "
            f"{j['tree_size']:,} entries, signed by {esc(j['key'])}",
            soft_wrap=True,
        )

    @app.command("witness")
    def witness(
        checkpoint: list[str] = typer.Option(
            ...,
            "--checkpoint",
            help="A checkpoint to "
            "witness: a file, - (stdin), a URL (a published "
            "file, or a server's /v1/ledger/checkpoint), or a "
            "receipt (repeatable).",
        ),
        pubkey: list[str] = PubkeyOption,
        state: Path = typer.Option(
            None,
            "--state",
            envvar="STRAITS_WITNESS_STATE",
            click_type=nonempty_path(file=True),
            help="The witness's own record of checkpoints seen (default ./straits-witness.json).",
        ),
        db: str = typer.Option(
            None,
            "--db",
            help="Ask the log's database for consistency proofs (an operator's own witness).",
        ),
        log_url: str = typer.Option(
            None,
            "--log",
            help="Ask a Straits server for consistency "
            "proofs (base URL, e.g. https://straits.example).",
        ),
        token: str = typer.Option(
            None,
            "--token",
            envvar="STRAITS_TOKEN",
            help="Bearer token for URLs of a Straits server.",
        ),
        json_out: bool = JsonOption,
    ) -> None:
        """Record checkpoints of the log as a second party, and catch a split view: two
        different trees signed for one size, or a checkpoint the log cannot prove consistent
        with what this witness saw before. Exit 0 when every checkpoint is accepted, 1 on a
        split view or one that cannot be proven, 2 on bad input."""
        from straits.store.witness import Witness, parse_offer, went_back
        from straits.store.witness_state import locked

        try:
            keys = keys_from(None, pubkey)
            if not keys.checks_signatures:
                raise InputError(
                    "a witness checks checkpoints against the log's public key",
                    path="--pubkey",
                    expected="--pubkey FILE|KEY or STRAITS_LEDGER_PUBKEY",
                )
            if sum(src.strip() == "-" for src in checkpoint) > 1:  # the second read is empty
                raise InputError(
                    "standard input is read once, but it was given more than once",
                    path="--checkpoint",
                    expected="at most one --checkpoint - (write the others to files)",
                )
            path = state or Path("straits-witness.json")
            with locked(path):  # runs on one state take turns (a split view must not slip)
                w = Witness(path)
                proofs = _proof_source(db, log_url, token)
                outcomes = []
                for src in checkpoint:
                    got = fetch_checkpoint(src, token, w.latest_size())
                    outcome = w.offer(parse_offer(got.text, src), keys.trusted, proofs)
                    outcomes.append(went_back(outcome, got.refused_since))
                w.save()
        except StraitsError as exc:
            fail(exc)
            return
        if json_out:
            print_json(
                {"ok": all(o.ok for o in outcomes), "checkpoints": [o.to_json() for o in outcomes]}
            )
        else:
            for o in outcomes:
                colour = "green" if o.ok else "bold red"
                console.print(
                    f"[{colour}]{o.status}[/{colour}] {esc(o.source)}: {esc(o.message)}",
                    soft_wrap=True,
                )
                for ev in o.evidence:
                    console.print(ev, markup=False, soft_wrap=True)
        if not all(o.ok for o in outcomes):
            raise typer.Exit(EXIT_BROKEN)


def _remote_checkpoint(output: Path | None, since: int | None, json_out: bool) -> None:
    """`ledger checkpoint --server`: the latest checkpoint the server's log issued (its key
    stays on the server), with its consistency proof from --since."""
    from straits.cli.remote import client

    try:
        doc = client().ledger_checkpoint(since=since)
        note_text = str(doc.get("checkpoint") or "")
        text = (json.dumps(doc, indent=2) + "\n") if (json_out or since is not None) else note_text
        written = write_output(output, text)
    except StraitsError as exc:
        fail(exc)
        return
    if written is not None:
        err_console.print(f"wrote checkpoint {esc(doc.get('size'))} to {esc(written)}")


def _proof_source(db: str | None, log_url: str | None, token: str | None) -> Any:
    if db:
        from straits.store import tree

        store = open_store(db, existing=True)

        def from_db(first: int, second: int) -> list[bytes]:
            with store.session() as s:
                return tree.proofs(s, consistencies=[(first, second)]).consistency(first, second)

        return from_db
    if log_url:

        def from_server(first: int, second: int) -> list[bytes]:
            import urllib.parse

            q = urllib.parse.urlencode({"first": first, "second": second})
            try:
                url = f"{log_url.rstrip('/')}/v1/ledger/consistency?{q}"
                doc = json.loads(http_get(url, token))
            except RecursionError:  # nested deeper than the parser goes: no proof either
                raise ValueError("the server's answer is no proof (JSON nested too deep)") from None
            if not isinstance(doc, dict) or not isinstance(doc.get("proof"), list):
                raise ValueError("the server's answer holds no proof")
            from straits.store.witness import proof_hash

            return [proof_hash(h, f"the server's proof[{i}]") for i, h in enumerate(doc["proof"])]

        return from_server
    return None
