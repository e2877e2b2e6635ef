"""``straits tokens``: API tokens for ``straits serve`` (only their hashes are stored)."""

from __future__ import annotations

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
    state,
)
from straits.cli.output import write_stdout
from straits.errors import InputError, StraitsError

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


def _here(what: str) -> None:
    if state.server_url:
        raise InputError(
            f"`straits tokens {what}` manages the tokens of a database on this "
            "machine (the server's tokens are made where it runs)",
            path="--server",
            expected="no --server, and --db naming the server's database",
        )


@app.command("create")
def create(
    tenant: str = typer.Option(..., "--tenant", help="The tenant the token acts for."),
    role: str = typer.Option(
        ...,
        "--role",
        help="viewer (read, check, estimate) | planner "
        "(also submit plans, record) | admin (every tenant).",
    ),
    label: str = typer.Option("", "--label", help="A note to recognise the token by."),
    db: str = DbOption,
    json_out: bool = JsonOption,
    output: str = OutputOption,
) -> None:
    """Create a token and print it once, alone on stdout (`TOKEN=$(straits tokens create
    ...)`): store it now, it cannot be shown again. What it is for goes to stderr."""
    from straits.store.tokens import check_token, create_token

    try:
        fmt = output_format(output, json_out)
        _here("create")
        check_token(tenant, role, label)  # before the database is made (a new file)
        token, row = create_token(open_store(db), tenant, role, label)
    except StraitsError as exc:
        fail(exc)
        return
    try:
        if fmt != "table":
            emit({"token": token, "id": row.id, "tenant": row.tenant, "role": row.role}, fmt)
            return
        write_stdout(token + "\n")
    except BaseException:
        # the secret was never delivered (stdout closed or full, an interrupt): a token
        # nobody can present is revoked at once rather than left valid in the database
        _undelivered(db, row.id)
        raise
    note(
        f"[dim]token {row.id} for tenant {esc(repr(row.tenant))}, role {row.role}. Send it as "
        "'Authorization: Bearer <token>' (or STRAITS_TOKEN for --server). It is not stored "
        "and cannot be shown again.[/dim]"
    )


def _undelivered(db: str, token_id: str) -> None:
    from straits.store.tokens import revoke_token

    try:
        revoke_token(open_store(db), token_id)
    except StraitsError as exc:  # pragma: no cover - the store was just written
        note(f"[red]token {token_id} was not printed and could not be revoked: {esc(str(exc))}")
        return
    note(f"token {token_id} was not printed, so it was revoked: create another")


@app.command("list")
def list_(db: str = DbOption, json_out: bool = JsonOption, output: str = OutputOption) -> None:
    """List tokens (ids, tenants, roles; never secrets)."""
    from straits.store.tokens import ROLES, list_tokens

    try:
        fmt = output_format(output, json_out)
        _here("list")
        rows = list_tokens(open_store(db, existing=True))
    except StraitsError as exc:
        fail(exc)
        return
    data = [
        {
            "id": r.id,
            "tenant": r.tenant,
            "role": r.role,
            "label": r.label,
            "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in rows
    ]
    if fmt != "table":
        emit(data, fmt)
        return
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"{len(rows)} tokens (roles: {', '.join(ROLES)})", title_justify="left")
    for col in ("id", "tenant", "role", "label", "created", "revoked"):
        t.add_column(col, no_wrap=col == "id")
    for d in data:
        t.add_row(
            d["id"],
            escape(str(d["tenant"])),
            d["role"],
            escape(str(d["label"] or "")),
            str(d["created_at"])[:19],
            str(d["revoked_at"] or "")[:19],
        )
    console.print(t)


@app.command("revoke")
def revoke(
    token_id: str = typer.Argument(..., help="The token's id (not its secret)."), db: str = DbOption
) -> None:
    """Revoke a token: requests with it are refused from now on, and the plans it submitted
    that have not ended are cancelled (a running one at its worker's next heartbeat)."""
    from straits.store.tokens import revoke as revoke_it

    try:
        _here("revoke")
        row, stopped = revoke_it(open_store(db, existing=True), token_id)
    except StraitsError as exc:
        fail(exc)
        return
    console.print(f"token {row.id} of tenant {esc(repr(row.tenant))} revoked")
    if stopped:
        console.print(f"{stopped} plan(s) it submitted that had not ended are cancelled")
