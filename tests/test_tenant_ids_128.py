"""Tenant ids of 128 characters, the longest a scenario may name (``model.types``), from the
scenario to the token, the record, the ledger's reads and its verification; 129 is bad input
everywhere (led30; migration 0009 widened the columns from 100, docs/robustness.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

from straits.server import create_app
from straits.server.settings import Settings
from straits.store import Store
from straits.store.tokens import create_token
from test_ledger_cli import straits

T128 = "t" + "x" * 127
T129 = T128 + "y"
REQUEST = {
    "date": "2025-06-01",
    "action": "train",
    "tenant": {"hq": "CN"},
    "site": {"country": "SG", "operator_hq": "SG"},
    "chip": "H100-SXM",
}


def test_a_tenant_of_128_is_recorded_shown_and_verified(db_url: str) -> None:
    r = straits("tokens", "create", "--db", db_url, "--tenant", T128, "--role", "viewer")
    assert r.returncode == 0, r.stderr
    rec = ["check", "--json", "--record", "--db", db_url]
    assert straits(*rec, "--tenant", T128, stdin=json.dumps(REQUEST)).returncode == 0
    shown = straits("ledger", "show", "--db", db_url, "--tenant", T128, "-o", "json")
    assert shown.returncode == 0 and [e["tenant"] for e in json.loads(shown.stdout)] == [T128]
    r = straits("ledger", "verify", "--db", db_url, "--tenant", T128, "-o", "json")
    assert (r.returncode, json.loads(r.stdout)["ok"]) == (0, True)
    assert straits("ledger", "verify", "--db", db_url, "-o", "json").returncode == 0


@pytest.mark.parametrize(
    "argv",
    [
        ("tokens", "create", "--tenant", T129, "--role", "viewer"),
        ("check", "--json", "--record", "--tenant", T129),
        ("ledger", "show", "--tenant", T129),
        ("ledger", "verify", "--tenant", T129),
    ],
    ids=["token", "record", "show", "verify"],
)
def test_a_tenant_of_129_is_bad_input(tmp_path: Path, argv: tuple[str, ...]) -> None:
    db = f"sqlite:///{tmp_path / 'l.db'}"
    r = straits(*argv, "--db", db, stdin=json.dumps(REQUEST))
    assert r.returncode == 2 and "--tenant" in r.stderr and not r.stdout


def test_a_scenario_of_a_128_character_tenant_is_planned_recorded_and_served(
    example_path: Path, tmp_path: Path
) -> None:
    old = yaml.safe_load(example_path.read_text())["tenants"][0]["id"]
    scenario = tmp_path / "long.yaml"
    text = re.sub(rf"(?<=[\s:\[]){re.escape(old)}\b", T128, example_path.read_text())
    scenario.write_text(text)
    db = f"sqlite:///{tmp_path / 'l.db'}"
    r = straits("plan", str(scenario), "--json", "--record", "--db", db, "--tenant", T128)
    assert r.returncode in (0, 3), r.stderr
    store = Store(db)
    secret, _ = create_token(store, T128, "viewer")
    admin, _ = create_token(store, "ops", "admin")
    with TestClient(create_app(store, settings=Settings())) as c:
        mine = c.get("/v1/ledger/entries", headers={"Authorization": f"Bearer {secret}"})
        assert mine.status_code == 200 and [e["tenant"] for e in mine.json()] == [T128]
        by_admin = {"Authorization": f"Bearer {admin}"}
        for path in ("/v1/ledger/entries", "/v1/plans"):
            ok = c.get(path, params={"tenant": T128}, headers=by_admin)
            assert ok.status_code == 200 and len(ok.json()) == 1, ok.text
            bad = c.get(path, params={"tenant": T129}, headers=by_admin)
            assert bad.status_code // 100 == 4 and bad.headers["content-type"].startswith(
                "application/problem+json"
            )
    store.close()


def test_migration_0009_widens_the_tenant_columns_of_a_filled_database(db_url: str) -> None:
    """A database at 0008 holding rows upgrades to 128 (its rows kept) and back."""
    from importlib import resources

    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    from straits.store.tables import Base

    cfg = Config()
    cfg.set_main_option(
        "script_location", str(resources.files("straits.store").joinpath("migrations"))
    )
    engine = create_engine(db_url)

    def to(revision: str, down: bool = False) -> dict[str, int]:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            (command.downgrade if down else command.upgrade)(cfg, revision)
        found = inspect(engine)
        return {
            t: int(getattr(c["type"], "length", 0))
            for t in ("plans", "decisions", "ledger", "tokens", "audit_events")
            for c in found.get_columns(t)
            if c["name"] == "tenant"
        }

    assert set(to("0008").values()) == {100}
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO tokens (id, tenant, role, secret_hash, label, created_at) "
            "VALUES ('t1', 'alpha', 'viewer', 'h', '', '2026-01-01')"
        )
    assert set(to("head").values()) == {128}
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        assert conn.exec_driver_sql("SELECT tenant FROM tokens").scalars().all() == ["alpha"]
    assert set(to("0008", down=True).values()) == {100}
    engine.dispose()
