"""``straits check``: is one action lawful? (one request, or a JSON list of them, on stdin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from straits.cli.common import JsonOption, RulesOption, console, fail, print_json, read_input
from straits.cli.explain import decision_view
from straits.errors import InputError, RequestError
from straits.loading import validate_as
from straits.model.request import CheckRequest
from straits.rules import ruleset


def parse_requests(data: Any, label: str) -> tuple[list[CheckRequest], bool]:
    """(requests, was_list) from a parsed document: one object or a list of them."""
    if isinstance(data, dict):
        return [validate_as(CheckRequest, data, source=label, error=RequestError)], False
    if isinstance(data, list) and data:
        out = []
        for i, item in enumerate(data):
            try:
                if not isinstance(item, dict):
                    raise RequestError("each request must be a JSON object", path=f"[{i}]")
                out.append(validate_as(CheckRequest, item, source=label, error=RequestError))
            except InputError as exc:
                path = f"[{i}]" + ("." + exc.path if exc.path and exc.path != f"[{i}]" else "")
                raise RequestError(exc.detail, source=label, path=path,
                                   expected=exc.expected) from None
        return out, True
    raise RequestError("expected a JSON object (one request) or a non-empty list of them",
                       source=label)


def check(
    request_file: Path = typer.Argument(None, metavar="[REQUEST]",
                                        help="JSON file with the request(s); default: stdin."),
    json_out: bool = JsonOption,
    rules: list[Path] = RulesOption,
) -> None:
    """Decide whether an action is lawful: [bold]allow[/bold], [bold]conditional[/bold] (lawful
    with the authorizations listed in `requires`) or [bold]deny[/bold], with every rule cited.

    Reads one request (or a JSON list of them) such as
    {"date": "2025-06-01", "regime": "enacted", "action": "finetune",
    "tenant": {"hq": "CN", "authorizations": []}, "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM", "data": {"origin": "CN", "classes": ["personal"], "subjects": 3000000}}.
    Actions: train, finetune, serve, procure, transfer-data, transfer-weights.
    """
    try:
        data, label = read_input(request_file, what="a check request")
        requests, was_list = parse_requests(data, label)
        rs = ruleset(tuple(rules or ()))
        decisions = rs.check_many(requests)
    except InputError as exc:
        fail(exc)
        return
    if json_out:
        answers = [d.to_json() for d in decisions]
        print_json(answers if was_list else answers[0])
        return
    for i, (req, d) in enumerate(zip(requests, decisions, strict=True)):
        title = (f"{req.action} {req.chip or ''} in {req.site.country} for a tenant "
                 f"headquartered in {req.tenant.hq}, {req.date} ({req.regime})")
        if was_list:
            title = f"[{i}] {title}"
        console.print(decision_view(d, title))
        console.print()
