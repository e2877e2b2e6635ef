"""How ``straits ledger verify`` reports: a table for people (what verified, or where the log
breaks and how much of it verified before), JSON or YAML for machines; exit status 1 when it
does not verify."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from straits.cli.common import Format, console, emit, esc

if TYPE_CHECKING:
    from straits.store.ledger import Verification
    from straits.store.tenant_verify import TenantVerification

EXIT_BROKEN = 1


def report(result: Verification, fmt: Format, source: str) -> None:
    if fmt != "table":
        emit(result.to_json(), fmt)
    elif result.ok:
        head = (
            f"head {result.head_seq}:{result.head_hash}"
            if result.head_hash
            else "your tenant's entries; the log's head is shown to admins only"
        )
        console.print(
            f"[bold green]ledger verifies[/bold green]: {result.entries:,} entries "
            f"in {esc(source)}; {esc(head)}"
        )
        if result.root_hash:
            console.print(f"  Merkle root of {result.entries:,} entries: {result.root_hash}")
        cp = result.checkpoint
        if cp:
            how = (
                "signature checked"
                if result.signatures == "checked"
                else "[yellow]signature NOT checked[/yellow]"
            )
            console.print(
                f"  latest checkpoint: {cp['size']:,} entries, {esc(cp['origin'])} "
                f"({how}), consistent with the log"
            )
        for h in result.heads:
            console.print(f"  head {esc(h['head'][:40])}: proven by {esc(h['proven_by'])}")
        for note in result.notes:
            console.print(f"  [yellow]note:[/yellow] {esc(note)}")
    else:
        console.print(
            f"[bold red]ledger broken{broken_where(result)}[/bold red]: "
            f"{esc(result.problem)} ({verified_part(result)})",
            soft_wrap=True,
        )
    if not result.ok:
        raise typer.Exit(EXIT_BROKEN)


def report_tenant(result: TenantVerification, tenant: str, fmt: Format) -> None:
    if fmt != "table":
        emit({"tenant": tenant, **result.to_json()}, fmt)
    elif result.ok:
        console.print(
            f"[bold green]tenant {esc(repr(tenant))} verifies[/bold green]: "
            f"{result.entries:,} entries, "
            f"each proven against the log (signatures {result.signatures})"
        )
    else:
        console.print(
            f"[bold red]tenant {esc(repr(tenant))} broken"
            f"{f' at its entry {result.first_bad}' if result.first_bad else ''}[/bold red]"
            f"{code_part(result.code)}: "
            f"{esc(result.problem)} ({result.checked:,} of {result.entries:,} verified before it)",
            soft_wrap=True,
        )
    if not result.ok:
        raise typer.Exit(EXIT_BROKEN)


def broken_where(result: Verification) -> str:
    where = f" at entry {result.first_bad}" if result.first_bad else ""
    return where + code_part(result.code)


def code_part(code: str | None) -> str:
    """`` [code]`` (Rich markup, escaped), or nothing."""
    return rf" \[{code}]" if code else ""


def verified_part(result: Verification) -> str:
    """What held before the problem: the chain walk stops at the first bad entry, but a bad
    tree node, checkpoint, head or stored plan/decision row is found after the whole chain of
    ``entries`` verified, at an entry inside it."""
    from straits.store.integrity import QUICK_NOTE

    if QUICK_NOTE in result.notes:  # nothing was walked: "the chain verifies" was untrue
        return "a quick check: the entries were not rescanned"
    if result.first_bad and result.first_bad > result.entries:
        return f"{result.entries:,} entries verified before it"
    return f"the hash chain of its {result.entries:,} entries verifies"
