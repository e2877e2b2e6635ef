"""An order's fields on a check of another action (fix90): ``quantity``, ``prior_tpp`` and
``ships_from`` on ``train``, ``serve``... are still accepted (refusing them broke rule-pack
cases and callers sending one shape for every action), but the answer lists them as
``ignored`` instead of dropping them without a word; an answer with nothing ignored is what it
was, byte for byte, so recorded entries and replays are unchanged."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from straits import api as straits_api
from straits.model.request import CheckRequest
from straits.rules import RuleSet
from straits.rules.unread import unread_fields
from straits.store import Store
from straits.store.ledger import Entry, get_entry
from test_api import Api, api  # noqa: F401 (the fixture)
from test_ledger_cli import straits
from test_rules_engine import DESIGN_REQUEST

ORDER = {"quantity": 100, "prior_tpp": 5, "ships_from": "US"}
PROCURE = {**DESIGN_REQUEST, "action": "procure", "data": None, "weights": None}
del PROCURE["data"], PROCURE["weights"]


def answer(rules: RuleSet, doc: Any) -> Any:
    reqs, was_list = straits_api.parse_check_document(doc, "test")
    return straits_api.check_json(rules, reqs, was_list)


@pytest.mark.parametrize("action", ["train", "finetune", "serve", "transfer-data"])
def test_order_fields_on_another_action_are_listed_as_ignored(rules: RuleSet, action: str) -> None:
    plain = {**DESIGN_REQUEST, "action": action}
    got = answer(rules, {**plain, **ORDER})
    assert got["ignored"] == ["quantity", "prior_tpp", "ships_from"]
    before = answer(rules, plain)
    assert "ignored" not in before  # nothing ignored: the answer is as it was
    assert {k: v for k, v in got.items() if k != "ignored"} == before  # and changed nothing


def test_only_the_fields_given_are_listed_in_field_order(rules: RuleSet) -> None:
    got = answer(rules, {**DESIGN_REQUEST, "ships_from": "SG", "quantity": 0})
    assert got["ignored"] == ["quantity", "ships_from"]


def test_a_procure_check_reads_them(rules: RuleSet) -> None:
    got = answer(rules, {**PROCURE, **ORDER})
    assert "ignored" not in got


def test_a_list_answers_each_request_for_itself(rules: RuleSet) -> None:
    got = answer(rules, [DESIGN_REQUEST, {**DESIGN_REQUEST, "quantity": 8}, {**PROCURE, **ORDER}])
    assert ["ignored" in a for a in got] == [False, True, False]
    assert got[1]["ignored"] == ["quantity"]


def test_a_pack_reading_a_field_for_every_action_makes_it_read(rules: RuleSet) -> None:
    """A user pack whose policy reads ``context.ships_from`` for any action: not ignored."""
    (sta,) = [r for r in rules.rules if r.id == "my-sta-2025-permit"]
    anywhere = dataclasses.replace(sta, est={**sta.est, "action": {"op": "All"}})
    req = CheckRequest.model_validate({**DESIGN_REQUEST, **ORDER})
    assert unread_fields(rules.rules, req) == ["quantity", "prior_tpp", "ships_from"]
    assert unread_fields([*rules.rules, anywhere], req) == ["quantity", "prior_tpp"]


def test_the_cli_says_so_in_json_and_in_the_table() -> None:
    doc = json.dumps({**DESIGN_REQUEST, **ORDER})
    p = straits("check", "--json", "-", stdin=doc)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["ignored"] == ["quantity", "prior_tpp", "ships_from"]
    table = straits("check", "-", stdin=doc)
    assert table.returncode == 0, table.stderr
    assert "Ignored: quantity, prior_tpp, ships_from" in " ".join(table.stdout.split())
    plain = straits("check", "-", stdin=json.dumps(DESIGN_REQUEST))
    assert "Ignored" not in plain.stdout


def test_the_api_answers_as_the_cli_and_records_it(api: Api) -> None:  # noqa: F811
    h = api.auth("alpha", "planner")
    body = [DESIGN_REQUEST, {**DESIGN_REQUEST, **ORDER}]
    r = api.client.post("/v1/check?record=true", json=body, headers=h)
    assert r.status_code == 200, r.text
    got = r.json()
    assert "ignored" not in got[0] and got[1]["ignored"] == ["quantity", "prior_tpp", "ships_from"]
    seq = int(r.headers["X-Straits-Ledger-Seq"])
    entries = api.client.get(f"/v1/ledger/entries/{seq}", headers=h)
    assert entries.status_code == 200, entries.text


def test_a_recorded_check_verifies_and_replays(tmp_path: Path, rules: RuleSet) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    doc = json.dumps([DESIGN_REQUEST, {**DESIGN_REQUEST, **ORDER}])
    p = straits("check", "--json", "--record", "--tenant", "alpha", "--db", db, "-", stdin=doc)
    assert p.returncode == 0, p.stderr
    entry: Entry | None = get_entry(Store(db), 1)
    assert entry is not None
    assert entry.content["result"] == json.loads(p.stdout)
    v = straits("ledger", "verify", "--db", db, "--json")
    assert v.returncode == 0, v.stdout + v.stderr
    r = straits("rules", "replay", "--since", "2025-01-01", "--db", db, "--json")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("extra", "want"),
    [
        ({"ships_from": None}, None),  # a null is no value given (atk93: listed as ignored)
        ({"ships_from": None, "quantity": 3}, ["quantity"]),
        ({"ships_from": "US"}, ["ships_from"]),
    ],
)
def test_a_null_is_not_listed_as_ignored(
    rules: RuleSet, extra: dict[str, Any], want: list[str] | None
) -> None:
    got = answer(rules, {**DESIGN_REQUEST, **extra})
    assert got.get("ignored") == want
