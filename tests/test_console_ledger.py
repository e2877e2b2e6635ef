"""The web console's ledger through FastAPI's test client: a tenant's own entry numbers in the
plan list, the ledger page showing only what the log proves, each entry verified from the page
(and the full verifications bounded by their slots), a plan's summary as its entry proves it.
Split from test_console.py, whose Browser and running console it uses."""

from __future__ import annotations

import json
import re

from straits.store import Store
from straits.store.tokens import create_token
from test_console import Browser


def test_a_tenant_sees_its_own_entry_numbers_in_the_plan_list(
    console: tuple[object, Store], demo_text: str
) -> None:
    from straits.store import ledger

    app, store = console
    for i in range(4):  # another tenant's entries come first: global numbers 1 to 4
        ledger.record(store, tenant="other-co", actor="t", kind="check", body={"i": i})
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = b.submit(demo_text)
    b.wait(plan_id)
    numbers = {
        path: re.findall(r"<td>#(\d+)</td>", b.client.get(path).text)
        for path in ("/ui/", "/ui/plans/rows")
    }
    assert numbers == {"/ui/": ["1"], "/ui/plans/rows": ["1"]}  # not 5, the global number
    admin = Browser(app, store)
    admin.sign_in(create_token(store, "ops", "admin")[0])
    assert re.findall(r"<td>#(\d+)</td>", admin.client.get("/ui/").text) == ["5"]


def test_the_ledger_page_shows_a_tenant_only_entries_the_log_proves(
    console: tuple[object, Store],
) -> None:
    from sqlalchemy import create_engine, text

    from straits.store import ledger

    app, store = console
    for tenant in ("other-co", "hz-cloud", "hz-cloud"):
        ledger.record(store, tenant=tenant, actor="alice", kind="check", body={"result": []})
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "viewer")[0])
    assert 'data-verified="true"' in b.client.get("/ui/ledger").text
    engine = create_engine(store.url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE ledger SET actor = 'forged' WHERE seq = 2"))
    engine.dispose()
    page = b.client.get("/ui/ledger")
    assert page.status_code == 200 and 'data-verified="false"' in page.text
    assert "forged" not in page.text and "data-seq=" not in page.text


def test_a_tenant_verifies_each_of_its_entries_from_the_ledger_page(
    console: tuple[object, Store],
) -> None:
    """The page's check is the quick one (the tree against the checkpoint); its link runs the
    tenant's own verification, which finds an entry of its moved to another tenant (its
    numbers then have a gap) where the quick check sees nothing wrong (the page's list,
    whose numbers skip it, says so since atk69)."""
    from sqlalchemy import create_engine, text

    from straits.store import ledger

    app, store = console
    for tenant in ("hz-cloud", "other-co", "hz-cloud", "hz-cloud"):
        ledger.record(store, tenant=tenant, actor="alice", kind="check", body={"result": []})
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "viewer")[0])
    page = b.client.get("/ui/ledger")
    assert 'id="verify-entries"' in page.text
    full = b.client.get("/ui/ledger", params={"verify": "entries"})
    assert full.status_code == 200 and 'data-verified="true"' in full.text
    assert 'id="verify-entries"' not in full.text
    engine = create_engine(store.url)
    with engine.begin() as conn:  # its entry 2 (global 3) is now another tenant's
        conn.execute(text("UPDATE ledger SET tenant = 'third' WHERE seq = 3"))
    engine.dispose()
    # the quick check holds, but the page's list has a gap: not shown as if never recorded
    listed = b.client.get("/ui/ledger").text  # (it was shown without #2; atk69)
    assert 'data-verified="false"' in listed and "your ledger entry 2 was removed" in listed
    full = b.client.get("/ui/ledger", params={"verify": "entries"})
    assert full.status_code == 200 and 'data-verified="false"' in full.text
    assert "#2" in full.text and "third" not in full.text
    assert b.client.get("/ui/ledger", params={"verify": "everything"}).status_code == 400
    # the full verifications are bounded: with every slot taken, a 503 page that says when to
    # come back, and the API's verify the same as problem+json
    from straits.server.ledger_routes import VERIFY_SLOTS, verify_slots

    slots = verify_slots(app.state)  # type: ignore[attr-defined]
    for _ in range(VERIFY_SLOTS):
        assert slots.acquire(blocking=False)
    try:
        busy = b.client.get("/ui/ledger", params={"verify": "entries"})
        assert busy.status_code == 503 and busy.headers["content-type"].startswith("text/html")
        assert int(busy.headers["retry-after"]) > 0
        assert "data-verified" in b.client.get("/ui/ledger").text  # the quick check needs none
        token = create_token(store, "hz-cloud", "viewer")[0]
        api = b.client.get("/v1/ledger/verify", headers={"Authorization": f"Bearer {token}"})
        assert api.status_code == 503 and int(api.headers["retry-after"]) > 0
        assert api.headers["content-type"].startswith("application/problem+json")
    finally:
        for _ in range(VERIFY_SLOTS):
            slots.release()
    assert b.client.get("/ui/ledger", params={"verify": "entries"}).status_code == 200


def test_the_plan_list_summarizes_a_recorded_plan_as_its_entry_proves_it(
    console: tuple[object, Store], demo_text: str
) -> None:
    from sqlalchemy import create_engine, text

    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = b.submit(demo_text)
    b.wait(plan_id)
    assert "placed, $" in b.client.get("/ui/").text
    engine = create_engine(store.url)
    with engine.begin() as conn:
        result = json.loads(conn.execute(text("SELECT result FROM plans")).scalar_one())
        result["total_cost_usd"] = 1e12
        conn.execute(text("UPDATE plans SET result = :r"), {"r": json.dumps(result)})
    engine.dispose()
    listed = b.client.get("/ui/").text
    assert "1,000,000.00M" not in listed and "not proven by the ledger" in listed
