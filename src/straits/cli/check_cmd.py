"""``straits check``: is one action lawful? (one request, or a JSON list of them, on stdin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from straits.cli.common import (
    ActorOption,
    DbOption,
    JsonOption,
    OutputOption,
    QuietOption,
    RulesOption,
    actor_name,
    console,
    emit,
    fail_every,
    note,
    open_store,
    output_format,
    read_input_doc,
    refuse_unread,
    rule_dirs,
    set_quiet,
    state,
)
from straits.errors import RequestError, StraitsError


def check(
    request_file: Path = typer.Argument(
        None, metavar="[REQUEST]", help="JSON/YAML file with the request(s); default or `-`: stdin."
    ),
    json_out: bool = JsonOption,
    output: str = OutputOption,
    rules: list[Path] = RulesOption,
    record: bool = typer.Option(
        False, "--record", help="Append the decision to the audit ledger (see `straits ledger`)."
    ),
    tenant: str = typer.Option(
        "default", "--tenant", help="With --record: the tenant the entry belongs to."
    ),
    request_id: str = typer.Option(
        None,
        "--request-id",
        help="With --record: a key new for each new check (1-200 printable ASCII). The same "
        "check recorded again with it (a retry after a crash) answers the first record instead "
        "of appending a second; another check with it is refused (exit 2).",
    ),
    actor: str = ActorOption,
    db: str = DbOption,
    quiet: bool = QuietOption,
) -> None:
    """Decide whether an action is lawful: **allow**, **conditional** (lawful
    with the authorizations listed in `requires`) or **deny**, with every rule cited.

    Reads one request (or a JSON list of them) such as
    {"date": "2025-06-01", "regime": "enacted", "action": "finetune",
    "tenant": {"hq": "CN", "authorizations": []}, "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM", "data": {"origin": "CN", "classes": ["personal"], "subjects": 3000000}}
    (examples/request.json). Actions: train, finetune, serve, procure, transfer-data,
    transfer-weights.
    """
    set_quiet(quiet)
    try:
        fmt = output_format(output, json_out)
        if state.server_url:  # the server records under its token's tenant, with its rules
            refuse_unread(
                ("tenant", "actor", "rules", "db"), when="with --server", expected="no --server"
            )
        if not record:
            refuse_unread(
                ("tenant", "actor", "request_id"), when="without --record", expected="--record"
            )
        if request_id is not None:
            from straits.store.check_once import check_key

            check_key(request_id, "--request-id")
        data, label, text = read_input_doc(request_file, what="a check request")
        if state.server_url:
            from straits.cli.remote import client

            answer = client().check(data, record=record, idempotency_key=request_id)
            requests = None
        else:
            answer, requests = _check_here(
                data, label, rules, record, tenant, actor, db, text, request_id
            )
    except StraitsError as exc:
        fail_every(exc)  # every problem of a bad request, a line each (cli65)
        return
    if fmt != "table":
        emit(answer, fmt)
        return
    from straits.cli.explain import decision_view_json

    answers = answer if isinstance(answer, list) else [answer]
    queries = data if isinstance(data, list) else [data]
    for i, (req, d) in enumerate(zip(queries, answers, strict=True)):
        title = _title(req, requests[i] if requests else None)
        if isinstance(answer, list):
            title = f"[{i}] {title}"
        console.print(decision_view_json(d, title))
        console.print()


def _check_here(
    data: Any,
    label: str,
    rules: list[Path] | None,
    record: bool,
    tenant: str,
    actor: str | None,
    db: str | None,
    text: str | None = None,
    request_id: str | None = None,
) -> tuple[Any, list[Any]]:
    from straits.api import check_json, parse_check_document
    from straits.limits import MAX_RECORDED_CHECK_REQUESTS
    from straits.rules import ruleset

    if record and isinstance(data, list) and len(data) > MAX_RECORDED_CHECK_REQUESTS:
        raise RequestError(
            f"{len(data):,} requests to record as one ledger entry",
            source=label,
            path="--record",
            expected=f"at most {MAX_RECORDED_CHECK_REQUESTS:,} (one entry, its "
            "export and its receipt stay readable): split the list",
        )
    requests, was_list = parse_check_document(data, label, text)
    rs = ruleset(rule_dirs(rules))
    answer = check_json(rs, list(requests), was_list)
    if record:
        from straits.store.check_once import record_check_once

        store = open_store(db)
        done = record_check_once(
            store,
            rs,
            list(requests),
            answer,
            tenant=tenant,
            actor=actor_name(actor),
            key=request_id,
            path="--request-id",
        )
        entry, answer = done.entry, done.answer
        if done.replayed:
            note(
                f"recorded before as ledger entry {entry.seq} ({entry.hash[:12]}) in {store!r}, "
                f"with request id {request_id!r}: its decision, not recorded again"
            )
        else:
            note(f"recorded as ledger entry {entry.seq} ({entry.hash[:12]}) in {store!r}")
    return answer, list(requests)


def _title(raw: Any, req: Any) -> str:
    if req is not None:
        return (
            f"{req.action} {req.chip or ''} in {req.site.country} for a tenant "
            f"headquartered in {req.tenant.hq}, {req.date} ({req.regime})"
        )
    raw = raw if isinstance(raw, dict) else {}
    site, tenant = raw.get("site") or {}, raw.get("tenant") or {}
    return (
        f"{raw.get('action')} {raw.get('chip') or ''} in {site.get('country')} for a tenant "
        f"headquartered in {tenant.get('hq')}, {raw.get('date')} "
        f"({raw.get('regime', 'enacted')})"
    )
