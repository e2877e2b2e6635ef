"""The ledger routes: receipts a tenant verifies offline, numbers and views scoped to the
tenant, checkpoints and consistency proofs for witnesses, the head for admins only, and plan
views that serve only what the log proves (409 naming the entry otherwise)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from straits.loading import load_scenario
from straits.plan import make_plan
from straits.rules import RuleSet
from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store, merkle
from straits.store.keys import Keys
from straits.store.note import Signer, open_checkpoint
from straits.store.receipts import verify_receipt
from straits.store.records import record_plan
from test_api import Api
from test_rules_engine import DESIGN_REQUEST

SIGNER = Signer.generate("straits.test/api-ledger")


def serve_with_key(db_url: str, signer: Signer) -> Iterator[Api]:
    """An API over ``db_url`` whose checkpoints ``signer`` signs (for a fixture to yield from)."""
    store = Store(db_url)
    app = create_app(store, settings=Settings(max_body_bytes=64 * 1024, max_time_limit=30))
    app.state.ledger_keys = Keys(signer)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, store)
    store.close()


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    yield from serve_with_key(db_url, SIGNER)


def record(api: Api, tenant: str, n: int = 1) -> list[int]:
    h = api.auth(tenant, "planner")
    out = []
    for _ in range(n):
        r = api.client.post("/v1/check", params={"record": "true"}, json=DESIGN_REQUEST, headers=h)
        assert r.status_code == 200, r.text
        out.append(int(r.headers["X-Straits-Ledger-Seq"]))
    return out


def test_a_tenant_gets_receipts_of_its_own_entries_only(api: Api) -> None:
    record(api, "a", 2)
    record(api, "b", 3)
    assert record(api, "a") == [3]
    a = api.auth("a", "viewer")
    r = api.client.get("/v1/ledger/entries/3/receipt", headers=a)
    assert r.status_code == 200, r.text
    receipt = r.json()
    check = verify_receipt(receipt, [SIGNER.verifier])
    assert (check.entry.tenant, check.entry.tenant_seq, check.entry.seq) == ("a", 3, 6)
    assert receipt["tree_size"] == 6  # what a receipt necessarily reveals: position and size
    assert api.client.get("/v1/ledger/entries/4/receipt", headers=a).status_code == 404
    assert api.client.get("/v1/ledger/entries/0/receipt", headers=a).status_code == 404
    admin = api.auth("ops", "admin")
    r6 = api.client.get("/v1/ledger/entries/6/receipt", headers=admin).json()
    assert r6["entry"] == receipt["entry"]


def test_views_and_headers_show_only_the_tenants_own_records(api: Api) -> None:
    record(api, "a")
    record(api, "b", 2)
    record(api, "a")
    a = api.auth("a", "viewer")
    seen = api.client.get("/v1/ledger/entries", headers=a).json()
    assert [e["seq"] for e in seen] == [1, 2]
    assert all(
        set(e) == {"seq", "recorded_at", "tenant", "actor", "kind", "body", "content", "receipt"}
        for e in seen
    )  # no global number, no chain hashes of neighbours
    assert api.client.get("/v1/ledger/entries/2", headers=a).json()["tenant"] == "a"
    v = api.client.get("/v1/ledger/verify", headers=a).json()
    assert v["ok"] and v["entries"] == 2
    assert not {"head_hash", "head_seq", "root_hash", "checkpoint"} & set(v)
    full = api.client.get("/v1/ledger/verify", headers=api.auth("ops", "admin")).json()
    assert full["ok"] and full["entries"] == 4 and len(full["head_hash"]) == 64
    everything = api.client.get("/v1/ledger/entries", headers=api.auth("ops", "admin")).json()
    assert [e["seq"] for e in everything] == [1, 2, 3, 4]


def test_checkpoints_and_proofs_for_witnesses(api: Api) -> None:
    a, admin = api.auth("a", "viewer"), api.auth("ops", "admin")
    assert api.client.get("/v1/ledger/checkpoint", headers=a).status_code == 404
    record(api, "a", 3)
    assert (
        api.client.get("/v1/ledger/checkpoint", params={"fresh": "true"}, headers=a).status_code
        == 403
    )
    first = api.client.get("/v1/ledger/checkpoint", params={"fresh": "true"}, headers=admin)
    assert first.status_code == 200 and first.json()["size"] == 3
    record(api, "b", 4)
    assert api.client.get("/v1/ledger/checkpoint", headers=a).json()["size"] == 3  # published
    api.client.get("/v1/ledger/checkpoint", params={"fresh": "true"}, headers=admin)
    doc = api.client.get("/v1/ledger/checkpoint", params={"since": 3}, headers=a).json()
    new = open_checkpoint(doc["checkpoint"], [SIGNER.verifier]).checkpoint
    old = open_checkpoint(first.json()["checkpoint"], [SIGNER.verifier]).checkpoint
    proof = [base64.b64decode(h) for h in doc["consistency"]["proof"]]
    merkle.verify_consistency(3, 7, old.root, new.root, proof)
    c = api.client.get("/v1/ledger/consistency", params={"first": 3, "second": 7}, headers=a)
    assert c.status_code == 200 and c.json()["proof"] == doc["consistency"]["proof"]
    record(api, "a")
    beyond = api.client.get("/v1/ledger/consistency", params={"first": 3, "second": 8}, headers=a)
    assert beyond.status_code == 400  # a tenant cannot probe the live size
    assert (
        api.client.get(
            "/v1/ledger/consistency", params={"first": 3, "second": 8}, headers=admin
        ).status_code
        == 200
    )


def test_no_key_no_receipt(db_url: str) -> None:
    store = Store(db_url)
    app = create_app(store, settings=Settings())
    app.state.ledger_keys = Keys()
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client, store)
        record(api, "a")
        r = client.get("/v1/ledger/entries/1/receipt", headers=api.auth("a", "viewer"))
        assert r.status_code == 409 and "signing key" in r.json()["error"]


def test_plan_views_serve_only_what_the_log_proves(
    api: Api, rules: RuleSet, example_path: Path, db_url: str
) -> None:
    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, solver="greedy")
    record(api, "other", 2)
    plan_id, entry = record_plan(api.store, sc, plan, rules, {}, tenant="hz-cloud", actor="t")
    h = api.auth("hz-cloud", "viewer")
    job = api.client.get(f"/v1/plans/{plan_id}", headers=h).json()
    assert job["ledger_seq"] == 1 and entry.seq == 3  # the tenant's number, not the global
    assert api.client.get("/v1/plans", headers=h).json()[0]["ledger_seq"] == 1
    doc = api.client.get(f"/v1/plans/{plan_id}/plan", headers=h).json()
    from straits.plandoc import plan_body

    assert plan_body(doc) == plan_body(plan.to_json())  # the document's plan, as recorded
    assert doc["id"] == plan_id and doc["ledger_seq"] == 1  # in the tenant's numbering
    engine = create_engine(db_url)
    with engine.begin() as conn:
        result = json.loads(conn.execute(text("SELECT result FROM plans")).scalar_one())
        result["assignments"][0]["site"] = "elsewhere"
        conn.execute(text("UPDATE plans SET result = :r"), {"r": json.dumps(result)})
    engine.dispose()
    from straits.web.session import COOKIE

    admin = api.auth("ops", "admin")
    for path in (f"/v1/plans/{plan_id}", f"/v1/plans/{plan_id}/plan"):
        r = api.client.get(path, headers=admin)
        assert r.status_code == 409 and r.json()["ledger_seq"] == 3
        assert "ledger entry 3" in r.json()["error"] and "elsewhere" not in r.text
    # a tenant is told which of its entries, in its numbering: never the global number, the
    # log's size, or what differs (an admin's verify shows that), in the API or the console
    api.client.cookies.set(COOKIE, api.token("hz-cloud", "viewer"))
    for path in (
        f"/v1/plans/{plan_id}",
        f"/v1/plans/{plan_id}/plan",
        f"/v1/plans/{plan_id}/export?to=skypilot",
    ):
        r = api.client.get(path, headers=h)
        assert r.status_code == 409 and r.json()["ledger_seq"] == 1, path
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "3" not in r.json()["detail"] and "elsewhere" not in r.text, r.json()["detail"]
    # the console's page says the same as an HTML page (it was the API's problem+json, atk14)
    r = api.client.get(f"/ui/plans/{plan_id}")
    assert r.status_code == 409 and r.headers["content-type"].startswith("text/html")
    assert "your ledger entry 1" in r.text
    assert "ledger entry 3" not in r.text and "elsewhere" not in r.text
    api.client.cookies.clear()


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE ledger SET body = replace(body, 'us-guidance', 'forged') WHERE seq = 3",
        "UPDATE ledger SET actor = 'forged' WHERE seq = 3",
        "DELETE FROM ledger_nodes WHERE level = 0 AND idx = 3",  # a node entry 3's proof needs
    ],
)
def test_a_tenant_is_never_served_an_entry_the_log_does_not_prove(
    api: Api, db_url: str, tamper: str
) -> None:
    record(api, "b", 2)
    record(api, "a", 2)  # global 3 and 4: the tenant's 1 and 2
    a = api.auth("a", "viewer")
    assert api.client.get("/v1/ledger/entries", headers=a).status_code == 200
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(tamper))
    engine.dispose()
    for path in (
        "/v1/ledger/entries",
        "/v1/ledger/entries?since=1&limit=1",
        "/v1/ledger/entries/1",
    ):
        r = api.client.get(path, headers=a)
        assert r.status_code == 409, (path, r.text)
        assert r.json()["ledger_seq"] == 1 and "forged" not in r.text
    if "nodes" not in tamper:  # entry 4's proof needs entry 3's leaf, not its content
        assert api.client.get("/v1/ledger/entries/2", headers=a).status_code == 200
    # an admin gets the stored rows as they are, to export and verify them anywhere
    assert api.client.get("/v1/ledger/entries", headers=api.auth("ops", "admin")).status_code == 200


A2 = "(SELECT seq FROM ledger WHERE tenant='a' AND tenant_seq=2)"
TENANT_TAMPER = [
    # the edit, the first of tenant a's entries it breaks, its code, and whether tenant b's
    # verification still holds
    ("UPDATE decisions SET answer='{}' WHERE ledger_seq=" + A2, 2, "decision-row", True),
    ("UPDATE ledger SET actor='someone else' WHERE seq=" + A2, 2, "entry-altered", True),
    # the entry holds the decision whole, but every check has its one row (it passed before)
    ("DELETE FROM decisions WHERE ledger_seq=" + A2, 2, "decision-row", True),
    # b's rows moved to a's entry 2: b's entries lost theirs
    ("UPDATE decisions SET ledger_seq=" + A2 + " WHERE tenant='b'", 2, "decision-row", False),
    ("UPDATE ledger SET tenant='c' WHERE tenant='a' AND tenant_seq=1", 1, "entry-missing", True),
    ("DELETE FROM ledger WHERE tenant='a' AND tenant_seq=2", 2, "entry-missing", True),
]


@pytest.mark.parametrize(("tamper", "first_bad", "code", "b_ok"), TENANT_TAMPER)
def test_a_tenants_verify_checks_its_own_entries_and_records(
    api: Api, db_url: str, tamper: str, first_bad: int, code: str, b_ok: bool
) -> None:
    """A tenant's verify was the quick check only (the tree against the checkpoint): its own
    entries and records could be altered and it still said ok. Now each of its entries is
    proven, its numbers run without a gap and its rows match their entries, reported in its
    own numbering; another tenant's verify is not affected and shows nothing of the first."""
    record(api, "a", 3)
    record(api, "b", 2)
    a, b = api.auth("a", "viewer"), api.auth("b", "viewer")
    before = api.client.get("/v1/ledger/verify", headers=a).json()
    assert before == {
        "ok": True,
        "code": None,
        "entries": 3,
        "checked": 3,
        "signatures": before["signatures"],
        "first_bad": None,
        "problem": None,
    }
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text(tamper))
    engine.dispose()
    after = api.client.get("/v1/ledger/verify", headers=a)
    assert after.status_code == 200, after.text
    v = after.json()
    assert (v["ok"], v["first_bad"], v["code"]) == (False, first_bad, code), v
    assert v["checked"] == first_bad - 1
    assert "'b'" not in v["problem"] and "ledger entry 5" not in v["problem"]
    other = api.client.get("/v1/ledger/verify", headers=b).json()
    assert other["ok"] is b_ok and other["entries"] == 2, other
    assert b_ok or other["code"] == "decision-row"
    quick = api.client.get("/v1/ledger/verify", params={"quick": "true"}, headers=a).json()
    assert set(quick) == {"ok", "entries", "signatures", "problem"}


def test_no_receipt_yet_names_the_tenants_own_number(db_url: str) -> None:
    """The 409 of a receipt no checkpoint covers named the entry's global number (the store's
    message), in the API and the console: a tenant learnt how many entries others had
    recorded before it (atk39). It names the caller's own number."""
    import re

    from straits.store.tokens import create_token
    from test_console import Browser

    store = Store(db_url)
    app = create_app(store, settings=Settings())
    app.state.ledger_keys = Keys(None, (SIGNER.verifier,))  # verifies, cannot sign
    with TestClient(app, raise_server_exceptions=False) as client:
        api = Api(client, store)
        record(api, "b", 3)
        assert record(api, "a") == [1]  # the log's entry 4
        r = client.get("/v1/ledger/entries/1/receipt", headers=api.auth("a", "viewer"))
        assert r.status_code == 409
        assert re.findall(r"\d+", r.json()["detail"]) == ["1"]
        b = Browser(app, store)
        b.sign_in(create_token(store, "a", "viewer")[0])
        page = b.client.get("/ui/ledger/1/receipt.json")
        assert page.status_code == 400
        assert "entry 4" not in page.text and "entry 1" in page.text
    store.close()


def test_a_cancel_the_worker_outran_answers_that_the_plan_ended(
    api: Api,
    rules: RuleSet,
    example_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DELETE of a running plan that its worker finishes and records between the cancel and
    the read of its row answered 202 with the row as stored: the done plan's unproven result
    and its global ledger_seq (atk39). It is the 409 of a plan that already ended."""
    from straits.store import queue

    sc = load_scenario(example_path)
    plan = make_plan(sc, rules=rules, solver="greedy")
    record(api, "other", 2)
    plan_id, entry = record_plan(api.store, sc, plan, rules, {}, tenant="hz-cloud", actor="t")
    assert entry.seq == 3
    engine = create_engine(db_url)

    def finish(status: str) -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE plans SET status = :s"), {"s": status})

    finish("running")  # as the DELETE reads it first

    def cancel(store: Store, pid: str) -> tuple[str, str]:  # the worker finishes as asked
        finish("done")
        return "running", "running"

    monkeypatch.setattr(queue, "cancel_job", cancel)  # the route calls queue.cancel_job
    r = api.client.delete(f"/v1/plans/{plan_id}", headers=api.auth("hz-cloud", "planner"))
    assert r.status_code == 409, r.text
    assert r.json()["plan_status"] == "done"
    engine.dispose()


def test_entry_numbers_beyond_the_column_are_no_entry(api: Api, db_url: str) -> None:
    """Entry numbers up to 2^53 are taken, but ``ledger.seq`` is a 32-bit INTEGER on
    PostgreSQL: a number past 2^31 - 1 in a query was ``integer out of range``, a 500 (an
    entry, its receipt, a page from it, the console's page before it) (atk39). It is no entry."""
    from straits.store.tokens import create_token
    from test_ledger_cli import straits

    record(api, "a", 2)
    big = 3_000_000_000
    for role in ("viewer", "admin"):
        h = api.auth("a", role)
        for path in (f"/v1/ledger/entries/{big}", f"/v1/ledger/entries/{big}/receipt"):
            assert api.client.get(path, headers=h).status_code == 404, (role, path)
        r = api.client.get("/v1/ledger/entries", params={"since": big}, headers=h)
        assert (r.status_code, r.json()) == (200, [])
    from test_console import Browser

    b = Browser(api.client.app, api.store)
    b.sign_in(create_token(api.store, "a", "admin")[0])
    assert b.client.get("/ui/ledger", params={"before": big}).status_code == 200
    assert b.client.get(f"/ui/ledger/{big}/receipt.json").status_code == 404
    r = straits("ledger", "show", str(big), "--db", db_url)
    assert r.returncode == 2 and "SEQ" in r.stderr
