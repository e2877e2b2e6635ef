"""A recorded check sent twice records one decision: ``POST /v1/check?record=true`` with an
``Idempotency-Key`` and ``straits check --record --request-id``. Before, a client that retried
after a crash or a lost answer (killed after the save, a timeout) appended the same decision to
the ledger a second time (hostile pass svc29)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from straits import api as straits_api
from straits.errors import KeyReusedError
from straits.rules import RuleSet
from straits.store import Store
from straits.store.check_once import record_check_once
from straits.store.ledger import count
from straits.store.tables import DecisionRow
from test_api import Api, api  # noqa: F401 (the fixture)
from test_ledger_cli import straits
from test_rules_engine import DESIGN_REQUEST

PROBLEM = "application/problem+json"
OTHER = {**DESIGN_REQUEST, "date": "2025-07-01"}


def _decisions(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(DecisionRow)) or 0)


def _post(on: Api, body: Any, key: str | None, tenant: str = "alpha", record: bool = True) -> Any:
    headers = on.auth(tenant, "planner")
    if key is not None:
        headers["Idempotency-Key"] = key
    url = "/v1/check?record=true" if record else "/v1/check"
    return on.client.post(url, json=body, headers=headers)


def test_a_retry_with_the_key_answers_the_first_record(api: Api) -> None:  # noqa: F811
    first = _post(api, DESIGN_REQUEST, "check-1")
    again = _post(api, DESIGN_REQUEST, "check-1")
    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.headers["x-straits-ledger-seq"] == first.headers["x-straits-ledger-seq"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.json() == first.json()
    assert (count(api.store), _decisions(api.store)) == (1, 1)
    # another tenant's same key is its own record; no key, a new record each time
    theirs = _post(api, DESIGN_REQUEST, "check-1", tenant="beta")
    assert theirs.status_code == 200 and "idempotent-replayed" not in theirs.headers
    for _ in range(2):
        assert _post(api, DESIGN_REQUEST, None).status_code == 200
    assert (count(api.store), _decisions(api.store)) == (4, 4)


@pytest.mark.parametrize(
    "body",
    [OTHER, [DESIGN_REQUEST], [DESIGN_REQUEST, DESIGN_REQUEST]],
    ids=["other", "list1", "list2"],
)
def test_other_requests_with_a_used_key_are_a_409(api: Api, body: Any) -> None:  # noqa: F811
    assert _post(api, DESIGN_REQUEST, "check-2").status_code == 200
    r = _post(api, body, "check-2")
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["path"] == "Idempotency-Key"
    assert (count(api.store), _decisions(api.store)) == (1, 1)


@pytest.mark.parametrize("key", ["", "has space", "é", "x" * 201])
def test_a_key_that_is_not_printable_ascii_up_to_200_is_a_400(
    api: Api,  # noqa: F811
    key: str,
) -> None:
    headers = {**api.auth("alpha", "planner"), "Idempotency-Key": key.encode("utf-8")}
    r = api.client.post("/v1/check?record=true", json=DESIGN_REQUEST, headers=headers)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert count(api.store) == 0


def test_a_key_without_record_is_a_400(api: Api) -> None:  # noqa: F811
    r = _post(api, DESIGN_REQUEST, "check-3", record=False)
    assert r.status_code == 400, r.text
    assert r.json()["path"] == "Idempotency-Key"
    assert count(api.store) == 0


def test_concurrent_recordings_of_one_key_record_once(tmp_path: Path, rules: RuleSet) -> None:
    """Eight threads over two stores (two server processes) on one file record one entry;
    each gets its seq and the first answer."""
    db = f"sqlite:///{tmp_path / 'c.db'}"
    stores = [Store(db), Store(db)]
    reqs, was_list = straits_api.parse_check_document(DESIGN_REQUEST, "test")
    answer = straits_api.check_json(rules, reqs, was_list)
    got: list[Any] = []
    start = threading.Barrier(8)

    def record(i: int) -> None:
        start.wait()
        done = record_check_once(
            stores[i % 2], rules, list(reqs), answer, tenant="alpha", actor="t", key="same"
        )
        got.append((done.entry.seq, done.replayed))

    threads = [threading.Thread(target=record, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == [(1, False)] + [(1, True)] * 7
    assert (count(stores[0]), _decisions(stores[0])) == (1, 1)
    with pytest.raises(KeyReusedError):
        other = straits_api.parse_check_document(OTHER, "test")[0]
        record_check_once(
            stores[0], rules, list(other), answer, tenant="alpha", actor="t", key="same"
        )
    for s in stores:
        s.close()


def test_check_record_request_id_on_the_command_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    doc = json.dumps(DESIGN_REQUEST)
    run = ("check", "--json", "--record", "--request-id", "run-7", "--db", db, "-")
    first = straits(*run, stdin=doc)
    again = straits(*run, stdin=doc)
    assert (first.returncode, again.returncode) == (0, 0), again.stderr
    assert json.loads(again.stdout) == json.loads(first.stdout)
    store = Store(db)
    assert (count(store), _decisions(store)) == (1, 1)
    other = straits(*run, stdin=json.dumps(OTHER))
    assert other.returncode == 2 and other.stdout == ""
    assert "--request-id" in other.stderr
    for bad in (
        ("check", "--request-id", "k", "-"),  # without --record
        ("check", "--record", "--request-id", "has space", "--db", db, "-"),
    ):
        assert straits(*bad, stdin=doc).returncode == 2
    assert (count(store), _decisions(store)) == (1, 1)
    store.close()


def _edit_answer(store: Store, text: str | None = None) -> None:
    """The decision row's answer edited to `allow` (or to ``text``), the ledger untouched."""
    from sqlalchemy import update

    with store.write() as s:
        row = s.scalars(select(DecisionRow)).one()
        if text is None:
            answer = json.loads(row.answer)
            answer.update(decision="allow", requires=[], reasons=[])
            text = json.dumps(answer, sort_keys=True, separators=(",", ":"))
        s.execute(update(DecisionRow).values(answer=text))


@pytest.mark.parametrize("edit", [None, "not json"], ids=["allow", "not-json"])
def test_a_retry_never_answers_an_edited_decision_row(api: Api, edit: str | None) -> None:  # noqa: F811
    """The retry's answer came from the decisions row as it stood: an edited `allow` was
    replayed with a 200, and a row of no JSON was a 500 (a fresh-eye attack). It is proven
    against its ledger entry now, as every read of a record is: a 409 naming the entry."""
    assert _post(api, DESIGN_REQUEST, "check-9").status_code == 200
    _edit_answer(api.store, edit)
    r = _post(api, DESIGN_REQUEST, "check-9")
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert "decision" not in r.json()
    assert (count(api.store), _decisions(api.store)) == (1, 1)


def test_the_command_line_retry_never_answers_an_edited_decision_row(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    doc = json.dumps(DESIGN_REQUEST)
    run = ("check", "--json", "--record", "--request-id", "run-8", "--db", db, "-")
    assert straits(*run, stdin=doc).returncode == 0
    store = Store(db)
    for edit in (None, "not json"):
        _edit_answer(store, edit)
        again = straits(*run, stdin=doc)
        assert again.returncode == 1 and again.stdout == "", again.stderr
        assert "Traceback" not in again.stderr and "ledger entry 1" in again.stderr
    store.close()
