"""``straits tokens``: API tokens for ``straits serve`` (only their hashes are stored)."""

from __future__ import annotations

import typer
from rich.table import Table

from straits.cli.common import DbOption, JsonOption, console, fail, print_json
from straits.errors import StraitsError
from straits.store import Store
from straits.store.tokens import ROLES, create_token, list_tokens, revoke_token

app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


@app.command("create")
def create(
    tenant: str = typer.Option(..., "--tenant", help="The tenant the token acts for."),
    role: str = typer.Option(..., "--role", help="viewer (read, check, estimate) | planner "
                             "(also submit plans, record) | admin (every tenant)."),
    label: str = typer.Option("", "--label", help="A note to recognise the token by."),
    db: str = DbOption,
    json_out: bool = JsonOption,
) -> None:
    """Create a token and print it once: store it now, it cannot be shown again."""
    try:
        token, row = create_token(Store(db), tenant, role, label)
    except StraitsError as exc:
        fail(exc)
        return
    if json_out:
        print_json({"token": token, "id": row.id, "tenant": row.tenant, "role": row.role})
        return
    console.print(f"token [bold]{row.id}[/bold] for tenant {row.tenant!r}, role {row.role}:")
    console.print(token, soft_wrap=True)
    console.print("[dim]Send it as 'Authorization: Bearer <token>'. It is not stored and "
                  "cannot be shown again.[/dim]")


@app.command("list")
def list_(db: str = DbOption, json_out: bool = JsonOption) -> None:
    """List tokens (ids, tenants, roles; never secrets)."""
    try:
        rows = list_tokens(Store(db))
    except StraitsError as exc:
        fail(exc)
        return
    data = [{"id": r.id, "tenant": r.tenant, "role": r.role, "label": r.label,
             "created_at": r.created_at.isoformat(),
             "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None} for r in rows]
    if json_out:
        print_json(data)
        return
    t = Table(title=f"{len(rows)} tokens (roles: {', '.join(ROLES)})", title_justify="left")
    for col in ("id", "tenant", "role", "label", "created", "revoked"):
        t.add_column(col)
    for d in data:
        t.add_row(d["id"], d["tenant"], d["role"], d["label"], str(d["created_at"])[:19],
                  str(d["revoked_at"] or "")[:19])
    console.print(t)


@app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="The token's id (not its secret)."),
           db: str = DbOption) -> None:
    """Revoke a token: requests with it are refused from now on."""
    try:
        row = revoke_token(Store(db), token_id)
    except StraitsError as exc:
        fail(exc)
        return
    console.print(f"token {row.id} of tenant {row.tenant!r} revoked")
