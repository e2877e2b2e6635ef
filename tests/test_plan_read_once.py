"""A finished, recorded plan read back decodes each stored text once per request (web33).

Before, the console's plan page of a plan decoded its ledger entry's body seven times and its
stored result three times (``views.job`` twice, then ``find_plan``), hashed the entry's leaf
three times, and ``GET /v1/plans/ID/plan`` validated the stored scenario twice. Each stored
text is counted here as ``json.loads`` is given it, so a reader that decodes one again, by any
path, fails. What is proven is the same: the altered rows, entries and scenarios are refused as
before (``test_console_plan_cache.py``, ``test_ledger_tamper_rows.py``, ``test_ledger.py``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

import straits.loading
import straits.store.proven
from straits.rules import ruleset
from straits.store import Store
from straits.store.ledger import Entry
from straits.store.tables import LedgerRow, PlanRow, ScenarioRow
from straits.store.tokens import Principal, create_token
from straits.web import views
from test_console import Browser


class Reads:
    """What one request decoded, hashed and validated of one plan's stored texts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: Store, plan_id: str) -> None:
        with store.session() as s:
            row = s.get(PlanRow, plan_id)
            assert row is not None and row.ledger_seq is not None
            entry = s.scalar(select(LedgerRow).where(LedgerRow.seq == row.ledger_seq))
            scenario = s.get(ScenarioRow, row.scenario_digest)
            assert entry is not None and scenario is not None
            self.texts = {
                "result": row.result,
                "options": row.options,
                "entry": entry.body,
                "scenario": scenario.body,
            }
            self.seq = int(row.ledger_seq)
        self.counts: Counter[str] = Counter()
        loads, leaf_hash = json.loads, Entry.leaf_hash
        parse, digest = straits.loading.parse_scenario, vars(straits.store.proven)["digest"]

        def counted_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
            for name, stored in self.texts.items():
                if isinstance(text, str) and text == stored:
                    self.counts[f"decoded {name}"] += 1
            return loads(text, *args, **kwargs)

        def counted_leaf_hash(entry: Entry) -> bytes:
            if entry.seq == self.seq:
                self.counts["hashed entry"] += 1
            return leaf_hash(entry)

        def counted_parse(*args: Any, **kwargs: Any) -> Any:
            self.counts["validated scenario"] += 1
            return parse(*args, **kwargs)

        def counted_digest(obj: Any) -> str:
            self.counts["digest"] += 1
            return str(digest(obj))

        monkeypatch.setattr(json, "loads", counted_loads)
        monkeypatch.setattr(Entry, "leaf_hash", counted_leaf_hash)
        monkeypatch.setattr(straits.loading, "parse_scenario", counted_parse)
        monkeypatch.setattr(straits.store.proven, "digest", counted_digest)

    def take(self) -> Counter[str]:
        """The counts since the last call; cleared."""
        counts = Counter(self.counts)
        self.counts.clear()
        return counts


@pytest.fixture()
def planned(console: tuple[Any, Store], demo_text: str) -> Iterator[tuple[Any, Store, str]]:
    app, store = console
    owner = Browser(app, store)
    owner.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = owner.submit(demo_text)
    owner.wait(plan_id)
    yield app, store, plan_id


def _at_most_once(counts: Counter[str]) -> None:
    assert all(n <= 1 for n in counts.values()), counts


@pytest.mark.parametrize("role", ["planner", "admin"])
def test_the_plan_page_reads_each_stored_text_once(
    planned: tuple[Any, Store, str], monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    _, store, plan_id = planned
    reads = Reads(monkeypatch, store, plan_id)
    who = Principal("t", "hz-cloud" if role == "planner" else "ops", role)  # type: ignore[arg-type]
    ctx = views.plan_page(store, ruleset(), who, plan_id)
    assert ctx["job"].status == "done" and ctx["job"].summary != views.UNPROVEN
    counts = reads.take()
    _at_most_once(counts)
    # the entry is proven (its leaf hashed against the log), the scenario checked against its
    # digest and validated: each once
    assert counts["decoded entry"] == counts["hashed entry"] == 1
    assert counts["decoded scenario"] == counts["digest"] == counts["validated scenario"] == 1


def test_the_console_and_the_api_read_each_stored_text_once(
    planned: tuple[Any, Store, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, store, plan_id = planned
    browser = Browser(app, store)
    token = create_token(store, "hz-cloud", "viewer")[0]
    browser.sign_in(token)
    api = TestClient(app, base_url="https://testserver")
    api.headers["Authorization"] = f"Bearer {token}"
    reads = Reads(monkeypatch, store, plan_id)
    assert browser.client.get(f"/ui/plans/{plan_id}").status_code == 200  # a first view
    first = reads.take()
    _at_most_once(first)
    assert first["decoded entry"] == first["validated scenario"] == 1
    assert browser.client.get(f"/ui/plans/{plan_id}").status_code == 200  # from the cache
    assert not any(k.startswith(("decoded", "validated")) for k in reads.take())
    job = api.get(f"/v1/plans/{plan_id}")
    assert job.status_code == 200 and job.json()["plan"]["assignments"]
    counts = reads.take()
    _at_most_once(counts)
    assert counts["decoded entry"] == 1 and counts["decoded result"] == 0
    document = api.get(f"/v1/plans/{plan_id}/plan")
    assert document.status_code == 200 and document.json()["id"] == plan_id
    counts = reads.take()
    _at_most_once(counts)
    assert counts["decoded entry"] == counts["validated scenario"] == 1
    assert counts["decoded result"] == 0


def _first_int_path(doc: Any) -> list[Any]:
    """The path to the first integer (not a boolean) in ``doc``, depth first."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc)
    for k, v in items:
        if isinstance(v, int) and not isinstance(v, bool):
            return [k]
        if isinstance(v, dict | list):
            inner = _first_int_path(v)
            if inner:
                return [k, *inner]
    return []


@pytest.mark.parametrize("change", ["reformatted", "an integer as a float"])
def test_a_stored_result_not_in_canonical_form_is_compared_as_before(
    planned: tuple[Any, Store, str], change: str
) -> None:
    """The stored result is compared without decoding it only when it is the entry's plan in
    canonical form; any other text is decoded and compared canonically, as before: the same
    plan written another way is the plan (200), an integer written ``8.0`` is not (409)."""
    app, store, plan_id = planned
    engine = create_engine(store.url)
    with engine.begin() as conn:
        result = json.loads(conn.execute(text("SELECT result FROM plans")).scalar_one())
        if change == "an integer as a float":
            *path, last = _first_int_path(result)
            at = result
            for k in path:
                at = at[k]
            at[last] = float(at[last])
        stored = json.dumps(result, indent=1, sort_keys=False)
        conn.execute(text("UPDATE plans SET result = :r"), {"r": stored})
    engine.dispose()
    want = 200 if change == "reformatted" else 409
    token = create_token(store, "hz-cloud", "viewer")[0]
    browser = Browser(app, store)
    browser.sign_in(token)
    api = TestClient(app, base_url="https://testserver")
    api.headers["Authorization"] = f"Bearer {token}"
    assert browser.client.get(f"/ui/plans/{plan_id}").status_code == want
    for route in (f"/v1/plans/{plan_id}", f"/v1/plans/{plan_id}/plan"):
        r = api.get(route)
        assert r.status_code == want, route
        if want == 409:
            assert r.headers["content-type"].startswith("application/problem+json")
