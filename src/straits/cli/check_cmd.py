"""``straits check``: is one action lawful? (one request, or a JSON list of them, on stdin)."""

from __future__ import annotations

from pathlib import Path

import typer

from straits.api import parse_check_document
from straits.cli.common import (
    ActorOption,
    DbOption,
    JsonOption,
    RulesOption,
    actor_name,
    console,
    err_console,
    fail,
    print_json,
    read_input,
)
from straits.cli.explain import decision_view
from straits.errors import StraitsError
from straits.rules import ruleset


def check(
    request_file: Path = typer.Argument(None, metavar="[REQUEST]",
                                        help="JSON file with the request(s); default: stdin."),
    json_out: bool = JsonOption,
    rules: list[Path] = RulesOption,
    record: bool = typer.Option(False, "--record", help="Append the decision to the audit "
                                "ledger (see `straits ledger`)."),
    tenant: str = typer.Option("default", "--tenant", help="With --record: the tenant the "
                               "entry belongs to."),
    actor: str = ActorOption,
    db: str = DbOption,
) -> None:
    """Decide whether an action is lawful: **allow**, **conditional** (lawful
    with the authorizations listed in `requires`) or **deny**, with every rule cited.

    Reads one request (or a JSON list of them) such as
    {"date": "2025-06-01", "regime": "enacted", "action": "finetune",
    "tenant": {"hq": "CN", "authorizations": []}, "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM", "data": {"origin": "CN", "classes": ["personal"], "subjects": 3000000}}.
    Actions: train, finetune, serve, procure, transfer-data, transfer-weights.
    """
    try:
        data, label = read_input(request_file, what="a check request")
        requests, was_list = parse_check_document(data, label)
        rs = ruleset(tuple(rules or ()))
        decisions = rs.check_many(requests)
        answers = [d.to_json() for d in decisions]
        answer = answers if was_list else answers[0]
        entry = None
        if record:
            from straits.store import Store
            from straits.store.records import record_check

            entry = record_check(Store(db), rs, requests, answer, tenant=tenant,
                                 actor=actor_name(actor))
    except StraitsError as exc:
        fail(exc)
        return
    if entry is not None:
        err_console.print(f"recorded as ledger entry {entry.seq} ({entry.hash[:12]})")
    if json_out:
        print_json(answer)
        return
    for i, (req, d) in enumerate(zip(requests, decisions, strict=True)):
        title = (f"{req.action} {req.chip or ''} in {req.site.country} for a tenant "
                 f"headquartered in {req.tenant.hq}, {req.date} ({req.regime})")
        if was_list:
            title = f"[{i}] {title}"
        console.print(decision_view(d, title))
        console.print()
