"""Times read back from the database are in UTC, with their zone, whatever the backend and its
time zone (date51). SQLite hands back naive times (stored as UTC text): `tokens list --json`
wrote `created_at` with no zone where the API writes `+00:00`. PostgreSQL hands back times in
its session's zone: on a server whose `timezone` is Pacific/Kiritimati, `tokens list` showed
a token made at 23:48 UTC as created at 13:48 the next day, unlabelled, and `/v1/plans` wrote
`+14:00` times where a SQLite store writes `+00:00`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Dialect

from straits.store.tables import Time
from test_cli_conventions import run

UTC_2349 = dt.datetime(2026, 12, 6, 23, 49, 5, 123456, tzinfo=dt.UTC)
KIRITIMATI = dt.timezone(dt.timedelta(hours=14))
ST_JOHNS = dt.timezone(dt.timedelta(hours=-3, minutes=-30))

# (dialect, the value the driver hands back)
SQLITE = create_engine("sqlite://").dialect
PG = create_engine("postgresql+psycopg://u@h/d").dialect  # nothing connects
READ_BACK: list[tuple[Dialect, object]] = [
    (SQLITE, "2026-12-06 23:49:05.123456"),
    (PG, UTC_2349.astimezone(KIRITIMATI)),
    (PG, UTC_2349.astimezone(ST_JOHNS)),
    (PG, UTC_2349),
]


@pytest.mark.parametrize(("dialect", "value"), READ_BACK)
def test_a_stored_time_is_read_back_in_utc(dialect: Dialect, value: object) -> None:
    process = Time().dialect_impl(dialect).result_processor(dialect, None)
    assert process is not None
    got = process(value)
    assert got == UTC_2349
    assert got is not None and got.utcoffset() == dt.timedelta(0)
    assert got.isoformat() == "2026-12-06T23:49:05.123456+00:00"


def test_tokens_list_writes_times_with_their_zone(tmp_path: Path) -> None:
    env = {"STRAITS_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"}
    made = run("tokens", "create", "--tenant", "acme", "--role", "viewer", env=env)
    assert made.returncode == 0, made.stderr
    listed = json.loads(run("tokens", "list", "--json", env=env).stdout)
    created = dt.datetime.fromisoformat(listed[0]["created_at"])
    assert created.utcoffset() == dt.timedelta(0), listed
