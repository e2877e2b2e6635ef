"""``POST /v1/exports`` of an edited plan that keeps a recorded plan's id.

A plan document whose ``digest`` is deleted is taken as it is, under the ``id`` it carries. An
edited plan that kept a recorded plan's id was exported under that id, 200: every file, job,
label and Slurm checkpoint folder named the recorded plan (a stage found the recorded run's
``.straits-stage-complete`` there and skipped itself), and the admission hook took its
launches for the recorded plan's. It is now a 400 naming ``id`` when the caller's tenant
recorded the plan (another tenant's id is answered as one nobody recorded, so that the answer
does not say it exists: api30, ``test_hostile_api_api30.py``); without its ``id`` too it is a
new plan and exports."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from straits.cli.plan_source import record
from straits.loading import load_scenario
from straits.plan import make_plan
from straits.plandoc import from_store
from straits.rules import RuleSet
from test_api import Api, assert_problem, running_api
from test_hostile_export_plans import EXAMPLE


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from running_api(db_url)


@pytest.fixture
def recorded(api: Api, rules: RuleSet) -> dict[str, Any]:
    sc = load_scenario(EXAMPLE)
    plan = make_plan(sc, rules=rules, solver="greedy")
    plan_id, _, _ = record(api.store, sc, plan, rules, {}, tenant="hz-cloud", actor="t")
    doc: dict[str, Any] = json.loads(json.dumps(from_store(api.store, plan_id).to_json()))
    return doc


def _edited(doc: dict[str, Any], *, keep_id: bool) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out.pop("digest")
    if not keep_id:
        out.pop("id")
    serve = next(a for a in out["assignments"] if a["stage"] == "serve-intl")
    serve["cost_usd"] += 1.0  # a figure edited: still exportable (no placement changed)
    return out


def _export(api: Api, doc: dict[str, Any], tenant: str = "hz-cloud") -> Any:
    return api.client.post(
        "/v1/exports?to=slurm&run=true", json=doc, headers=api.auth(tenant, "viewer")
    )


def test_the_recorded_plan_itself_exports(api: Api, recorded: dict[str, Any]) -> None:
    assert _export(api, recorded).status_code == 200
    unsigned = copy.deepcopy(recorded)
    unsigned.pop("digest")  # the same plan without its digest
    assert _export(api, unsigned).status_code == 200


def test_an_edited_plan_under_a_recorded_id_is_refused(api: Api, recorded: dict[str, Any]) -> None:
    body = assert_problem(_export(api, _edited(recorded, keep_id=True)), 400)
    assert body["path"] == "id"


def test_an_edited_plan_without_its_id_is_a_new_plan(api: Api, recorded: dict[str, Any]) -> None:
    r = _export(api, _edited(recorded, keep_id=False))
    assert r.status_code == 200, r.text
    assert r.headers["X-Straits-Plan-Id"] != recorded["id"]


# --- the stored copy altered (atk39) ------------------------------------------------------------
# The document was compared with ``plans.result`` as stored, unproven: not JSON or not an object
# was a 500 (JSONDecodeError, AttributeError); another plan refused the recorded document itself
# as edited (400 naming ``id``). It is compared with the plan the ledger entry proves, and a
# stored copy that differs is the 409 every read of that plan answers.
ALTERED_RESULTS = ["not json", "[]", '"a plan"', '{"assignments": []}']


@pytest.mark.parametrize("result", ALTERED_RESULTS)
@pytest.mark.parametrize("digest", [True, False], ids=["document", "without-digest"])
def test_a_recorded_id_whose_stored_plan_was_altered_is_a_409(
    api: Api, db_url: str, recorded: dict[str, Any], result: str, digest: bool
) -> None:
    from test_ledger_log import sql

    sql(db_url, "UPDATE plans SET result = :r WHERE id = :i", r=result, i=recorded["id"])
    doc = copy.deepcopy(recorded)
    if not digest:
        doc.pop("digest")
    assert_problem(_export(api, doc), 409)  # another tenant's: as a missing id (api30)


def test_a_recorded_id_is_compared_with_its_entry_not_the_stored_copy(
    api: Api, db_url: str, recorded: dict[str, Any]
) -> None:
    from test_ledger_log import sql

    sql(db_url, "UPDATE plans SET result = NULL WHERE id = :i", i=recorded["id"])
    assert _export(api, recorded).status_code == 200  # what the entry proves
    body = assert_problem(_export(api, _edited(recorded, keep_id=True)), 400)
    assert body["path"] == "id"  # an emptied copy does not let an edited plan take the id
