"""Fields of a check request that no loaded rule reads for its action (fix90).

``quantity``, ``prior_tpp`` and ``ships_from`` describe an order of chips: the shipped rules
read them for ``procure`` only. A check of another action (``train``, ``serve``...) that sets
them was answered as if they were not there, without a word. Refusing them broke rule-pack
cases and callers that send one shape of request for every action, so they are accepted and the
answer lists them as ``ignored``: the fields set that no loaded policy which may apply to the
action reads (a user pack whose policy reads ``context.ships_from`` for every action makes it
read, and it is not listed).
"""

from __future__ import annotations

from typing import Any

from straits.model.request import CheckRequest
from straits.rules.pack_loader import Rule
from straits.rules.partition import roots

#: request fields of an order of chips -> the context attributes each becomes
ORDER_FIELDS: dict[str, frozenset[str]] = {
    "quantity": frozenset({"quantity", "quantity_tpp"}),
    "prior_tpp": frozenset({"prior_tpp"}),
    "ships_from": frozenset({"ships_from"}),
}


def may_apply(rule: Rule, action: str) -> bool:
    """Whether ``rule``'s action scope may take ``action``: every scope but ``action ==``
    another action is read as taking it (an action group, a list: conservative)."""
    scope: Any = rule.est.get("action")
    if isinstance(scope, dict) and scope.get("op") == "==":
        entity = scope.get("entity")
        return not isinstance(entity, dict) or entity.get("id") == action
    return True


def unread_fields(rules: list[Rule], req: CheckRequest) -> list[str]:
    """The order fields ``req`` sets that no rule of ``rules`` which may apply to its action
    reads, in the request's field order (empty for ``procure``)."""
    given = [  # a null is no value (atk93: ``ships_from: null`` was listed)
        f for f in ORDER_FIELDS if f in req.model_fields_set and getattr(req, f) is not None
    ]
    if req.action == "procure" or not given:
        return []
    read: set[str] = set()
    for rule in rules:
        if may_apply(rule, req.action):
            read |= roots(rule)
    return [f for f in given if not ORDER_FIELDS[f] & read]
