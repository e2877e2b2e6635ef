"""Tenants taking turns in the plan queue (``store.queue.serving_order`` and ``claim``) under
attack: more tenants than a claim weighs, tenants busy in another rules pool, altered rows,
claims racing on PostgreSQL; and migration 0006 on a database with rows. SQLite and
PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, inspect, select, text

from queue_support import GREEDY, POLICY, digest
from straits.model.scenario import Scenario
from straits.store import Store, queue, turns
from straits.store.tables import Base, PlanRow


def by(store: Store, sc: Scenario, tenant: str, rules: str | None = None) -> str:
    return queue.enqueue(
        store, sc, GREEDY, tenant=tenant, actor="t", record=False, rules_digest=rules or digest()
    )


def sql(store: Store, statement: str, **params: object) -> None:
    engine = create_engine(store.url)
    with engine.begin() as conn:
        conn.execute(text(statement), params)
    engine.dispose()


def state(store: Store, plan_id: str) -> str | None:
    """A job's status, read alone (its altered columns unread)."""
    with store.session() as s:
        return s.scalar(select(PlanRow.status).where(PlanRow.id == plan_id))


def served(store: Store, n: int, rules: str | None = None) -> list[str]:
    """``n`` claims by one slot, each job ended before the next claim: the ids in order."""
    order = []
    for _ in range(n):
        c = queue.claim(store, "w:1:x", rules or digest(), POLICY)
        if c is None:
            break
        order.append(c.plan_id)
        assert queue.fail(store, c, "done with it")
    return order


def test_a_tenant_beyond_those_weighed_still_gets_its_turn(
    store: Store, sc: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim weighed the 64 tenants whose oldest job had waited longest: a 65th tenant,
    never served, waited until one of them had run out of jobs (64 tenants with 1,000 jobs
    each: 64,000 jobs). The tenants weighed are now the 64 first in turn."""
    monkeypatch.setattr(turns, "FAIR_TENANTS", 2)
    a = [by(store, sc, "a") for _ in range(3)]
    b = [by(store, sc, "b") for _ in range(3)]
    c = by(store, sc, "c")
    order = served(store, 7)
    assert order[:3] == [a[0], b[0], c]
    assert sorted(order) == sorted([*a, *b, c])


def test_jobs_running_under_other_rules_do_not_cost_a_tenant_its_turn(
    store: Store, sc: Scenario
) -> None:
    """A tenant's jobs running on workers of another rule set counted as its own running
    jobs here: with 3 running elsewhere, it waited behind every tenant with fewer, as long as
    any of them had a job queued."""
    elsewhere = "e" * 64
    for _ in range(3):
        by(store, sc, "a", rules=elsewhere)
        assert queue.claim(store, "w:9:x", elsewhere, POLICY) is not None
    mine = by(store, sc, "a")
    others = [by(store, sc, "b") for _ in range(3)]
    order = served(store, 4)
    assert mine in order[:2]
    assert sorted(order) == sorted([mine, *others])


def test_an_altered_start_time_does_not_end_the_turns(store: Store, sc: Scenario) -> None:
    """A finished job's ``started_at`` Straits never writes (text on SQLite, ``infinity`` on
    PostgreSQL) made every claim read the tenants' last starts as an altered row and fall back
    to oldest first for good (finished jobs are never reaped)."""
    old = by(store, sc, "heavy")
    assert served(store, 1) == [old]
    bad = "'garbage'" if store.dialect == "sqlite" else "'infinity'"
    sql(store, f"UPDATE plans SET started_at = {bad} WHERE id = :i", i=old)
    heavy = [by(store, sc, "heavy") for _ in range(3)]
    light = by(store, sc, "light")
    order = served(store, 4)
    assert order[:2] == [heavy[0], light]


def test_an_altered_queued_row_is_failed_in_its_turn_and_turns_go_on(
    store: Store, sc: Scenario
) -> None:
    """A queued job's ``created_at`` Straits never writes (text sorted after every time on
    SQLite, ``infinity`` on PostgreSQL) made every claim fall back to oldest first until the
    rest of the queue had run."""
    bad = by(store, sc, "odd")
    later = "'zzz'" if store.dialect == "sqlite" else "'infinity'"
    sql(store, f"UPDATE plans SET created_at = {later} WHERE id = :i", i=bad)
    heavy = [by(store, sc, "heavy") for _ in range(3)]
    light = by(store, sc, "light")
    order = served(store, 5)
    assert order[:2] == [heavy[0], light]
    assert sorted(order) == sorted([*heavy, light])
    assert state(store, bad) == "failed"


def test_an_unreadable_tenant_neither_fails_claims_nor_ends_the_turns(
    store: Store, sc: Scenario
) -> None:
    """A queued job whose tenant is not text (a BLOB, or text that is not UTF-8, on SQLite)
    made the tenants' read fail: every claim fell back to oldest first while it waited."""
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL keeps only text in a VARCHAR column")
    heavy = [by(store, sc, "heavy") for _ in range(3)]
    blob, garbled = by(store, sc, "p"), by(store, sc, "q")
    sql(store, "UPDATE plans SET tenant = x'ff00' WHERE id = :i", i=blob)
    sql(store, "UPDATE plans SET tenant = CAST(x'ff' AS TEXT) WHERE id = :i", i=garbled)
    light = by(store, sc, "light")
    order = served(store, 6)
    assert order[:2] == [heavy[0], light]
    assert sorted(order) == sorted([*heavy, light])
    assert [state(store, altered) for altered in (blob, garbled)] == ["failed", "failed"]


def test_an_altered_scenario_row_does_not_stop_every_claim(store: Store, sc: Scenario) -> None:
    """The claim read the job's whole scenario row: a column of it Straits never writes
    (``created_at = 'garbage'``, ``infinity``) raised out of every claim, the job first in
    line, so no worker took any job. Only the body is read now; an unreadable body (a BLOB)
    fails its job with the reason, and the next job is taken."""
    first = by(store, sc, "a")
    other = queue.enqueue(
        store,
        sc.model_copy(update={"name": "other"}),
        GREEDY,
        tenant="b",
        actor="t",
        record=False,
        rules_digest=digest(),
    )
    bad = "'garbage'" if store.dialect == "sqlite" else "'infinity'"
    of = "(SELECT scenario_digest FROM plans WHERE id = :i)"
    sql(store, f"UPDATE scenarios SET created_at = {bad} WHERE digest = {of}", i=first)
    assert served(store, 2) == [first, other]
    if store.dialect == "sqlite":  # PostgreSQL keeps only text in a TEXT column
        third = sc.model_copy(update={"name": "third"})
        again = queue.enqueue(
            store, third, GREEDY, tenant="a", actor="t", record=False, rules_digest=digest()
        )
        later = queue.enqueue(  # the first scenario's row is altered: submitting it fails
            store,
            sc.model_copy(update={"name": "other"}),
            GREEDY,
            tenant="c",
            actor="t",
            record=False,
            rules_digest=digest(),
        )
        sql(store, f"UPDATE scenarios SET body = x'ff00' WHERE digest = {of}", i=again)
        assert served(store, 2) == [later]
        assert state(store, again) == "failed"


def test_options_nested_too_deep_to_read_fail_their_job_not_every_claim(
    store: Store, sc: Scenario
) -> None:
    """Stored options (or a scenario body) nested deeper than Python's JSON parser goes raised
    RecursionError out of every claim, the job first in line: no worker took any job."""
    first = by(store, sc, "a")
    later = by(store, sc, "b")
    deep = '{"a": ' + "[" * 200_000 + "]" * 200_000 + "}"
    sql(store, "UPDATE plans SET options = :o WHERE id = :i", o=deep, i=first)
    assert served(store, 2) == [later]
    assert state(store, first) == "failed"


def test_claims_at_once_take_each_job_of_many_tenants_exactly_once(
    store: Store, sc: Scenario
) -> None:
    """Several workers claiming at once, tenants in turn (each tenant's oldest job locked by
    one claim, the others moving on): every job is taken once, none twice."""
    ids = {by(store, sc, f"t{i % 4}") for i in range(16)}
    taken: list[str] = []
    lock = threading.Lock()

    def grab(n: int) -> None:
        while (c := queue.claim(store, f"w:{n}:x", digest(), POLICY)) is not None:
            with lock:
                taken.append(c.plan_id)

    threads = [threading.Thread(target=grab, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(taken) == sorted(ids)


def test_a_job_without_a_tenant_is_failed_not_claimed(store: Store, sc: Scenario) -> None:
    """With the column's NOT NULL dropped (PostgreSQL), a job whose tenant is NULL was claimed
    and planned for nobody (``Claim.tenant`` None; a recorded plan's ledger entry refused)."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite keeps the NOT NULL of the table it made")
    sql(store, "ALTER TABLE plans ALTER COLUMN tenant DROP NOT NULL")
    nobody = by(store, sc, "x")
    sql(store, "UPDATE plans SET tenant = NULL WHERE id = :i", i=nobody)
    heavy = [by(store, sc, "heavy") for _ in range(2)]
    light = by(store, sc, "light")
    order = served(store, 4)
    assert order == [heavy[0], light, heavy[1]]
    assert state(store, nobody) == "failed"


def test_a_tenant_whose_oldest_job_is_being_claimed_waits_its_turn(
    store: Store, sc: Scenario
) -> None:
    """On PostgreSQL a claim skipped the locked oldest job of the tenant first in turn and
    took that tenant's next one: workers claiming at once all served the same tenant."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite claims one at a time (its write lock)")
    heavy = [by(store, sc, "heavy") for _ in range(3)]
    light = by(store, sc, "light")
    with store.session() as s:  # another worker's claim, not yet committed
        s.execute(select(PlanRow).where(PlanRow.id == heavy[0]).with_for_update())
        c = queue.claim(store, "w:2:x", digest(), POLICY)
        assert c is not None and c.plan_id == light
        d = queue.claim(store, "w:3:x", digest(), POLICY)
        assert d is not None and d.plan_id == heavy[1]  # nobody else waits: the next one
        s.rollback()


def test_migration_0006_on_a_database_with_jobs(db_url: str) -> None:
    """A database at 0005 with queued and finished jobs upgrades to the models' schema (the
    two indexes the turns read) and downgrades back without them."""
    from importlib import resources

    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    url = db_url
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("straits.store").joinpath("migrations"))
    )
    engine = create_engine(url)
    names = {"ix_plans_tenant_started", "ix_plans_queue"}

    def to(revision: str, down: bool = False) -> set[str]:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)
        return {str(i["name"]) for i in inspect(engine).get_indexes("plans")}

    assert not names & to("0005")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO scenarios (digest, name, body, created_at) VALUES ('d', 'n', '{}', "
            "'2026-01-01')"
        )
        for i, (tenant, state) in enumerate([("a", "queued"), ("a", "done"), ("b", "queued")]):
            conn.exec_driver_sql(
                "INSERT INTO plans (id, tenant, actor, scenario_digest, options, status, "
                "created_at, started_at, record, attempts, cancel_requested) VALUES "
                f"('p{i}', '{tenant}', 'x', 'd', '{{}}', '{state}', '2026-01-0{i + 1}', "
                f"{'NULL' if state == 'queued' else repr('2026-01-05')}, FALSE, 0, FALSE)"
            )
    assert names <= to("head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.exec_driver_sql("SELECT count(*) FROM plans").scalar_one() == 3
    assert not names & to("0005", down=True)
    engine.dispose()
    store = Store(url)  # opening it upgrades it again, the jobs still there, in turn
    try:
        with store.session() as s:
            assert s.scalar(select(PlanRow.tenant).where(PlanRow.id == "p0")) == "a"
            assert turns.serving_order(s, None) == ["b", "a"]
    finally:
        store.close()


def test_a_claim_committed_while_another_weighs_the_turns_is_counted(
    store: Store, sc: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL reads each statement of a claim in a snapshot of its own: a claim that
    weighed the turns (``heavy`` first: nothing running) while another worker's claim of
    heavy's oldest job committed then looked up heavy's next job and took it, so two workers
    claiming at once both served ``heavy`` while ``light`` waited. Claims now take turns on
    a lock of the queue (SQLite's write lock does the same): the second weighs the turns
    after the first committed."""
    if store.dialect != "postgresql":
        pytest.skip("SQLite claims one at a time (its write lock)")
    heavy = [by(store, sc, "heavy") for _ in range(3)]
    light = by(store, sc, "light")
    weigh = turns.serving_order
    other: list[str] = []
    first = [True]
    engine = create_engine(store.url)

    def other_worker() -> None:
        c = queue.claim(store, "w:2:x", digest(), POLICY)
        assert c is not None
        other.append(c.plan_id)

    def weighed_then_raced(s: object, rules_digest: str | None) -> list[turns.Tenant]:
        order = weigh(s, rules_digest)  # type: ignore[arg-type]
        if first:  # the first claim only: the other worker's must not start a third
            first.clear()
            t = threading.Thread(target=other_worker)
            t.start()
            for _ in range(3000):  # until it has claimed, or waits for this claim
                t.join(0.01)
                if not t.is_alive():
                    break
                with engine.connect() as conn:
                    waits = (
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    )
                    if conn.exec_driver_sql(waits).scalar_one():
                        break
            threads.append(t)
        return order

    threads: list[threading.Thread] = []
    monkeypatch.setattr(queue, "serving_order", weighed_then_raced)
    mine = queue.claim(store, "w:1:x", digest(), POLICY)
    for t in threads:
        t.join(60)
    engine.dispose()
    assert mine is not None
    assert sorted([mine.plan_id, *other]) == sorted([heavy[0], light])
